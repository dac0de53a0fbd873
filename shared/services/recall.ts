// Recall: a hospital takes back a record it sent (a letter sent to the wrong patient, a report
// withdrawn). The container and its metadata go through the same purge as retention, the
// recipients' devices get the usual opaque hint, and the hospital gets a deletion receipt
// signed with the pairing function's key. A device that already downloaded the record keeps
// its copy: recall stops further delivery, it cannot reach into a phone. Another hospital's
// record, and an unknown id, are both NOT_FOUND.
import type { AuditLog } from '../audit/log.ts';
import type { PrivateKey } from '../core/crypto/index.ts';
import type { BlobStore } from '../ports/blob-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { Notifier } from '../ports/notifier.ts';
import type { PairingStores } from '../ports/pairing-store.ts';
import type { RecordStore } from '../ports/record-store.ts';
import { readDeletionReceiptUnverified } from '../core/protocol/deletion-receipt.ts';
import {
  formatTimestamp,
  hospitalActionBodySchema,
  parseBoundary,
  parseJsonBody,
  ProtocolError,
  recordIdSchema,
  toBase64Url,
} from '../core/protocol/index.ts';
import { finishedJobExpiry, type PurgeStore } from '../retention/purge-store.ts';
import { deletionReceiptFor, purgeItems } from './purge.ts';
import { sendPushHints } from './push-hints.ts';
import { createHospitalCaller, type SignedCall } from './signed-call.ts';

export interface RecallServiceOptions {
  readonly stores: Pick<PairingStores, 'hospitals' | 'nonces' | 'devices'>;
  readonly records: RecordStore;
  readonly purge: PurgeStore;
  readonly blobs: BlobStore;
  readonly recordsBucket: string;
  /** The outbox: the record's accepted-receipt goes with it (it names the record). */
  readonly outboxBucket: string;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly notifier?: Notifier;
  /** The pairing function's own key (the hospital API's function signs recall receipts). */
  readonly signingKey: () => Promise<PrivateKey>;
}

export interface RecallService {
  recall(call: SignedCall, recordId: string): Promise<{ receipt: string }>;
}

export function createRecallService(options: RecallServiceOptions): RecallService {
  const { clock } = options;
  const hospitalOf = createHospitalCaller({
    hospitals: options.stores.hospitals,
    nonces: options.stores.nonces,
    clock,
  });

  return Object.freeze({
    async recall(call: SignedCall, recordId: string) {
      const id = parseBoundary(recordIdSchema, recordId);
      const { operatorRef } = parseJsonBody(hospitalActionBodySchema, call.body);
      const hospitalId = await hospitalOf(call);
      const jobId = `recall-${id}`;
      const record = await options.records.get(id);
      if (!record) {
        // Already recalled: a retry gets the same receipt, and only its own hospital does. Only
        // read here: a recall still running under this id keeps its ledger.
        const job = await options.purge.getJob(jobId);
        const earlier = job?.receipt ? readDeletionReceiptUnverified(job.receipt) : undefined;
        if (job?.status === 'done' && earlier?.hospitalId === hospitalId) {
          return { receipt: toBase64Url(job.receipt!) };
        }
        throw new ProtocolError('NOT_FOUND');
      }
      if (record.hospitalId !== hospitalId) throw new ProtocolError('NOT_FOUND');
      const job = await options.purge.openJob(jobId, clock.now());
      const at = clock.now();
      await purgeItems(
        {
          store: options.purge,
          blobs: options.blobs,
          recordsBucket: options.recordsBucket,
          receiptsBucket: options.outboxBucket,
          audit: options.audit,
        },
        {
          jobId,
          at,
          actor: { kind: 'hospital', id: hospitalId },
          recordAction: 'record.recalled',
          operatorRef,
        },
        [
          {
            kind: 'record',
            id,
            hospitalId,
            patientRef: record.patientRef,
            objectName: record.objectName,
            generation: record.generation,
            uploadId: record.uploadId,
          },
        ],
      );
      const finishedAt = clock.now();
      const { receipt } = await deletionReceiptFor(
        options.purge,
        {
          reason: 'recall',
          jobId,
          hospitalId,
          startedAt: formatTimestamp(job.startedAt),
          finishedAt: formatTimestamp(finishedAt),
          complete: true,
        },
        await options.signingKey(),
      );
      await options.purge.finishJob(jobId, receipt, finishedAt, finishedJobExpiry(finishedAt));
      call.logger?.notice('record recalled', { operation: 'pairing.recall', hospitalId, recordId: id });
      const recipients = await options.stores.devices.listActive(hospitalId, record.patientRef, finishedAt);
      await sendPushHints(
        options.notifier,
        options.stores.devices,
        recipients.filter((device) => record.recipients.includes(device.deviceId)),
        'records',
        call.logger,
      );
      return { receipt: toBase64Url(receipt) };
    },
  });
}
