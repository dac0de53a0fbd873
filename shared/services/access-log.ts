// The patient's own access log (NEN 7513; docs/PROTOCOL.md §9.2 and §16.9): what was done with
// the patient's records and devices at this hospital and by whom, newest first, for a paired
// device of that patient. Each entry comes with what the phone needs to check it is in the
// hospital's transparency log: the event exactly as committed, its salt, its leaf index and an
// inclusion proof against the cosigned checkpoint the phone verified (`treeSize`).
import type { AuditLog, RecordedAuditEntry } from '../audit/log.ts';
import {
  accessLogQuerySchema,
  fromBase64Url,
  parseBoundary,
  ProtocolError,
  toBase64Url,
} from '../core/protocol/index.ts';
import type { DeviceCaller } from './device-caller.ts';
import { RECORDS_DEFAULTS } from './records.ts';
import type { SignedCall } from './signed-call.ts';
import type { Transparency } from './transparency.ts';

export interface AccessLogServiceOptions {
  readonly caller: DeviceCaller;
  readonly audit: AuditLog;
  readonly transparency: Transparency;
}

export interface AccessLogEntry {
  at: string;
  actor: { kind: 'device' | 'hospital' | 'system' | 'operator'; id: string };
  action: string;
  recordId?: string;
  deviceId?: string;
  invitationId?: string;
  operatorRef?: string;
  outcome?: string;
  leaf: { event: string; salt: string; index?: number; inclusionProof?: string[] };
}

export interface AccessLogService {
  /** One page of the log, newest first. */
  list(
    call: SignedCall,
    query: Readonly<Record<string, string>>,
  ): Promise<{ entries: AccessLogEntry[]; nextPageToken?: string }>;
}

const ENTRY_ID = /^[A-Za-z0-9_-]{1,100}$/;

/** Page tokens: base64url of the id of the last entry shown. */
function decodeToken(token: string): string {
  const bytes = fromBase64Url(token);
  const text = bytes ? new TextDecoder().decode(bytes) : '';
  if (!ENTRY_ID.test(text)) throw new ProtocolError('INVALID_REQUEST', undefined, { field: 'pageToken' });
  return text;
}

export function createAccessLogService(options: AccessLogServiceOptions): AccessLogService {
  const { caller, audit, transparency } = options;
  return Object.freeze({
    async list(call: SignedCall, query: Readonly<Record<string, string>>) {
      const page = parseBoundary(accessLogQuerySchema, query);
      const after = page.pageToken === undefined ? undefined : decodeToken(page.pageToken);
      const device = await caller(call);
      const witnessedSize = await transparency.witnessedSize(device.hospitalId);
      const treeSize = page.treeSize ?? 0;
      // Proofs only against a tree the witness cosigned: any other the phone could not check.
      if (treeSize > witnessedSize) {
        throw new ProtocolError('INVALID_REQUEST', 'treeSize is larger than the cosigned tree', {
          field: 'treeSize',
        });
      }
      const limit = page.pageSize ?? RECORDS_DEFAULTS.pageSize;
      // One more than shown: whether a next page exists is known without a second read.
      const entries = await audit.forPatient(device.hospitalId, device.patientRef, {
        limit: limit + 1,
        ...(after !== undefined ? { after } : {}),
      });
      const shown = entries.slice(0, limit);
      const proven = shown.filter((entry) => entry.index !== undefined && entry.index < treeSize);
      const proofs = await transparency.inclusionProofs(
        device.hospitalId,
        proven.map((entry) => entry.index!),
        treeSize,
      );
      const proofOf = new Map(proven.map((entry, i) => [entry.id, proofs[i]!]));
      return {
        entries: shown.map((entry) => shownEntry(entry, proofOf.get(entry.id))),
        ...(entries.length > limit
          ? { nextPageToken: toBase64Url(new TextEncoder().encode(shown.at(-1)!.id)) }
          : {}),
      };
    },
  });
}

function shownEntry(entry: RecordedAuditEntry, inclusionProof: string[] | undefined): AccessLogEntry {
  const { fields } = entry;
  return {
    at: fields.at,
    actor: { ...fields.actor },
    action: fields.action,
    ...(fields.recordId ? { recordId: fields.recordId } : {}),
    ...(fields.deviceId ? { deviceId: fields.deviceId } : {}),
    ...(fields.invitationId ? { invitationId: fields.invitationId } : {}),
    ...(fields.operatorRef ? { operatorRef: fields.operatorRef } : {}),
    ...(fields.outcome ? { outcome: fields.outcome } : {}),
    leaf: {
      event: entry.event,
      salt: toBase64Url(entry.salt),
      ...(entry.index !== undefined ? { index: entry.index } : {}),
      ...(inclusionProof ? { inclusionProof } : {}),
    },
  };
}
