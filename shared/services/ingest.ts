// The ingest service (invariants 1, 2, 5, 6, 9; docs/PROTOCOL.md §7, §10.3 step 6): checks an
// upload a hospital dropped into the ingest bucket and files it, or quarantines it with a
// signed rejection receipt. Logic over ports only; functions/ingest wires the adapters.
//
// The steps are ordered so that a retry after a crash at any point converges on the same end
// state (one record, one blob, one receipt, the upload gone): every write is create-only and
// recognises its own earlier attempt, and the upload is deleted last, so while it exists the
// work is not done. A rejection is final and acknowledged; only transient failures throw.
import { z } from 'zod';
import type { KeyPair, PublicKey } from '../core/crypto/index.ts';
import { importPublicKey, isCryptoError } from '../core/crypto/index.ts';
import { isBlobStoreError, type BlobInfo, type BlobStore } from '../ports/blob-store.ts';
import type { AuditLog } from '../audit/log.ts';
import type { Clock } from '../ports/clock.ts';
import type { Logger } from '../ports/logger.ts';
import type { Notifier } from '../ports/notifier.ts';
import type { DeviceRecord, DeviceStore, HospitalRegistry } from '../ports/pairing-store.ts';
import type { RecordStore } from '../ports/record-store.ts';
import {
  checkManifestContext,
  CONTAINER_HEADER_LENGTH,
  CONTAINER_MEDIA_TYPE,
  DEFAULT_MAX_CIPHERTEXT_LENGTH,
  MAX_MANIFEST_BYTES,
  ProtocolError,
  parseUploadObjectName,
  readUploadContainer,
  receiptObjectName,
  recordObjectName,
  rejectionReceipt,
  signReceipt,
  formatTimestamp,
  RECEIPT_TYPE,
  verifyManifest,
  type ErrorCode,
  type UploadContainer,
  type UploadManifest,
} from '../core/protocol/index.ts';
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

/**
 * Defaults until per-hospital retention policy exists: a receipt outlives the connector's
 * polling by far, and a quarantined upload stays long enough for hospital ICT to look at it.
 */
export const INGEST_LIFETIMES = {
  receiptDays: 90,
  quarantineDays: 30,
} as const;

