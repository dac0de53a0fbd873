// The one way anything is deleted for good (retention, erasure, recall), so that a blob and its
// metadata never outlive each other and every deletion is counted and audited once:
//   1. note the ids in the job's ledger (a crash after this point is finished by the rerun),
//   2. append the audit events, keyed so a rerun does not log them twice,
//   3. delete each record's container, pinned to the generation ingest filed,
//   4. delete the documents.
// A crash between 3 and 4 leaves expired metadata without its blob for the rerun to remove;
// the reverse order could leave a blob nobody can find, which is what this order rules out.
import type { AuditFields } from '../audit/fields.ts';
import type { AuditLog } from '../audit/log.ts';
import { isBlobStoreError, type BlobStore } from '../ports/blob-store.ts';
import type { PrivateKey } from '../core/crypto/index.ts';
import {
  DELETION_RECEIPT_TYPE,
  signDeletionReceipt,
  type DeletionReceipt,
} from '../core/protocol/deletion-receipt.ts';
import { formatTimestamp, receiptObjectName } from '../core/protocol/ids.ts';
import type { LedgerKind, PurgeItem, PurgeKind, PurgeStore } from '../retention/purge-store.ts';
import { inParallel } from '../core/in-parallel.ts';

export const LEDGER_KIND_OF: Record<PurgeKind, LedgerKind> = {
  record: 'records',
  invitation: 'invitations',
  device: 'devices',
};

/** Concurrent blob deletions: Cloud Storage handles many; a function instance stays modest. */
export const DELETE_CONCURRENCY = 32;

export interface PurgeDependencies {
  readonly store: PurgeStore;
  readonly blobs: BlobStore;
  readonly recordsBucket: string;
  /** When set, each record's accepted-receipt in the outbox goes too (it names the record). */
  readonly receiptsBucket?: string;
  readonly audit: AuditLog;
}

export interface PurgeContext {
  readonly jobId: string;
  readonly at: Date;
  readonly actor: AuditFields['actor'];
  /** What a deleted record is called in the audit trail (record.deleted, record.recalled). */
  readonly recordAction: 'record.deleted' | 'record.recalled';
  /** NEN 7513 "on whose behalf", when someone asked for it. */
  readonly onBehalfOf?: string;
  /** The member of staff who asked, as the hospital's pseudonym (a recall). */
  readonly operatorRef?: string;
  readonly outcome?: string;
}

/**
 * Deletes exactly the generation that was found due. Another generation under the name is not
 * that object: it is left for a later run (or, in the records bucket, the orphan sweep) to judge.
 */
export async function deleteGeneration(
  blobs: BlobStore,
  bucket: string,
  name: string,
  generation: string | undefined,
): Promise<void> {
  try {
    await blobs.delete(bucket, name, { ifGenerationMatch: generation });
  } catch (error) {
    if (!isBlobStoreError(error, 'PRECONDITION_FAILED')) throw error;
  }
}

function auditFieldsFor(item: PurgeItem, context: PurgeContext): AuditFields | undefined {
  if (item.kind === 'invitation') return undefined; // no patient data was ever reachable through it
  return {
    at: formatTimestamp(context.at),
    actor: context.actor,
    action: item.kind === 'record' ? context.recordAction : 'device.removed',
    hospitalId: item.hospitalId,
    patientRef: item.patientRef,
    ...(item.kind === 'record' ? { recordId: item.id } : { deviceId: item.id }),
    ...(context.onBehalfOf ? { onBehalfOf: context.onBehalfOf } : {}),
    ...(context.operatorRef ? { operatorRef: context.operatorRef } : {}),
    ...(context.outcome ? { outcome: context.outcome } : {}),
  };
}

export async function purgeItems(
  deps: PurgeDependencies,
  context: PurgeContext,
  items: readonly PurgeItem[],
): Promise<void> {
  if (items.length === 0) return;
  // The ledger and the audit trail are written before anything is deleted, side by side.
  await Promise.all([
    ...(['record', 'invitation', 'device'] as const).map(async (kind) => {
      const ids = items.filter((item) => item.kind === kind).map((item) => item.id);
      if (ids.length > 0) await deps.store.note(context.jobId, LEDGER_KIND_OF[kind], ids);
    }),
    deps.audit.append(
      items.flatMap((item) => {
        const fields = auditFieldsFor(item, context);
        return fields ? [{ fields, once: `${context.jobId}:${item.kind}:${item.id}` }] : [];
      }),
    ),
  ]);
  const deletions = items.flatMap((item) => {
    if (item.kind !== 'record' || !item.objectName) return [];
    const container = () =>
      deleteGeneration(deps.blobs, deps.recordsBucket, item.objectName!, item.generation);
    const receipt = async () => {
      await deps.blobs.delete(deps.receiptsBucket!, receiptObjectName(item.hospitalId, item.uploadId!));
    };
    return deps.receiptsBucket !== undefined && item.uploadId ? [container, receipt] : [container];
  });
  await inParallel(deletions, DELETE_CONCURRENCY, (deletion) => deletion());
  await deps.store.removeDocuments(items);
}

/** The job's receipt: everything its ledger names, signed by the function that deleted it. */
export async function deletionReceiptFor(
  store: PurgeStore,
  job: Omit<DeletionReceipt, 'type' | 'deleted'>,
  key: PrivateKey,
): Promise<{ receipt: Uint8Array; summary: DeletionReceipt }> {
  const ledger = await store.ledger(job.jobId);
  const summary: DeletionReceipt = {
    type: DELETION_RECEIPT_TYPE,
    ...job,
    deleted: {
      records: [...ledger.records],
      invitations: [...ledger.invitations],
      devices: [...ledger.devices],
      uploads: [...ledger.uploads],
      quarantined: [...ledger.quarantined],
      orphans: [...ledger.orphans],
    },
  };
  return { receipt: signDeletionReceipt(summary, key), summary };
}
