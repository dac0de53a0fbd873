// The ingest service (invariants 1, 2, 5, 6, 9; docs/PROTOCOL.md §7, §10.3 step 6): checks an
// upload a hospital dropped into the ingest bucket (./ingest-checks.ts) and files it
// (./ingest-filing.ts), or quarantines it with a signed rejection receipt (./ingest-disposal.ts).
// Logic over ports only; functions/ingest wires the adapters.
//
// The steps are ordered so that a retry after a crash at any point converges on the same end
// state (one record, one blob, one receipt, the upload gone): every write is create-only and
// recognises its own earlier attempt, and the upload is deleted last, so while it exists the
// work is not done. A rejection is final and acknowledged; only transient failures throw.
import { z } from 'zod';
import type { AuditLog } from '../audit/log.ts';
import type { KeyPair } from '../core/crypto/index.ts';
import {
  CONTAINER_HEADER_LENGTH,
  DEFAULT_MAX_CIPHERTEXT_LENGTH,
  formatTimestamp,
  MAX_MANIFEST_BYTES,
  parseUploadObjectName,
  ProtocolError,
  readUploadContainer,
  RECEIPT_TYPE,
  rejectionReceipt,
  type ErrorCode,
  type UploadContainer,
} from '../core/protocol/index.ts';
import { isBlobStoreError, type BlobInfo, type BlobStore } from '../ports/blob-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { Logger } from '../ports/logger.ts';
import type { Notifier } from '../ports/notifier.ts';
import type { DeviceStore, HospitalRegistry } from '../ports/pairing-store.ts';
import type { RecordStore } from '../ports/record-store.ts';
import { createUploadChecks, type UploadTarget } from './ingest-checks.ts';
import { createUploadDisposal, INGEST_LIFETIMES } from './ingest-disposal.ts';
import { createUploadFiling, recordCreatedEvent } from './ingest-filing.ts';
import { sendPushHints } from './push-hints.ts';

/** The bucket names ingest works with (from the catalog's roles). */
export interface IngestBuckets {
  readonly ingest: string;
  readonly records: string;
  readonly outbox: string;
  readonly quarantine: string;
}

export interface IngestServiceOptions {
  readonly blobs: BlobStore;
  readonly records: RecordStore;
  readonly hospitals: HospitalRegistry;
  readonly devices: DeviceStore;
  readonly notifier?: Notifier;
  /** NEN 7513: each filed record is logged (record.created) once, retries included. */
  readonly audit: AuditLog;
  /** Ingest's own key pair: receipts are signed with it. */
  readonly keyPair: () => Promise<KeyPair>;
  readonly clock: Clock;
  readonly buckets: IngestBuckets;
  /** Largest chunk section accepted (default 2 GiB, as PROTOCOL.md §13). */
  readonly maxCiphertextLength?: number;
  /** How long receipts and quarantined uploads are kept (their objects' customTime). */
  readonly lifetimes?: Partial<typeof INGEST_LIFETIMES>;
}

/** What a storage.finalized CloudEvent carries that ingest uses. */
export const finalizedEventSchema = z.object({
  bucket: z.string().min(1),
  name: z.string().min(1).max(1024),
  generation: z.union([z.string().regex(/^[0-9]{1,20}$/), z.number().int().nonnegative()]).transform(String),
  size: z.union([z.string().regex(/^[0-9]{1,20}$/), z.number().int().nonnegative()]).transform(Number),
});
export type FinalizedEvent = z.output<typeof finalizedEventSchema>;

export type IngestOutcome =
  | { readonly status: 'accepted'; readonly recordId: string; readonly created: boolean }
  | { readonly status: 'rejected'; readonly code: ErrorCode }
  /** Nothing to do: the upload is gone (handled before) or superseded, or the event is not ours. */
  | { readonly status: 'ignored' };

export interface IngestService {
  /** Handles one finalize event. Throws only for transient failures (the event is retried). */
  handle(event: unknown, logger: Logger): Promise<IngestOutcome>;
}

/** A rejection: the upload itself is at fault, so retrying cannot help. */
function isRejection(error: unknown): error is ProtocolError {
  return error instanceof ProtocolError && error.httpStatus < 500;
}

/** A rejection, with the record id if the manifest was readable (it goes into the receipt). */
class UploadRejected extends Error {
  readonly code: ErrorCode;
  readonly recordId: string | undefined;

  constructor(code: ErrorCode, recordId: string | undefined) {
    super('upload rejected');
    this.code = code;
    this.recordId = recordId;
  }
}

