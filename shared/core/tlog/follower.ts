// What a party that follows a log does with each new checkpoint: a witness before it cosigns,
// a phone on every sync, a monitor on every poll. It keeps the last checkpoint it trusted and
// accepts a new one only if the right keys signed it and a consistency proof shows that the
// new tree extends the old one. An operator who rewrote, reordered, dropped or inserted an
// entry anywhere before the old size cannot produce that proof, and one who shows this
// follower one history and someone else another is caught the moment the two compare notes
// (or, for a phone, because the witness will only cosign the one history it follows).
import { TlogError } from './errors.ts';
import type { Checkpoint } from './checkpoint.ts';
import { openCheckpoint } from './checkpoint.ts';
import type { CosignatureVerifier } from './cosignature.ts';
import { hashesEqual, leafHash } from './hash.ts';
import type { NoteVerifier } from './note.ts';
import { verifyConsistency, verifyInclusion } from './tree.ts';

/** Which log a follower follows and whose signatures it requires. */
export interface LogTrust {
  readonly origin: string;
  /** The log operator's (platform's) key: every checkpoint must carry its signature. */
  readonly log: NoteVerifier;
  /** Witnesses whose cosignature every checkpoint must carry (a phone: its hospital's). */
  readonly witnesses: readonly CosignatureVerifier[];
}

/** The last checkpoint a follower accepted: all it must keep between syncs. */
export interface TrustedCheckpoint {
  readonly size: number;
  readonly rootHash: Uint8Array;
}

export interface AcceptedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly trusted: TrustedCheckpoint;
  /** Each required witness's cosignature time, POSIX seconds, in `trust.witnesses` order. */
  readonly cosignedAt: readonly number[];
}

/**
 * Opens `note` under `trust` and checks that it extends `previous` (none on first use) by
 * `consistencyProof`. Throws TlogError: SIGNATURE_MISSING / SIGNATURE_INVALID (the log did not
 * sign it), COSIGNATURE_MISSING (a required witness did not), CHECKPOINT_ROLLBACK (a smaller tree
 * than one already seen), INCONSISTENT (not an extension of the previous tree: a rewritten
 * history, or a split view).
 */
export function acceptCheckpoint(
  trust: LogTrust,
  previous: TrustedCheckpoint | undefined,
  note: string | Uint8Array,
  consistencyProof: readonly Uint8Array[],
): AcceptedCheckpoint {
  const opened = openCheckpoint(note, { origin: trust.origin, verifiers: [trust.log, ...trust.witnesses] });
  if (!opened.verified.some((v) => v.verifier === trust.log)) {
    throw new TlogError('SIGNATURE_MISSING', 'the log did not sign this checkpoint');
  }
  const cosignedAt = trust.witnesses.map((witness) => {
    const line = opened.verified.find((v) => v.verifier === witness);
    const at = line && witness.timestampOf(line.signature.signature);
    if (at === undefined) throw new TlogError('COSIGNATURE_MISSING', `no cosignature from ${witness.name}`);
    return at;
  });
  const { checkpoint } = opened;
  if (previous !== undefined) {
    if (checkpoint.size < previous.size) {
      throw new TlogError('CHECKPOINT_ROLLBACK', 'the log shows a smaller tree than it showed before');
    }
    if (
      !verifyConsistency(
        previous.size,
        checkpoint.size,
        previous.rootHash,
        checkpoint.rootHash,
        consistencyProof,
      )
    ) {
      throw new TlogError('INCONSISTENT', 'the new tree does not extend the tree seen before');
    }
  }
  return { checkpoint, trusted: { size: checkpoint.size, rootHash: checkpoint.rootHash }, cosignedAt };
}

/** True if `leafData` is leaf `index` of the tree `trusted` describes, by `proof`. */
export function isIncluded(
  trusted: TrustedCheckpoint,
  leafData: Uint8Array,
  index: number,
  proof: readonly Uint8Array[],
): boolean {
  return verifyInclusion(leafHash(leafData), index, trusted.size, proof, trusted.rootHash);
}

/** Two checkpoints of one size that differ are a fork: proof the log showed two histories. */
export function isSplitView(a: TrustedCheckpoint, b: TrustedCheckpoint): boolean {
  return a.size === b.size && !hashesEqual(a.rootHash, b.rootHash);
}
