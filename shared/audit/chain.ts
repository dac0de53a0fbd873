// The audit trail's tamper evidence (NEN 7513; groundwork for the audit issue): every event is
// hash-chained to the one before it, and checkpoints — the chain head at some sequence number —
// are signed with a KMS-held key, so that someone who can write the database (and compute
// SHA-256) still cannot edit, delete, insert or reorder events, or cut off the tail, without
// the verifier saying so and where. Pure: storage and the KMS signature are injected.
//
//   hash(e_n) = SHA-256( "cb/audit/v1" ‖ hash(e_{n-1}) ‖ canonical JSON of e_n's fields )
//   hash(e_0's predecessor) = 32 zero bytes; sequence numbers start at 1 with no gaps.
import { z } from 'zod';
import { equalBytes, sha256, toBase64Url } from '../core/bytes.ts';
import { sign, verify, type PrivateKey, type PublicKey } from '../core/crypto/index.ts';
import { auditActorSchema, PATIENT_AUDIT_ACTIONS } from '../core/protocol/api.ts';
import { canonicalJson, utf8 } from '../core/protocol/encoding.ts';
import {
  deviceIdSchema,
  hospitalIdSchema,
  invitationIdSchema,
  operatorRefSchema,
  patientRefSchema,
  recordIdSchema,
  timestampSchema,
} from '../core/protocol/ids.ts';

const CHAIN_LABEL = utf8('cb/audit/v1');
export const GENESIS_HASH = toBase64Url(new Uint8Array(32));

/** What happened, who did it, to whose data, on whose behalf. Never PHI: ids only. */
export const auditFieldsSchema = z.strictObject({
  at: timestampSchema,
  actor: auditActorSchema,
  action: z.enum([...PATIENT_AUDIT_ACTIONS, 'policy.changed', 'retention.run']),
  hospitalId: hospitalIdSchema.optional(),
  patientRef: patientRefSchema.optional(),
  /** Whose request the actor acted on (e.g. the patient whose device asked). */
  onBehalfOf: z.string().min(1).max(200).optional(),
  recordId: recordIdSchema.optional(),
  deviceId: deviceIdSchema.optional(),
  invitationId: invitationIdSchema.optional(),
  /** The member of staff who acted for the hospital: the hospital's pseudonym, never a name. */
  operatorRef: operatorRefSchema.optional(),
  /** A stable outcome or error code. */
  outcome: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]{1,63}$/)
    .optional(),
});
export type AuditFields = z.output<typeof auditFieldsSchema>;

export interface AuditEvent {
  readonly seq: number;
  readonly fields: AuditFields;
  /** base64url SHA-256 of the previous event (GENESIS_HASH for seq 1). */
  readonly prevHash: string;
  /** base64url hash of this event, as defined above. */
  readonly hash: string;
}

/** The chain head at `seq`, signed so that the database alone cannot forge it. */
export interface AuditCheckpoint {
  readonly seq: number;
  readonly hash: string;
  readonly at: string;
  /** Signature over checkpointMessage(seq, hash, at). */
  readonly signature: Uint8Array;
}

export function eventHash(prevHash: string, fields: AuditFields): string {
  return toBase64Url(
    sha256(CHAIN_LABEL, utf8(prevHash), utf8(canonicalJson(auditFieldsSchema.parse(fields)))),
  );
}

/** Appends events to a chain whose last event is `head` (undefined for an empty chain). */
export function chainEvents(head: AuditEvent | undefined, fields: readonly AuditFields[]): AuditEvent[] {
  const events: AuditEvent[] = [];
  let prev = head;
  for (const entry of fields) {
    const prevHash = prev?.hash ?? GENESIS_HASH;
    const event = { seq: (prev?.seq ?? 0) + 1, fields: entry, prevHash, hash: eventHash(prevHash, entry) };
    events.push(event);
    prev = event;
  }
  return events;
}

/** The exact bytes a checkpoint's signature covers. */
export function checkpointMessage(seq: number, hash: string, at: string): Uint8Array {
  return utf8(canonicalJson({ type: 'cb/audit-checkpoint/v1', seq, hash, at }));
}

/** Signs a chain head (the retention function does, with its KMS-unwrapped key). */
export function signCheckpoint(head: { seq: number; hash: string; at: string }, key: PrivateKey): Uint8Array {
  return sign(checkpointMessage(head.seq, head.hash, head.at), key);
}

/** The signature check verifyAuditTrail needs, for checkpoints signed by `publicKey`. */
export function checkpointSignatureVerifier(publicKey: PublicKey) {
  return (message: Uint8Array, signature: Uint8Array): boolean => {
    try {
      return equalBytes(verify(signature, publicKey), message);
    } catch {
      return false;
    }
  };
}

export type AuditProblem =
  /** An event's content no longer matches its hash, or its hash breaks the chain. */
  | 'EDITED'
  /** A sequence number is missing. */
  | 'DELETED'
  /** An event appears that the chain never had (a repeated sequence number). */
  | 'INSERTED'
  /** Events are out of their chained order. */
  | 'REORDERED'
  /**
   * The event before this one is not the one it was chained to: one was deleted and the rest
   * renumbered, or the one before was edited and its hash recomputed. The chain alone cannot
   * tell which; either way the trail was changed just before `seq`.
   */
  | 'BROKEN_LINK'
  /** A signed checkpoint names events that are no longer there. */
  | 'TRUNCATED'
  /** The chain was rewritten consistently, but disagrees with a signed checkpoint. */
  | 'CHECKPOINT_MISMATCH'
  /** A checkpoint's signature does not verify. */
  | 'CHECKPOINT_INVALID';