export function createIngestService(options: IngestServiceOptions): IngestService {
  const { blobs, buckets, clock } = options;
  const maxCiphertextLength = options.maxCiphertextLength ?? DEFAULT_MAX_CIPHERTEXT_LENGTH;
  const maxUploadBytes = CONTAINER_HEADER_LENGTH + MAX_MANIFEST_BYTES + maxCiphertextLength;
  const check = createUploadChecks(options);
  const file = createUploadFiling({ ...options, recordsBucket: buckets.records });
  const disposal = createUploadDisposal({
    blobs,
    outboxBucket: buckets.outbox,
    quarantineBucket: buckets.quarantine,
    keyPair: options.keyPair,
    clock,
    lifetimes: { ...INGEST_LIFETIMES, ...options.lifetimes },
    maxUploadBytes,
  });

  async function accept(
    upload: BlobInfo,
    target: UploadTarget,
    logger: Logger,
    started: number,
  ): Promise<IngestOutcome> {
    const { hospitalId, uploadId } = target;
    let container: UploadContainer | undefined;
    let recordId: string | undefined;
    try {
      if (upload.size > maxUploadBytes) throw new ProtocolError('UPLOAD_TOO_LARGE');
      const checks = check(target);
      container = await readUploadContainer(
        blobs.read(upload.bucket, upload.name, { generation: upload.generation }),
        { expectedSize: upload.size, maxCiphertextLength },
      );
      recordId = container.manifest.recordId;
      const { manifest, recipients } = await checks.verify(container);
      const { stored, created, acceptedAt } = await file(upload, container, manifest);
      // Each of these needs only the filed record, and each recognises its own earlier attempt;
      // the upload, deleted last, keeps a crash among them retried.
      await Promise.all([
        options.audit.append([recordCreatedEvent(manifest, acceptedAt)]),
        disposal.writeReceipt(hospitalId, uploadId, {
          type: RECEIPT_TYPE,
          uploadId,
          hospitalId,
          status: 'accepted',
          recordId: manifest.recordId,
          at: formatTimestamp(clock.now()),
        }),
        sendPushHints(options.notifier, options.devices, recipients, 'records', logger),
      ]);
      await disposal.deleteUpload(upload);
      logger.info('upload accepted', {
        operation: 'ingest.accepted',
        hospitalId,
        uploadId,
        recordId: manifest.recordId,
        bytes: stored.size,
        count: recipients.length,
        durationMs: Math.round(performance.now() - started),
      });
      return { status: 'accepted', recordId: manifest.recordId, created };
    } catch (error) {
      throw isRejection(error) ? new UploadRejected(error.code, recordId) : error;
    } finally {
      await container?.close().catch(() => undefined);
    }
  }

  /**
   * The receipt goes first: once the upload is gone a redelivered event finds nothing to do, so
   * a crash between the two must not leave the hospital without its answer.
   */
  async function reject(
    upload: BlobInfo,
    target: UploadTarget,
    { code, recordId }: UploadRejected,
    logger: Logger,
    started: number,
  ): Promise<IngestOutcome> {
    await disposal.writeReceipt(
      target.hospitalId,
      target.uploadId,
      rejectionReceipt({
        uploadId: target.uploadId,
        hospitalId: target.hospitalId,
        at: clock.now(),
        errorCode: code,
        ...(recordId === undefined ? {} : { recordId }),
      }),
    );
    await disposal.quarantine(upload);
    logger.notice('upload rejected', {
      operation: 'ingest.rejected',
      code,
      hospitalId: target.hospitalId,
      uploadId: target.uploadId,
      durationMs: Math.round(performance.now() - started),
    });
    return { status: 'rejected', code };
  }

  return Object.freeze({
    async handle(raw: unknown, logger: Logger): Promise<IngestOutcome> {
      const started = performance.now();
      const parsed = finalizedEventSchema.safeParse(raw);
      if (!parsed.success || parsed.data.bucket !== buckets.ingest) {
        logger.warning('event ignored', { operation: 'ingest.ignored', code: 'INVALID_REQUEST' });
        return { status: 'ignored' };
      }
      const event = parsed.data;
      const upload = await blobs.stat(event.bucket, event.name);
      if (!upload || upload.generation !== event.generation) {
        logger.info('upload already handled', { operation: 'ingest.ignored' });
        return { status: 'ignored' };
      }

      let target: UploadTarget;
      try {
        target = parseUploadObjectName(upload.name);
      } catch {
        await disposal.quarantine(upload);
        logger.notice('upload rejected', { operation: 'ingest.rejected', code: 'PATH_MISMATCH' });
        return { status: 'rejected', code: 'PATH_MISMATCH' };
      }

      try {
        return await accept(upload, target, logger, started);
      } catch (error) {
        if (isBlobStoreError(error, 'NOT_FOUND')) {
          // The upload vanished while being read: a concurrent delivery of this event finished it.
          logger.info('upload already handled', { operation: 'ingest.ignored', uploadId: target.uploadId });
          return { status: 'ignored' };
        }
        if (!(error instanceof UploadRejected)) throw error;
        return reject(upload, target, error, logger, started);
      }
    },
  });
}
