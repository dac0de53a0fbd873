// One error type for the transparency-log core, so callers (the log writer, the witness client,
// monitors) branch on a stable `code` instead of on message text. Messages describe the defect
// in general terms; the data they refer to is public log data, never secrets.

export type TlogErrorCode =
  /** An argument is outside what the function accepts (negative index, m > n, wrong hash size). */
  | 'INVALID_ARGUMENT'
  /** A tile the caller had to supply is missing or has the wrong length. */
  | 'TILE_INVALID'
  /** A tile or entries path does not follow c2sp.org/tlog-tiles. */
  | 'TILE_PATH_INVALID'
  /** An entry bundle is not a sequence of uint16-length-prefixed entries. */
  | 'BUNDLE_INVALID'
  /** The bytes are not a well-formed signed note (c2sp.org/signed-note). */
  | 'NOTE_MALFORMED'
  /** The note text is not a well-formed checkpoint (c2sp.org/tlog-checkpoint). */
  | 'CHECKPOINT_MALFORMED'
  /** The checkpoint is for another log than the one the caller expected. */
  | 'CHECKPOINT_ORIGIN_MISMATCH'
  /** A signature line from a known key did not verify. */
  | 'SIGNATURE_INVALID'
  /** No signature line came from a known key, so the note text must be ignored. */
  | 'SIGNATURE_MISSING'
  /** A verifier key string (name+id+base64) is malformed or its key id does not match. */
  | 'KEY_INVALID'
  /** A witness the follower requires did not cosign the checkpoint. */
  | 'COSIGNATURE_MISSING'
  /** The log shows a smaller tree than one the follower already accepted. */
  | 'CHECKPOINT_ROLLBACK'
  /** A consistency proof does not show the new tree extending the old: a rewritten history or a fork. */
  | 'INCONSISTENT';

export class TlogError extends Error {
  readonly code: TlogErrorCode;

  constructor(code: TlogErrorCode, message: string) {
    super(message);
    this.name = 'TlogError';
    this.code = code;
  }
}
