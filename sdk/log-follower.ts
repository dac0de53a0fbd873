// Following a hospital's audit transparency log (docs/PROTOCOL.md §16), as the connector's
// witness and the patient's device both do: pin the platform's log key on first use, accept a
// new checkpoint only if that key signed it (and, for a device, the hospital's witness cosigned
// it) and a consistency proof shows it extends the one kept from before, then keep the new one.
// Every refusal is a RefusedError with a stable code, and nothing is kept from a refused answer.
// Pure: where the state is kept is the caller's (a DeviceStore entry, the witness's file).
import { z } from 'zod';
import type { deviceCheckpointResponseSchema } from '../shared/core/protocol/index.ts';
import { fromBase64Url, toBase64Url } from '../shared/core/protocol/index.ts';
import {
  acceptCheckpoint,
  auditLogKeyName,
  auditLogOrigin,
  ed25519VerifierFromKey,
  TlogError,
  type AcceptedCheckpoint,
  type CosignatureVerifier,
  type NoteVerifier,
  type TrustedCheckpoint,
} from '../shared/core/tlog/index.ts';
import { RefusedError } from './errors.ts';

/** What a follower keeps between rounds: the pinned log key and the last checkpoint it accepted. */
export const followedLogSchema = z.strictObject({
  /** The platform's log key (`<name>+<id>+<base64>`), pinned on first use. */
  logKey: z.string().min(1).max(512),
  size: z.int().min(0),
  /** The accepted tree's root hash, base64url. */
  rootHash: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
});
export type FollowedLog = z.output<typeof followedLogSchema>;

/** The checkpoint answer of both audit-log endpoints (the witness's has the same shape). */
export type CheckpointAnswer = z.output<typeof deviceCheckpointResponseSchema>;

export interface FollowOptions {
  /** Error code prefix: `LOG` (the connector's witness) or `AUDIT_LOG` (the device). */
  readonly prefix: 'LOG' | 'AUDIT_LOG';
  readonly apiBase: string;
  readonly hospitalId: string;
  /** Cosignatures every checkpoint must carry (a device: its hospital's witness; a witness: none). */
  readonly witnesses: readonly CosignatureVerifier[];
  readonly saved: FollowedLog | undefined;
  readonly answer: CheckpointAnswer;
}

export interface Followed {
  readonly accepted: AcceptedCheckpoint;
  /** The state to keep once whatever depends on the checkpoint has succeeded. */
  readonly state: FollowedLog;
}

export function trustedOf(state: FollowedLog): TrustedCheckpoint {
  return { size: state.size, rootHash: fromBase64Url(state.rootHash)! };
}

/**
 * Checks a checkpoint answer against the saved state. Returns undefined when the answer has no
 * checkpoint and none was accepted before (nothing to follow yet); throws RefusedError otherwise.
 */
export function followCheckpoint(options: FollowOptions): Followed | undefined {
  const { prefix, saved, answer } = options;
  const refuse = (code: string, message: string) => new RefusedError(`${prefix}_${code}`, message);
  if (answer.checkpoint === undefined) {
    if (saved === undefined) return undefined;
    throw refuse(
      'ROLLBACK',
      `the service shows no checkpoint, but one of ${saved.size} entries was accepted`,
    );
  }
  if (answer.logKey === undefined) throw refuse('KEY_MISSING', 'the service did not name its log key');
  if (saved !== undefined && saved.logKey !== answer.logKey) {
    throw refuse('KEY_CHANGED', 'the log key differs from the one pinned on first use');
  }
  let log: NoteVerifier;
  try {
    log = ed25519VerifierFromKey(answer.logKey);
  } catch {
    throw refuse('KEY_INVALID', 'the log key is not an Ed25519 verifier key');
  }
  if (log.name !== auditLogKeyName(options.apiBase)) {
    throw refuse('KEY_INVALID', 'the log key is not named for this deployment');
  }
  const trust = {
    origin: auditLogOrigin(options.apiBase, options.hospitalId),
    log,
    witnesses: options.witnesses,
  };
  const proof = answer.consistencyProof.map((hash) => {
    const bytes = fromBase64Url(hash);
    if (bytes === undefined) throw refuse('INCONSISTENT', 'a consistency proof hash is not base64url');
    return bytes;
  });
  let accepted: AcceptedCheckpoint;
  try {
    accepted = acceptCheckpoint(trust, saved && trustedOf(saved), answer.checkpoint, proof);
  } catch (error) {
    if (!(error instanceof TlogError)) throw error;
    throw refuse(TLOG_REFUSALS[error.code] ?? 'CHECKPOINT_INVALID', error.message);
  }
  return {
    accepted,
    state: {
      logKey: answer.logKey,
      size: accepted.trusted.size,
      rootHash: toBase64Url(accepted.trusted.rootHash),
    },
  };
}

const TLOG_REFUSALS: Partial<Record<TlogError['code'], string>> = {
  INCONSISTENT: 'INCONSISTENT',
  CHECKPOINT_ROLLBACK: 'ROLLBACK',
  COSIGNATURE_MISSING: 'UNWITNESSED',
  SIGNATURE_MISSING: 'SIGNATURE_INVALID',
  SIGNATURE_INVALID: 'SIGNATURE_INVALID',
};
