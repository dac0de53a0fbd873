// The records service (invariants 1, 6, 8, 9; docs/PROTOCOL.md §9.2, §10.4, §10.5): what a
// paired device may do with its own records and its patient's devices, every call signed by
// the device key. Another patient's record, or one this device holds no key for, is NOT_FOUND,
// exactly like an id that does not exist: no existence oracle. Logic over ports only;
// functions/records wires the adapters.
import { z } from 'zod';
import type { AuditFields } from '../audit/chain.ts';
import type { AuditLog } from '../audit/log.ts';
import { importPublicKey, type PrivateKey, type PublicKey } from '../core/crypto/index.ts';
import type { PurgeStore } from '../retention/purge-store.ts';
import type { BlobStore } from '../ports/blob-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { Notifier } from '../ports/notifier.ts';
import type { DeviceRecord, DeviceStore, NonceStore } from '../ports/pairing-store.ts';
import type { RecordCursor, RecordStore, StoredRecord } from '../ports/record-store.ts';
import {
  ackBodySchema,
  CONTAINER_MEDIA_TYPE,
  deviceCertificateSchema,
  deviceIdSchema,
  DEVICE_CERTIFICATE_TYPE,
  eraseBodySchema,
  readDocumentUnverified,
  formatTimestamp,
  fromBase64Url,
  isErrorCode,
  pageQuerySchema,
  parseBoundary,
  parseJsonBody,
  ProtocolError,
  pushTokenBodySchema,
  recordIdSchema,
  toBase64Url,
  type KeyId,
} from '../core/protocol/index.ts';
import { deletionReceiptFor, purgeItems, type PurgeContext } from './purge.ts';
import { sendPushHints } from './push-hints.ts';
import { createCallVerifier, type SignedCall } from './signed-call.ts';

export const RECORDS_DEFAULTS = {
  /** Records per page when the device does not ask. */
  pageSize: 50,
} as const;

const emptyBodySchema = z.strictObject({});

export interface RecordsServiceOptions {
  readonly records: RecordStore;
  readonly devices: DeviceStore;
  readonly nonces: NonceStore;
  readonly blobs: BlobStore;
  /** The records bucket. */
  readonly bucket: string;
  /** The outbox: erasure removes the accepted-receipts that name the patient's records. */
  readonly outboxBucket: string;
  readonly clock: Clock;
  readonly notifier?: Notifier;
  /** NEN 7513: downloads, acknowledgements, revocations and erasures are logged. */
  readonly audit: AuditLog;
  /** Erasure deletes through the purge store (the records function may delete containers). */
  readonly purge: PurgeStore;
  /** The records function's own key: erasure receipts are signed with it. */
  readonly signingKey: () => Promise<PrivateKey>;
}

export interface AccessLogEntry {
  at: string;
  actor: { kind: 'device' | 'hospital' | 'system' | 'operator'; id: string };
  action: string;
  recordId?: string;
  deviceId?: string;
  outcome?: string;
}

export interface RecordSummary {
  recordId: string;
  hospitalId: string;
  contentClass: string;
  createdAt: string;
  expiresAt: string;
  size: number;
  acknowledgedAt?: string;
}

export interface RecordContent {
  readonly size: number;
  readonly contentType: string;
  readonly bytes: AsyncIterable<Uint8Array>;
}

export interface RecordsService {
  list(
    call: SignedCall,
    query: Readonly<Record<string, string>>,
  ): Promise<{ records: RecordSummary[]; nextPageToken?: string }>;
  content(call: SignedCall, recordId: string): Promise<RecordContent>;
  acknowledge(call: SignedCall, recordId: string): Promise<{ recordId: string; acknowledgedAt: string }>;
  listDevices(call: SignedCall): Promise<{
    devices: {
      deviceId: string;
      hospitalId: string;
      platform: string;
      pairedAt: string;
      expiresAt: string;
      current: boolean;
    }[];
  }>;
  revokeDevice(call: SignedCall, deviceId: string): Promise<{ deviceId: string; revokedAt: string }>;
  setPushToken(call: SignedCall): Promise<void>;
  /** The patient's own access log (NEN 7513), newest first. */
  accessLog(
    call: SignedCall,
    query: Readonly<Record<string, string>>,
  ): Promise<{ entries: AccessLogEntry[]; nextPageToken?: string }>;
  /** Erases everything about the caller's patient at this hospital; returns the signed receipt. */
  erase(call: SignedCall): Promise<{ receipt: string }>;
}

