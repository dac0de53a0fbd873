// The patient's own access log (NEN 7513; docs/PROTOCOL.md §9.2): what was done with the
// patient's records and devices at this hospital and by whom, newest first, for a paired device
// of that patient. Entries leave out the trail's chaining and the patient's pseudonym.
import type { AuditLog } from '../audit/log.ts';
import {
  fromBase64Url,
  pageQuerySchema,
  parseBoundary,
  ProtocolError,
  toBase64Url,
} from '../core/protocol/index.ts';
import type { DeviceCaller } from './device-caller.ts';
import { RECORDS_DEFAULTS } from './records.ts';
import type { SignedCall } from './signed-call.ts';

export interface AccessLogServiceOptions {
  readonly caller: DeviceCaller;
  readonly audit: AuditLog;
}

export interface AccessLogEntry {
  at: string;
  actor: { kind: 'device' | 'hospital' | 'system' | 'operator'; id: string };
  action: string;
  recordId?: string;
  deviceId?: string;
  outcome?: string;
}

export interface AccessLogService {
  /** One page of the log, newest first. */
  list(
    call: SignedCall,
    query: Readonly<Record<string, string>>,
  ): Promise<{ entries: AccessLogEntry[]; nextPageToken?: string }>;
}

/** Page tokens: base64url of the last sequence number shown. */
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

export function createAccessLogService(options: AccessLogServiceOptions): AccessLogService {
  const { caller, audit } = options;
  return Object.freeze({
    async list(call: SignedCall, query: Readonly<Record<string, string>>) {
      const page = parseBoundary(pageQuerySchema, query);
      const beforeSeq = page.pageToken === undefined ? undefined : decodeSeq(page.pageToken);
      const device = await caller(call);
      const limit = page.pageSize ?? RECORDS_DEFAULTS.pageSize;
      // One more than shown: whether a next page exists is known without a second read.
      const events = await audit.forPatient(device.hospitalId, device.patientRef, {
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
  });
}
