// The records service (invariants 1, 6, 9; docs/PROTOCOL.md §9.2, §10.4): a paired device lists,
// downloads and acknowledges its own records. Another patient's record, or one this device holds
// no key for, is NOT_FOUND, exactly like an id that does not exist: no existence oracle. Logic
// over ports only; functions/records wires the adapters.
import type { AuditLog } from '../audit/log.ts';
import type { BlobStore } from '../ports/blob-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { DeviceRecord, DeviceStore } from '../ports/pairing-store.ts';
import type { RecordCursor, RecordStore, StoredRecord } from '../ports/record-store.ts';
import {
  ackBodySchema,
  CONTAINER_MEDIA_TYPE,
  formatTimestamp,
  fromBase64Url,
  isErrorCode,
  pageQuerySchema,
  parseBoundary,
  parseJsonBody,
  ProtocolError,
  recordIdSchema,
  toBase64Url,
} from '../core/protocol/index.ts';
import { deviceEvent, type DeviceCaller } from './device-caller.ts';
import type { SignedCall } from './signed-call.ts';

export const RECORDS_DEFAULTS = {
  /** Records (and access-log entries) per page when the device does not ask. */
  pageSize: 50,
} as const;

export interface RecordsServiceOptions {
  readonly caller: DeviceCaller;
  readonly records: RecordStore;
  /** An acknowledgement is judged against the patient's active devices. */
  readonly devices: DeviceStore;
  readonly blobs: BlobStore;
  /** The records bucket. */
  readonly bucket: string;
  readonly clock: Clock;
  /** NEN 7513: downloads and acknowledgements are logged. */
  readonly audit: AuditLog;
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
  /** The first byte served: 0, or where a resumed download asked to start. */
  readonly start: number;
  readonly size: number;
  readonly contentType: string;
  readonly bytes: AsyncIterable<Uint8Array>;
}

export interface RecordsService {
  list(
    call: SignedCall,
    query: Readonly<Record<string, string>>,
  ): Promise<{ records: RecordSummary[]; nextPageToken?: string }>;
  /** With `from`, the bytes from there on (a resumed download); see the implementation. */
  content(call: SignedCall, recordId: string, from?: number): Promise<RecordContent>;
  acknowledge(call: SignedCall, recordId: string): Promise<{ recordId: string; acknowledgedAt: string }>;
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

export function createRecordsService(options: RecordsServiceOptions): RecordsService {
  const { caller, records, devices, clock } = options;

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

  return Object.freeze({
    async list(call: SignedCall, query: Readonly<Record<string, string>>) {
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

    /**
     * A record's container, or with `from`, its bytes from there on (a resumed download; a
     * `from` outside the object is ignored and the whole is served, as RFC 9110 allows).
     */
    async content(call: SignedCall, recordId: string, from?: number) {
      const id = parseBoundary(recordIdSchema, recordId);
      const device = await caller(call);
      const record = await visibleRecord(device, id);
      const info = await options.blobs.stat(options.bucket, record.objectName);
      // The blob must be exactly the one ingest checked; anything else is not served.
      if (!info || info.generation !== record.generation) throw new ProtocolError('NOT_FOUND');
      // Logged before the first byte leaves: no access without an audit entry.
      await options.audit.append([
        { fields: deviceEvent(clock, device, 'record.downloaded', { recordId: id }) },
      ]);
      call.logger?.info('record downloaded', {
        operation: 'records.download',
        deviceId: device.deviceId,
        recordId: id,
        bytes: info.size,
      });
      // Read as the byte range 0..size-1, which the store does not check against the object's
      // CRC32C (only full reads are). A check here could only fail after the status has gone
      // out, and for a small object before the first byte, as an INTERNAL_ERROR; either way the
      // device would learn nothing it can act on. The device checks far more than a CRC: the
      // hospital-signed digest of the whole container and every chunk's AEAD tag and position,
      // so altered bytes passed through end as DIGEST_MISMATCH or CHUNK_INVALID on the device.
      // The range also never sends more than the content-length promises.
      const start =
        from !== undefined && Number.isSafeInteger(from) && from > 0 && from < info.size ? from : 0;
      return {
        size: info.size,
        start,
        contentType: CONTAINER_MEDIA_TYPE,
        bytes: options.blobs.read(options.bucket, record.objectName, {
          generation: record.generation,
          ...(info.size > 0 ? { start, end: info.size - 1 } : {}), // ingest files no empty container
        }),
      };
    },

    async acknowledge(call: SignedCall, recordId: string) {
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
      const code = body.outcome === 'failed' ? body.errorCode : 'STORED';
      await options.audit.append([
        { fields: deviceEvent(clock, device, 'record.acknowledged', { recordId: id, outcome: code }) },
      ]);
      const ack = stored.acks[device.deviceId];
      call.logger?.info('record acknowledged', {
        operation: 'records.ack',
        deviceId: device.deviceId,
        recordId: id,
        code,
      });
      return { recordId: id, acknowledgedAt: formatTimestamp(ack?.at ?? at) };
    },
  });
}
