// Erasure (GDPR art. 17, WGBO art. 7:455; invariants 8, 10; docs/PROTOCOL.md §9.2): a paired
// device erases every record, invitation and device of its patient at its hospital, through the
// same purge as retention (./purge.ts), and gets the signed deletion receipt. The caller's own
// device goes last, so that a retry after a crash can still authenticate and finish the job. The
// job's ledger is discarded once the receipt is signed: the receipt, held by the patient, is the
// only list of what was erased. The audit trail keeps its pseudonymous entries.
import type { AuditLog } from '../audit/log.ts';
import type { PrivateKey } from '../core/crypto/index.ts';
import { eraseBodySchema, formatTimestamp, parseJsonBody, toBase64Url } from '../core/protocol/index.ts';
import type { BlobStore } from '../ports/blob-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { DeviceRecord } from '../ports/pairing-store.ts';
import type { PurgeStore } from '../retention/purge-store.ts';
import { deviceEvent, type DeviceCaller } from './device-caller.ts';
import { deletionReceiptFor, purgeItems, type PurgeContext } from './purge.ts';
import type { SignedCall } from './signed-call.ts';

export interface ErasureServiceOptions {
  readonly caller: DeviceCaller;
  /** Erasure deletes through the purge store (the records function may delete containers). */
  readonly purge: PurgeStore;
  readonly blobs: BlobStore;
  /** The records bucket. */
  readonly recordsBucket: string;
  /** The outbox: the accepted-receipts that name the patient's records go too. */
  readonly outboxBucket: string;
  readonly clock: Clock;
  /** NEN 7513: the erasure and every deletion in it are logged. */
  readonly audit: AuditLog;
  /** The records function's own key: erasure receipts are signed with it. */
  readonly signingKey: () => Promise<PrivateKey>;
}

export interface ErasureService {
  /** Erases everything about the caller's patient at this hospital; returns the signed receipt. */
  erase(call: SignedCall): Promise<{ receipt: string }>;
}

const ERASE_BATCH = 250;

export function createErasureService(options: ErasureServiceOptions): ErasureService {
  const { purge, audit, clock } = options;

  async function erasePatient(device: DeviceRecord) {
    const jobId = `erasure-${device.deviceId}`;
    const job = await purge.openJob(jobId, clock.now());
    const at = clock.now();
    await audit.append([
      {
        fields: deviceEvent(clock, device, 'patient.erased', { deviceId: device.deviceId }),
        once: `${jobId}:start:${job.startedAt.getTime()}`,
      },
    ]);
    const context: PurgeContext = {
      jobId,
      at,
      actor: { kind: 'device', id: device.deviceId },
      recordAction: 'record.deleted',
      outcome: 'ERASED',
    };
    const deps = {
      store: purge,
      blobs: options.blobs,
      recordsBucket: options.recordsBucket,
      receiptsBucket: options.outboxBucket,
      audit,
    };
    for (const kind of ['record', 'invitation', 'device'] as const) {
      for (;;) {
        const found = await purge.findForPatient(kind, device.hospitalId, device.patientRef, ERASE_BATCH);
        const items = found.filter((item) => !(item.kind === 'device' && item.id === device.deviceId));
        await purgeItems(deps, context, items);
        if (found.length < ERASE_BATCH) break;
      }
    }
    const self = {
      kind: 'device' as const,
      id: device.deviceId,
      hospitalId: device.hospitalId,
      patientRef: device.patientRef,
    };
    await purge.note(jobId, 'devices', [self.id]);
    const receipt = await deletionReceiptFor(
      purge,
      {
        reason: 'erasure',
        jobId,
        hospitalId: device.hospitalId,
        patientRef: device.patientRef,
        startedAt: formatTimestamp(job.startedAt),
        finishedAt: formatTimestamp(clock.now()),
        complete: true,
      },
      await options.signingKey(),
    );
    await audit.append([
      {
        fields: deviceEvent(clock, device, 'device.removed', { deviceId: self.id, outcome: 'ERASED' }),
        once: `${jobId}:self`,
      },
    ]);
    // The ledger and the caller's device go in one write: a retry either finds the ledger and
    // signs the same receipt again, or cannot authenticate because everything is gone.
    await purge.discardJob(jobId, [self]);
    return receipt;
  }

  return Object.freeze({
    async erase(call: SignedCall) {
      parseJsonBody(eraseBodySchema, call.body);
      const device = await options.caller(call);
      const receipt = await erasePatient(device);
      call.logger?.notice('patient erased', {
        operation: 'records.erase',
        hospitalId: device.hospitalId,
        count: Object.values(receipt.summary.deleted).reduce((n, ids) => n + ids.length, 0),
      });
      return { receipt: toBase64Url(receipt.receipt) };
    },
  });
}
