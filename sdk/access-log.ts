// The device's side of the audit transparency log (docs/PROTOCOL.md §10.4). Before every sync
// and access-log listing the device fetches its hospital's newest cosigned checkpoint and
// accepts it only if the platform signed it, the hospital's witness (whose key the QR code
// carried) cosigned it, and it extends the checkpoint the device accepted before. Each entry of
// its access log is then checked against that checkpoint: the event text says exactly what the
// entry shows, and, once sequenced into the tree the device trusts, its inclusion proof holds.
import type { z } from 'zod';
import { openAuditEvent, type AuditFields } from '../shared/core/protocol/audit-event.ts';
import {
  accessLogResponseSchema,
  deviceCheckpointResponseSchema,
  fromBase64Url,
} from '../shared/core/protocol/index.ts';
import {
  auditLeafData,
  cosignatureVerifier,
  isIncluded,
  witnessKeyName,
  type TrustedCheckpoint,
} from '../shared/core/tlog/index.ts';
import { RefusedError } from './errors.ts';
import { auditLogEntry, type DeviceHome, type Enrolment } from './home.ts';
import { followCheckpoint, followedLogSchema, trustedOf, type FollowedLog } from './log-follower.ts';
import { parseStoredJson } from './store.ts';

/** The checkpoint this device last accepted for the enrolment's hospital, if any. */
async function savedLog(home: DeviceHome, hospitalId: string): Promise<FollowedLog | undefined> {
  const text = await home.store.get(auditLogEntry(hospitalId));
  if (text === undefined) return undefined;
  const saved = parseStoredJson(text, followedLogSchema);
  // A kept checkpoint that cannot be read is not silently forgotten: that would let the
  // service roll the device back to any tree it likes.
  if (saved === undefined) {
    throw new RefusedError('AUDIT_LOG_STATE_UNREADABLE', 'the kept audit-log checkpoint is unreadable');
  }
  return saved;
}

/**
 * Fetches and checks the hospital's newest cosigned checkpoint, keeps it, and returns the tree
 * the device now trusts (undefined while nothing has been cosigned and nothing was accepted
 * before). Throws RefusedError (AUDIT_LOG_INCONSISTENT, AUDIT_LOG_UNWITNESSED, AUDIT_LOG_ROLLBACK,
 * AUDIT_LOG_SIGNATURE_INVALID, AUDIT_LOG_KEY_CHANGED, …) and keeps what it had when it cannot.
 */
export async function followAuditLog(
  home: DeviceHome,
  enrolment: Enrolment,
): Promise<TrustedCheckpoint | undefined> {
  const { hospitalId, apiBase, witnessKey } = enrolment.data;
  const saved = await savedLog(home, hospitalId);
  const answer = await enrolment.api.call(
    { method: 'GET', target: `/records/v1/audit-log/checkpoint?fromSize=${saved?.size ?? 0}` },
    deviceCheckpointResponseSchema,
  );
  if (answer.checkpoint !== undefined && witnessKey === undefined) {
    throw new RefusedError(
      'AUDIT_LOG_UNWITNESSED',
      'this enrolment has no witness key to check the audit log with: pair again',
    );
  }
  const followed = followCheckpoint({
    prefix: 'AUDIT_LOG',
    apiBase,
    hospitalId,
    witnesses:
      witnessKey === undefined
        ? []
        : [cosignatureVerifier(witnessKeyName(hospitalId), fromBase64Url(witnessKey)!)],
    saved,
    answer,
  });
  if (followed === undefined) return saved && trustedOf(saved);
  if (saved === undefined || followed.state.size !== saved.size) {
    await home.store.set(auditLogEntry(hospitalId), JSON.stringify(followed.state, null, 2));
  }
  return followed.accepted.trusted;
}

type AccessLogEntry = z.output<typeof accessLogResponseSchema>['entries'][number];

export interface CheckedEntry {
  readonly entry: AccessLogEntry;
  /** True when its inclusion in the trusted tree was proven; false while it is pending. */
  readonly verified: boolean;
}

/** The fields an entry shows, as the event text must say them. */
function shownFields(entry: AccessLogEntry): Record<string, unknown> {
  const { leaf: _leaf, ...shown } = entry;
  return shown;
}

function eventFields(fields: AuditFields): Record<string, unknown> {
  return {
    at: fields.at,
    actor: fields.actor,
    action: fields.action,
    ...(fields.recordId !== undefined ? { recordId: fields.recordId } : {}),
    ...(fields.deviceId !== undefined ? { deviceId: fields.deviceId } : {}),
    ...(fields.invitationId !== undefined ? { invitationId: fields.invitationId } : {}),
    ...(fields.operatorRef !== undefined ? { operatorRef: fields.operatorRef } : {}),
    ...(fields.outcome !== undefined ? { outcome: fields.outcome } : {}),
  };
}

function sameJson(a: unknown, b: unknown): boolean {
  const sorted = (value: unknown): unknown =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(
          Object.entries(value as Record<string, unknown>)
            .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
            .map(([key, inner]) => [key, sorted(inner)]),
        )
      : value;
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
}

/**
 * Checks one access-log entry: its event text is canonical and says exactly what the entry
 * shows, for this hospital (AUDIT_ENTRY_MISMATCH otherwise); if its index is inside the trusted
 * tree, the inclusion proof must hold (AUDIT_ENTRY_NOT_INCLUDED otherwise).
 */
export function checkAccessLogEntry(
  entry: AccessLogEntry,
  hospitalId: string,
  trusted: TrustedCheckpoint | undefined,
): CheckedEntry {
  let fields: AuditFields;
  try {
    fields = openAuditEvent(entry.leaf.event);
  } catch {
    throw new RefusedError('AUDIT_ENTRY_MISMATCH', `the event of the entry at ${entry.at} does not parse`);
  }
  if (fields.hospitalId !== hospitalId || !sameJson(eventFields(fields), shownFields(entry))) {
    throw new RefusedError(
      'AUDIT_ENTRY_MISMATCH',
      `the entry at ${entry.at} shows other fields than its committed event`,
    );
  }
  const { index, inclusionProof } = entry.leaf;
  if (trusted === undefined || index === undefined || index >= trusted.size) {
    return { entry, verified: false };
  }
  const salt = fromBase64Url(entry.leaf.salt)!;
  const proof = (inclusionProof ?? []).map((hash) => fromBase64Url(hash)!);
  if (!isIncluded(trusted, auditLeafData(salt, entry.leaf.event), index, proof)) {
    throw new RefusedError(
      'AUDIT_ENTRY_NOT_INCLUDED',
      `the entry at ${entry.at} (leaf ${index}) is not in the cosigned log`,
    );
  }
  return { entry, verified: true };
}

/**
 * One page of the patient's access log, newest first, each entry checked against the tree the
 * device trusts (after following the log to its newest cosigned checkpoint).
 */
export async function verifiedAccessLog(
  home: DeviceHome,
  enrolment: Enrolment,
  pageSize: number,
): Promise<{ treeSize: number; entries: CheckedEntry[] }> {
  const trusted = await followAuditLog(home, enrolment);
  const treeSize = trusted?.size ?? 0;
  const { entries } = await enrolment.api.call(
    { method: 'GET', target: `/records/v1/access-log?pageSize=${pageSize}&treeSize=${treeSize}` },
    accessLogResponseSchema,
  );
  return {
    treeSize,
    entries: entries.map((entry) => checkAccessLogEntry(entry, enrolment.data.hospitalId, trusted)),
  };
}