/** Page tokens are opaque to devices: base64url of "<acceptedAt ms>.<recordId>". */
function encodeCursor(cursor: RecordCursor): string {
  return toBase64Url(new TextEncoder().encode(`${cursor.acceptedAt.getTime()}.${cursor.recordId}`));
}

function decodeCursor(token: string): RecordCursor {
  const bytes = fromBase64Url(token);
  const match = bytes && /^([0-9]{1,15})\.([A-Za-z0-9_-]{22})$/.exec(new TextDecoder().decode(bytes));
  if (!match || !recordIdSchema.safeParse(match[2]).success) {
    throw new ProtocolError('INVALID_REQUEST', undefined, { field: 'pageToken' });
  }
  return { acceptedAt: new Date(Number(match[1])), recordId: match[2]! };
}

const TOUCH_INTERVAL_MS = 24 * 3600_000;

export function createRecordsService(options: RecordsServiceOptions): RecordsService {
  const { records, devices, clock } = options;

  /** An audit event by this device about its own patient (NEN 7513: who, what, whose). */
  function deviceEvent(
    device: DeviceRecord,
    action: AuditFields['action'],
    extra: Pick<AuditFields, 'recordId' | 'deviceId' | 'outcome'>,
  ): AuditFields {
    return {
      at: formatTimestamp(clock.now()),
      actor: { kind: 'device', id: device.deviceId },
      action,
      hospitalId: device.hospitalId,
      patientRef: device.patientRef,
      ...extra,
    };
  }

  /** The calling device, once its signature, freshness and nonce have checked out. */
  async function resolveDevice(keyId: KeyId): Promise<PublicKey | undefined> {
    const device = await devices.get(keyId.id);
    if (!device) return undefined;
    // An expired enrolment is refused like a revoked one: the device must pair again.
    if (device.status !== 'active' || device.expiresAt <= clock.now())
      throw new ProtocolError('DEVICE_REVOKED');
    return importPublicKey(enrolledKeyOf(device));
  }

  const verifier = createCallVerifier({
    accept: ['device'],
    clock,
    nonces: options.nonces,
    resolveKey: resolveDevice,
  });

  async function caller(call: SignedCall): Promise<DeviceRecord> {
    const verified = await verifier.verify(call);
    const device = await devices.get(verified.keyId.id);
    if (!device || device.status !== 'active') throw new ProtocolError('DEVICE_REVOKED');
    const now = clock.now();
    // Activity is kept to within a day: one write a day per device, not one per call.
    if (now.getTime() - device.lastSeenAt.getTime() > TOUCH_INTERVAL_MS)
      await devices.touch(device.deviceId, now);
    return device;
  }

  /** The record if this device may see it; NOT_FOUND otherwise, whatever the reason. */
  async function visibleRecord(device: DeviceRecord, recordId: string): Promise<StoredRecord> {
    const id = parseBoundary(recordIdSchema, recordId);
    const record = await records.get(id);
    if (
      !record ||
      !record.recipients.includes(device.deviceId) ||
      record.patientRef !== device.patientRef ||
      record.hospitalId !== device.hospitalId ||
      record.expiresAt <= clock.now()
    ) {
      throw new ProtocolError('NOT_FOUND');
    }
    return record;
  }

  function summary(record: StoredRecord, deviceId: string): RecordSummary {
    const ack = record.acks[deviceId];
    return {
      recordId: record.recordId,
      hospitalId: record.hospitalId,
      contentClass: record.contentClass,
      createdAt: formatTimestamp(record.createdAt),
      expiresAt: formatTimestamp(record.expiresAt),
      size: record.size,
      ...(ack?.outcome === 'stored' ? { acknowledgedAt: formatTimestamp(ack.at) } : {}),
    };
  }

  const service: RecordsService = {
    async list(call, query) {
      const page = parseBoundary(pageQuerySchema, query);
      const after = page.pageToken === undefined ? undefined : decodeCursor(page.pageToken);
      const device = await caller(call);
      const found = await records.listForDevice(device.deviceId, {
        pageSize: page.pageSize ?? RECORDS_DEFAULTS.pageSize,
        now: clock.now(),
        ...(after ? { after } : {}),
      });
      const visible = found.records.filter(
        (record) => record.patientRef === device.patientRef && record.hospitalId === device.hospitalId,
      );
      call.logger?.info('records listed', {
        operation: 'records.list',
        deviceId: device.deviceId,
        count: visible.length,
      });
      return {
        records: visible.map((record) => summary(record, device.deviceId)),
        ...(found.next ? { nextPageToken: encodeCursor(found.next) } : {}),
      };
    },

    async content(call, recordId) {
      const id = parseBoundary(recordIdSchema, recordId);
      const device = await caller(call);
      const record = await visibleRecord(device, id);
      const info = await options.blobs.stat(options.bucket, record.objectName);
      // The blob must be exactly the one ingest checked; anything else is not served.
      if (!info || info.generation !== record.generation) throw new ProtocolError('NOT_FOUND');
      // Logged before the first byte leaves: no access without an audit entry.
      await options.audit.append([{ fields: deviceEvent(device, 'record.downloaded', { recordId: id }) }]);
      call.logger?.info('record downloaded', {
        operation: 'records.download',
        deviceId: device.deviceId,
        recordId: id,
        bytes: info.size,
      });
      return {
        size: info.size,
        contentType: CONTAINER_MEDIA_TYPE,
        bytes: options.blobs.read(options.bucket, record.objectName, { generation: record.generation }),
      };
    },

    async acknowledge(call, recordId) {
      const id = parseBoundary(recordIdSchema, recordId);
      const body = parseJsonBody(ackBodySchema, call.body);
      if (body.outcome === 'failed' && !isErrorCode(body.errorCode)) {
        throw new ProtocolError('INVALID_REQUEST', undefined, { field: 'errorCode' });
      }
      const device = await caller(call);
      await visibleRecord(device, id);
      const at = clock.now();
      const active = await devices.listActive(device.hospitalId, device.patientRef, at);
      const stored = await records.acknowledge(
        id,
        device.deviceId,
        { outcome: body.outcome, ...(body.outcome === 'failed' ? { errorCode: body.errorCode } : {}), at },
        active.map((sibling) => sibling.deviceId),
      );
      if (!stored) throw new ProtocolError('NOT_FOUND');
      await options.audit.append([
        {
          fields: deviceEvent(device, 'record.acknowledged', {
            recordId: id,
            outcome: body.outcome === 'failed' ? body.errorCode : 'STORED',
          }),
        },
      ]);
      const ack = stored.acks[device.deviceId];
      call.logger?.info('record acknowledged', {
        operation: 'records.ack',
        deviceId: device.deviceId,
        recordId: id,
        code: body.outcome === 'failed' ? body.errorCode : 'STORED',
      });
      return { recordId: id, acknowledgedAt: formatTimestamp(ack?.at ?? at) };
    },

    async listDevices(call) {
      if (call.body.length > 0) parseJsonBody(emptyBodySchema, call.body);
      const device = await caller(call);
      const siblings = await devices.listActive(device.hospitalId, device.patientRef, clock.now());
      return {
        devices: siblings.slice(0, 64).map((sibling) => ({
          deviceId: sibling.deviceId,
          hospitalId: sibling.hospitalId,
          platform: sibling.platform,
          pairedAt: formatTimestamp(sibling.pairedAt),
          expiresAt: formatTimestamp(sibling.expiresAt),
          current: sibling.deviceId === device.deviceId,
        })),
      };
    },

    async revokeDevice(call, deviceId) {
      const id = parseBoundary(deviceIdSchema, deviceId);
      parseJsonBody(emptyBodySchema, call.body);
      const device = await caller(call);
      const target = id === device.deviceId ? device : await devices.get(id);
      const now = clock.now();
      if (!target || target.hospitalId !== device.hospitalId || target.patientRef !== device.patientRef) {
        throw new ProtocolError('NOT_FOUND');
      }
      await options.audit.append([
        { fields: deviceEvent(device, 'device.revoked', { deviceId: id }), once: `revoke:${id}` },
      ]);
      if (!(await devices.revoke(device.hospitalId, id, now))) throw new ProtocolError('NOT_FOUND');
      call.logger?.info('device revoked', {
        operation: 'records.revoke',
        deviceId: id,
        hospitalId: device.hospitalId,
      });
      await sendPushHints(
        options.notifier,
        devices,
        await devices.listActive(device.hospitalId, device.patientRef, now),
        'devices',
        call.logger,
      );
      return { deviceId: id, revokedAt: formatTimestamp(now) };
    },

    async setPushToken(call) {
      const body = parseJsonBody(pushTokenBodySchema, call.body);
      const device = await caller(call);
      if (!(await devices.setFcmToken(device.deviceId, body.fcmToken)))
        throw new ProtocolError('DEVICE_REVOKED');
      call.logger?.info('push token replaced', {
        operation: 'records.push-token',
        deviceId: device.deviceId,
      });
    },

    async accessLog(call, query) {
      const page = parseBoundary(pageQuerySchema, query);
      const beforeSeq = page.pageToken === undefined ? undefined : decodeSeq(page.pageToken);
      const device = await caller(call);
      const limit = page.pageSize ?? RECORDS_DEFAULTS.pageSize;
      const events = await options.audit.forPatient(device.hospitalId, device.patientRef, {
        limit: limit + 1,
        ...(beforeSeq !== undefined ? { beforeSeq } : {}),
      });
      const shown = events.slice(0, limit);
      return {
        entries: shown.map(({ fields }) => ({
          at: fields.at,
          actor: { ...fields.actor },
          action: fields.action,
          ...(fields.recordId ? { recordId: fields.recordId } : {}),
          ...(fields.deviceId ? { deviceId: fields.deviceId } : {}),
          ...(fields.outcome ? { outcome: fields.outcome } : {}),
        })),
        ...(events.length > limit ? { nextPageToken: encodeSeq(shown.at(-1)!.seq) } : {}),
      };
    },

    async erase(call) {
      parseJsonBody(eraseBodySchema, call.body);
      const device = await caller(call);
      const { receipt } = await erasePatient(device);
      call.logger?.notice('patient erased', {
        operation: 'records.erase',
        hospitalId: device.hospitalId,
        count: Object.values(receipt.summary.deleted).reduce((n, ids) => n + ids.length, 0),
      });
      return { receipt: toBase64Url(receipt.receipt) };
    },
  };

  /**
   * Erasure (GDPR art. 17, WGBO art. 7:455): every record, invitation and device of the
   * caller's patient at this hospital, through the same purge as retention. The caller's own
   * device goes last, so that a retry after a crash can still authenticate and finish the job.
   * The job's ledger is discarded once the receipt is signed: the receipt, held by the patient,
   * is the only list of what was erased. The audit trail keeps its pseudonymous entries.
   */
  async function erasePatient(device: DeviceRecord) {
    const jobId = `erasure-${device.deviceId}`;
    const job = await options.purge.openJob(jobId, clock.now());
    const at = clock.now();
    await options.audit.append([
      {
        fields: deviceEvent(device, 'patient.erased', { deviceId: device.deviceId }),
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
      store: options.purge,
      blobs: options.blobs,
      recordsBucket: options.bucket,
      receiptsBucket: options.outboxBucket,
      audit: options.audit,
    };
    for (const kind of ['record', 'invitation', 'device'] as const) {
      for (;;) {
        const found = await options.purge.findForPatient(
          kind,
          device.hospitalId,
          device.patientRef,
          ERASE_BATCH,
        );
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
    await options.purge.note(jobId, 'devices', [self.id]);
    const receipt = await deletionReceiptFor(
      options.purge,
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
    await options.audit.append([
      {
        fields: deviceEvent(device, 'device.removed', { deviceId: self.id, outcome: 'ERASED' }),
        once: `${jobId}:self`,
      },
    ]);
    // The ledger and the caller's device go in one write: a retry either finds the ledger and
    // signs the same receipt again, or cannot authenticate because everything is gone.
    await options.purge.discardJob(jobId, [self]);
    return { receipt };
  }

  return Object.freeze(service);
}

const ERASE_BATCH = 250;

/** Access-log page tokens: base64url of the last sequence number shown. */
function encodeSeq(seq: number): string {
  return toBase64Url(new TextEncoder().encode(String(seq)));
}

function decodeSeq(token: string): number {
  const bytes = fromBase64Url(token);
  const text = bytes ? new TextDecoder().decode(bytes) : '';
  if (!/^[1-9][0-9]{0,14}$/.test(text))
    throw new ProtocolError('INVALID_REQUEST', undefined, { field: 'pageToken' });
  return Number(text);
}

/**
 * The device's enrolled public key, read from the certificate the pairing function signed and
 * stored itself (so no signature check is needed here); verifyRequest then requires its
 * fingerprint to be the deviceId the request names.
 */
function enrolledKeyOf(device: DeviceRecord): string {
  const signed = fromBase64Url(device.certificate);
  if (signed === undefined) throw new ProtocolError('INTERNAL_ERROR', 'a stored certificate is malformed');
  return readDocumentUnverified(signed, DEVICE_CERTIFICATE_TYPE, deviceCertificateSchema).devicePublicKey;
}