export type AuditVerdict =
  | {
      readonly ok: true;
      readonly lastSeq: number;
      readonly checkpointsVerified: number;
      /** Events before this one were pruned after their retention, behind a signed anchor. */
      readonly firstSeq: number;
    }
  | { readonly ok: false; readonly problem: AuditProblem; readonly seq: number };

/** NEN 7513's floor: no audit entry may be pruned before it is five years old. */
export const MIN_AUDIT_RETENTION_DAYS = 1825;

export interface VerifyOptions {
  /** When the check runs (a pruned prefix must be older than the retention floor by then). */
  readonly now?: Date;
  readonly minRetentionDays?: number;
}

/**
 * Verifies a whole trail: `events` as storage returns them in sequence order, `checkpoints`
 * in any order. Reports the first problem and the sequence number where it shows.
 *
 * A trail may start after 1 only where retention pruned it: the first event must then link to a
 * signed checkpoint of the event just before it (the anchor), and that checkpoint must be older
 * than the retention floor. Anything else missing at the start is DELETED.
 */
export function verifyAuditTrail(
  events: readonly AuditEvent[],
  checkpoints: readonly AuditCheckpoint[],
  verifySignature: (message: Uint8Array, signature: Uint8Array) => boolean,
  options: VerifyOptions = {},
): AuditVerdict {
  const hashesBySeq = new Map<number, string>();
  const anchor = prunedAnchor(events, checkpoints, verifySignature, options);
  const offset = anchor ? anchor.seq : 0;
  let prevHash = anchor ? anchor.hash : GENESIS_HASH;
  for (const [index, event] of events.entries()) {
    const expectedSeq = index + 1 + offset;
    if (event.seq < expectedSeq) return { ok: false, problem: 'INSERTED', seq: event.seq };
    if (event.seq > expectedSeq) {
      // A later event standing here: reordered if the chain continues through it from further
      // back, deleted if the missing ones are simply gone.
      const reordered = events.slice(index + 1).some((later) => later.seq < event.seq);
      return { ok: false, problem: reordered ? 'REORDERED' : 'DELETED', seq: expectedSeq };
    }
    if (eventHash(event.prevHash, event.fields) !== event.hash)
      return { ok: false, problem: 'EDITED', seq: event.seq };
    if (event.prevHash !== prevHash) {
      // The link to the predecessor is broken; where the link points tells what happened.
      const target = events.find((other) => other !== event && other.hash === event.prevHash);
      if (target && target.seq > event.seq) return { ok: false, problem: 'REORDERED', seq: event.seq };
      if (target) return { ok: false, problem: 'INSERTED', seq: event.seq - 1 };
      return { ok: false, problem: 'BROKEN_LINK', seq: event.seq };
    }
    hashesBySeq.set(event.seq, event.hash);
    prevHash = event.hash;
  }

  const lastSeq = events.length + offset;
  // Checkpoints at or before the anchor speak of pruned events; the anchor itself was checked.
  const sorted = [...checkpoints].filter((c) => c.seq > offset).sort((a, b) => a.seq - b.seq);
  for (const checkpoint of sorted) {
    if (
      !verifySignature(
        checkpointMessage(checkpoint.seq, checkpoint.hash, checkpoint.at),
        checkpoint.signature,
      )
    ) {
      return { ok: false, problem: 'CHECKPOINT_INVALID', seq: checkpoint.seq };
    }
  }
  let verifiedUpTo = offset;
  for (const checkpoint of sorted) {
    if (checkpoint.seq > lastSeq) return { ok: false, problem: 'TRUNCATED', seq: lastSeq + 1 };
    const actual = hashesBySeq.get(checkpoint.seq);
    if (actual === undefined || !equalBytes(utf8(actual), utf8(checkpoint.hash))) {
      // Rewritten between the last checkpoint that still holds and this one.
      return { ok: false, problem: 'CHECKPOINT_MISMATCH', seq: verifiedUpTo + 1 };
    }
    verifiedUpTo = checkpoint.seq;
  }
  return { ok: true, lastSeq, checkpointsVerified: sorted.length + (anchor ? 1 : 0), firstSeq: offset + 1 };
}

/** The signed checkpoint a pruned trail starts after, if the pruning was legitimate. */
function prunedAnchor(
  events: readonly AuditEvent[],
  checkpoints: readonly AuditCheckpoint[],
  verifySignature: (message: Uint8Array, signature: Uint8Array) => boolean,
  options: VerifyOptions,
): AuditCheckpoint | undefined {
  const first = events[0];
  if (first && first.seq <= 1) return undefined;
  // With events left, the anchor is the checkpoint the first one links to; with none left (all
  // pruned), it is the newest checkpoint.
  const anchor = first
    ? checkpoints.find((c) => c.seq === first.seq - 1 && c.hash === first.prevHash)
    : [...checkpoints].sort((a, b) => b.seq - a.seq)[0];
  if (!anchor || !verifySignature(checkpointMessage(anchor.seq, anchor.hash, anchor.at), anchor.signature)) {
    return undefined;
  }
  const floorMs = (options.minRetentionDays ?? MIN_AUDIT_RETENTION_DAYS) * 24 * 3600_000;
  const now = (options.now ?? new Date()).getTime();
  // Pruned before its time is deleted, however well anchored.
  return Date.parse(anchor.at) <= now - floorMs ? anchor : undefined;
}
