// Typed errors for everything in shared/core/crypto. Callers branch on `code`, which is stable and
// part of the protocol's error vocabulary (receipts and 4xx bodies carry it). Messages say
// what went wrong in general terms only: they never hold key bytes, plaintext, record ids or
// anything else a log must not see.

export type CryptoErrorCode =
  /** The WebAssembly build of Themis could not be initialised. */
  | 'THEMIS_LOAD_FAILED'
  /** Themis failed in a way that says nothing about the input (out of memory, abort). */
  | 'THEMIS_FAILURE'
  /** Bytes that are not a valid key of the expected kind (garbage, wrong type, RSA, bad point). */
  | 'KEY_INVALID'
  /** A private and a public key given as one pair do not belong together. */
  | 'KEY_PAIR_MISMATCH'
  /** An argument is malformed: bad record id, chunk size, non-byte input, empty message. */
  | 'INPUT_INVALID'
  /** An input exceeds a size limit that keeps every Themis call bounded. */
  | 'INPUT_TOO_LARGE'
  /** A record chunk failed authentication: tampered, reordered, from another record, wrong key. */
  | 'CHUNK_INVALID'
  /** The chunk sequence ended before the chunk marked last (or held no chunk at all). */
  | 'RECORD_TRUNCATED'
  /** More data followed the chunk marked last. */
  | 'TRAILING_DATA'
  /** A wrapped key did not open: wrong device key, wrong hospital key, or tampered. */
  | 'KEY_UNWRAP_FAILED'
  /** A wrapped key opened but is bound to another record, device or hospital. */
  | 'KEY_BINDING_MISMATCH'
  /** A signed message did not verify with the given public key, or is malformed. */
  | 'SIGNATURE_INVALID';

export interface CryptoErrorDetails {
  /** For record-cell errors: the zero-based position of the offending chunk. */
  readonly chunkIndex?: number;
}

export class CryptoError extends Error {
  readonly code: CryptoErrorCode;
  readonly details: CryptoErrorDetails;

  constructor(
    code: CryptoErrorCode,
    message: string,
    options: { cause?: unknown } & CryptoErrorDetails = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CryptoError';
    this.code = code;
    this.details = options.chunkIndex === undefined ? {} : { chunkIndex: options.chunkIndex };
  }
}

export function isCryptoError(error: unknown, code?: CryptoErrorCode): error is CryptoError {
  return error instanceof CryptoError && (code === undefined || error.code === code);
}