const DAY_MS = 24 * 3600 * 1000;

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
  const lifetimes = { ...INGEST_LIFETIMES, ...options.lifetimes };
  const daysFromNow = (days: number) => new Date(clock.now().getTime() + days * DAY_MS);

  async function hospitalKeys(hospitalId: string): Promise<PublicKey[]> {
    const hospital = await options.hospitals.getHospital(hospitalId);
    if (!hospital) throw new ProtocolError('UNKNOWN_HOSPITAL');
    if (hospital.status !== 'active' || hospital.expiresAt <= clock.now()) {
      throw new ProtocolError('HOSPITAL_SUSPENDED');
    }
    return Object.values(hospital.publicKeys).map((key) => importPublicKey(key));
  }

  function verifiedManifest(container: UploadContainer, keys: readonly PublicKey[]): UploadManifest {
    for (const key of keys) {
      try {
        return verifyManifest(container.signedManifest, key);
      } catch (error) {
        // Another registered key may be the one (two are live while a hospital rotates).
        if (
          !(error instanceof ProtocolError && error.code === 'MANIFEST_SIGNATURE_INVALID') &&
          !isCryptoError(error)
        )
          throw error;
      }
    }
    throw new ProtocolError('MANIFEST_SIGNATURE_INVALID');
  }

  /** Every recipient must be an active device of this patient at this hospital. */
  async function recipientDevices(manifest: UploadManifest): Promise<DeviceRecord[]> {
    const active = await options.devices.listActive(manifest.hospitalId, manifest.patientRef, clock.now());
    if (active.length === 0) throw new ProtocolError('UNKNOWN_PATIENT');
    const byId = new Map(active.map((device) => [device.deviceId, device]));
    const recipients: DeviceRecord[] = [];
    for (const { deviceId } of manifest.recipients) {
      const device = byId.get(deviceId);
      if (device) {
        recipients.push(device);
        continue;
      }
      const known = await options.devices.get(deviceId);
      const revokedHere =
        known?.hospitalId === manifest.hospitalId &&
        known.patientRef === manifest.patientRef &&
        known.status === 'revoked';
      throw new ProtocolError(revokedHere ? 'DEVICE_REVOKED' : 'UNKNOWN_DEVICE');
    }
    return recipients;
  }

  /** Copies the container into the records bucket, committing only if every check passes. */
  async function fileContainer(
    upload: BlobInfo,
    container: UploadContainer,
    manifest: UploadManifest,
  ): Promise<BlobInfo> {
    const name = recordObjectName(manifest.hospitalId, manifest.recordId);
    try {
      return await blobs.createOnly(buckets.records, name, container.bytes(), {
        contentType: CONTAINER_MEDIA_TYPE,
        maxBytes: container.size,
        expiresAt: new Date(manifest.expiresAt),
      });
    } catch (error) {
      if (!isBlobStoreError(error, 'ALREADY_EXISTS')) throw error;
      await container.close();
      // An earlier attempt of this same upload copied it already: identical bytes.
      const stored = await blobs.stat(buckets.records, name);
      if (stored && stored.size === upload.size && stored.crc32c === upload.crc32c) return stored;
      throw new ProtocolError('RECORD_EXISTS');
    }
  }

  async function writeReceipt(
    hospitalId: string,
    uploadId: string,
    body: Parameters<typeof signReceipt>[0],
  ): Promise<void> {
    const keyPair = await options.keyPair();
    try {
      await blobs.writeSmall(
        buckets.outbox,
        receiptObjectName(hospitalId, uploadId),
        signReceipt(body, keyPair.privateKey),
        {
          createOnly: true,
          contentType: 'application/vnd.clinic-bridge.receipt',
          expiresAt: daysFromNow(lifetimes.receiptDays),
        },
      );
    } catch (error) {
      // Written by an earlier attempt (signatures are randomised, so the bytes differ).
      if (!isBlobStoreError(error, 'ALREADY_EXISTS')) throw error;
    }
  }

  async function deleteUpload(upload: BlobInfo): Promise<void> {
    try {
      await blobs.delete(upload.bucket, upload.name, { ifGenerationMatch: upload.generation });
    } catch (error) {
      if (!isBlobStoreError(error, 'PRECONDITION_FAILED')) throw error; // replaced meanwhile: its own event follows
    }
  }

  /** Keeps a copy for hospital ICT (unless absurdly large), then removes the upload. */
  async function quarantine(upload: BlobInfo): Promise<void> {
    if (upload.size <= maxUploadBytes) {
      try {
        await blobs.createOnly(
          buckets.quarantine,
          upload.name,
          blobs.read(upload.bucket, upload.name, { generation: upload.generation }),
          { maxBytes: upload.size, expiresAt: daysFromNow(lifetimes.quarantineDays) },
        );
      } catch (error) {
        if (!isBlobStoreError(error, 'ALREADY_EXISTS') && !isBlobStoreError(error, 'NOT_FOUND')) throw error;
      }
    }
    await deleteUpload(upload);
  }

  async function accept(
    upload: BlobInfo,
    hospitalId: string,
    uploadId: string,
    logger: Logger,
    started: number,
  ): Promise<IngestOutcome> {
    let container: UploadContainer | undefined;
    let recordId: string | undefined;
    try {
      if (upload.size > maxUploadBytes) throw new ProtocolError('UPLOAD_TOO_LARGE');
      container = await readUploadContainer(
        blobs.read(upload.bucket, upload.name, { generation: upload.generation }),
        {
          expectedSize: upload.size,
          maxCiphertextLength,
        },
      );
      recordId = container.manifest.recordId;
      const manifest = verifiedManifest(container, await hospitalKeys(hospitalId));
      checkManifestContext(manifest, { hospitalId, uploadId, now: clock.now() });
      const recipients = await recipientDevices(manifest);
      const existing = await options.records.get(manifest.recordId);
      if (existing && existing.uploadId !== uploadId) throw new ProtocolError('RECORD_EXISTS');

      const stored = await fileContainer(upload, container, manifest);
      const { created, record } = await options.records.create({
        recordId: manifest.recordId,
        uploadId,
        hospitalId,
        patientRef: manifest.patientRef,
        contentClass: manifest.contentClass,
        createdAt: new Date(manifest.createdAt),
        expiresAt: new Date(manifest.expiresAt),
        acceptedAt: clock.now(),
        size: stored.size,
        objectName: stored.name,
        generation: stored.generation,
        recipients: manifest.recipients.map((recipient) => recipient.deviceId),
      });
      if (!created && record.uploadId !== uploadId) throw new ProtocolError('RECORD_EXISTS');
      await options.audit.append([
        {
          fields: {
            at: formatTimestamp(record.acceptedAt),
            actor: { kind: 'hospital', id: hospitalId },
            action: 'record.created',
            hospitalId,
            patientRef: manifest.patientRef,
            recordId: manifest.recordId,
          },
          once: `ingest:${manifest.recordId}`,
        },
      ]);

      await writeReceipt(hospitalId, uploadId, {
        type: RECEIPT_TYPE,
        uploadId,
        hospitalId,
        status: 'accepted',
        recordId: manifest.recordId,
        at: formatTimestamp(clock.now()),
      });
      await sendPushHints(options.notifier, options.devices, recipients, 'records', logger);
      await deleteUpload(upload);
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

      let target: { hospitalId: string; uploadId: string };
      try {
        target = parseUploadObjectName(upload.name);
      } catch {
        await quarantine(upload);
        logger.notice('upload rejected', { operation: 'ingest.rejected', code: 'PATH_MISMATCH' });
        return { status: 'rejected', code: 'PATH_MISMATCH' };
      }

      try {
        return await accept(upload, target.hospitalId, target.uploadId, logger, started);
      } catch (error) {
        if (isBlobStoreError(error, 'NOT_FOUND')) {
          // The upload vanished while being read: a concurrent delivery of this event finished it.
          logger.info('upload already handled', { operation: 'ingest.ignored', uploadId: target.uploadId });
          return { status: 'ignored' };
        }
        if (!(error instanceof UploadRejected)) throw error;
        const { code, recordId } = error;
        // The receipt goes first: once the upload is gone a redelivered event finds nothing to
        // do, so a crash between the two must not leave the hospital without its answer.
        await writeReceipt(
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
        await quarantine(upload);
        logger.notice('upload rejected', {
          operation: 'ingest.rejected',
          code,
          hospitalId: target.hospitalId,
          uploadId: target.uploadId,
          durationMs: Math.round(performance.now() - started),
        });
        return { status: 'rejected', code };
      }
    },
  });
}
