// The one catalogue of Clinic Bridge's stable error codes: every 4xx body, rejection receipt,
// device acknowledgement and client-side decoder error names one of these. A code never
// changes meaning once published; retire a code rather than reuse it. Each code has one HTTP
// status (what a function answers when it returns that code) and a short message that is safe
// to show and to log: no code's message, nor any detail a ProtocolError carries, may hold PHI,
// key material, tokens, QR secrets or hospital patient numbers (invariant 9).
import { CryptoError } from '../crypto/index.ts';
import type { CryptoErrorCode } from '../crypto/index.ts';

export interface ErrorCodeInfo {
  readonly status: number;
  readonly message: string;
}

export const ERROR_CODES = {
  // ---- Generic API errors ----
  INVALID_REQUEST: { status: 400, message: 'The request is malformed or fails validation.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The request body must be application/json.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large.' },
  NOT_FOUND: { status: 404, message: 'Not found.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'The method is not allowed on this resource.' },
  CONFLICT: { status: 409, message: 'The resource already exists with different content.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; retry later.' },
  INTERNAL_ERROR: { status: 500, message: 'An internal error occurred.' },
  UNAVAILABLE: { status: 503, message: 'The service is temporarily unavailable; retry later.' },

  // ---- Request signing (devices and hospitals) ----
  SIGNATURE_MISSING: { status: 401, message: 'The request is not signed.' },
  SIGNATURE_MALFORMED: { status: 401, message: 'The request signature headers are malformed.' },
  SIGNATURE_INVALID: { status: 401, message: 'The signature does not verify.' },
  REQUEST_EXPIRED: { status: 401, message: 'The request timestamp is outside the allowed window.' },
  REQUEST_REPLAYED: { status: 401, message: 'The request nonce has been used before.' },
  UNKNOWN_KEY: { status: 401, message: 'The signing key is not registered.' },
  DEVICE_REVOKED: { status: 403, message: 'The device has been revoked.' },
  HOSPITAL_SUSPENDED: { status: 403, message: 'The hospital is not allowed to use the service.' },

  // ---- Invitations and pairing ----
  INVITATION_INVALID: { status: 403, message: 'The invitation or its token is not valid.' },
  INVITATION_EXPIRED: { status: 410, message: 'The invitation has expired.' },
  INVITATION_USED: { status: 409, message: 'The invitation has already been used.' },
  INVITATION_ATTEMPTS_EXCEEDED: { status: 403, message: 'The invitation is locked after too many attempts.' },
  DEVICE_LIMIT_REACHED: { status: 409, message: 'The patient has the maximum number of paired devices.' },
  DEVICE_ALREADY_PAIRED: { status: 409, message: 'This device key is already paired.' },
  CERTIFICATE_INVALID: { status: 403, message: 'The device certificate is not valid.' },
  CERTIFICATE_EXPIRED: { status: 403, message: 'The device certificate has expired.' },
  CERTIFICATE_LATE: {
    status: 403,
    message: 'The device certificate was issued after its invitation expired.',
  },
  INVITATION_NOT_ISSUED: {
    status: 403,
    message: 'The hospital did not issue the invitation this device names.',
  },
  BINDING_PROOF_INVALID: { status: 403, message: 'The device binding proof does not verify.' },

  // ---- Device linking (§17) ----
  LINK_INVALID: {
    status: 403,
    message: 'The device link is not signed by a current device of this patient.',
  },
  LINK_PROOF_INVALID: { status: 403, message: "The device link was not made from this device's link code." },
  LINK_REPLAYED: { status: 409, message: 'This link code has already been used.' },
  LINK_RECORD_INVALID: {
    status: 403,
    message: 'The device link carries a key for a record its signer cannot open.',
  },

  // ---- Audit transparency log ----
  COSIGNATURE_INVALID: {
    status: 400,
    message: 'The cosigned checkpoint is not one this log published, or its cosignature does not verify.',
  },
  WITNESS_KEY_MISMATCH: { status: 409, message: 'Another witness key already cosigns this log.' },

  // ---- Signed documents ----
  DOCUMENT_INVALID: { status: 400, message: 'The signed document is malformed or fails validation.' },
  DOCUMENT_TYPE_MISMATCH: { status: 400, message: 'The signed document is of another type.' },
  DOCUMENT_TOO_LARGE: { status: 413, message: 'The signed document is too large.' },

  // ---- Upload container and ingest (rejection receipts carry these) ----
  UPLOAD_MALFORMED: { status: 400, message: 'The upload container is malformed.' },
  UPLOAD_VERSION_UNSUPPORTED: { status: 400, message: 'The upload container version is not supported.' },
  UPLOAD_TRUNCATED: { status: 400, message: 'The upload container ends early.' },
  UPLOAD_TRAILING_DATA: { status: 400, message: 'Data follows the end of the upload container.' },
  UPLOAD_TOO_LARGE: { status: 413, message: 'The upload exceeds a size limit.' },
  UPLOAD_EXPIRED: { status: 422, message: 'The upload has expired or is dated in the future.' },
  MANIFEST_TOO_LARGE: { status: 413, message: 'The upload manifest exceeds 64 KiB.' },
  MANIFEST_INVALID: { status: 400, message: 'The upload manifest is malformed or inconsistent.' },
  MANIFEST_SIGNATURE_INVALID: { status: 403, message: 'The upload manifest signature does not verify.' },
  PATH_MISMATCH: { status: 422, message: 'The upload path does not match its manifest.' },
  UNKNOWN_HOSPITAL: { status: 422, message: 'The hospital is not registered.' },
  UNKNOWN_PATIENT: { status: 422, message: 'The patient has no paired devices at this hospital.' },
  UNKNOWN_DEVICE: { status: 422, message: 'A recipient is not an active device of the patient.' },
  DIGEST_MISMATCH: { status: 422, message: 'The ciphertext does not match the manifest digest.' },
  RECORD_EXISTS: { status: 409, message: 'A record with this id already exists from another upload.' },

  // ---- Client-side decoding (devices, connector); never returned by the functions ----
  QR_MALFORMED: { status: 400, message: 'The QR code is not a valid Clinic Bridge invitation.' },
  QR_VERSION_UNSUPPORTED: { status: 400, message: 'The QR code is from an unsupported version.' },
  QR_API_BASE_INVALID: { status: 400, message: 'The QR code names an API address that is not allowed.' },
  RECORD_PAYLOAD_MALFORMED: { status: 422, message: 'The decrypted record is malformed.' },
  NOT_A_RECIPIENT: { status: 422, message: 'This device is not a recipient of the record.' },
  KEY_INVALID: { status: 400, message: 'A key is malformed or of the wrong kind.' },

  // ---- Decryption outcomes a device reports in its acknowledgement (from shared/core/crypto) ----
  CHUNK_INVALID: { status: 422, message: 'A record chunk failed authentication.' },
  RECORD_TRUNCATED: { status: 422, message: 'The record ends before its last chunk.' },
  RECORD_TRAILING_DATA: { status: 422, message: 'Data follows the last chunk of the record.' },
  KEY_UNWRAP_FAILED: { status: 422, message: 'The wrapped content key does not open.' },
  KEY_BINDING_MISMATCH: { status: 422, message: 'The wrapped content key is bound to something else.' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** All codes, for schemas (`z.enum(ERROR_CODE_LIST)`) and documentation. */
export const ERROR_CODE_LIST = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

export interface ProtocolErrorDetails {
  /** The JSON path or header that failed validation (names only, never values). */
  readonly field?: string;
  /** For container and record errors: the zero-based chunk position. */
  readonly chunkIndex?: number;
}

/**
 * The one error type of shared/core/protocol. Branch on `code`; `httpStatus` is what a function
 * answers. `message` is generic and safe to log; pass a more specific one only if it holds
 * no data from the input.
 */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly details: ProtocolErrorDetails;

  constructor(
    code: ErrorCode,
    message: string = ERROR_CODES[code].message,
    options: { cause?: unknown } & ProtocolErrorDetails = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProtocolError';
    this.code = code;
    this.httpStatus = ERROR_CODES[code].status;
    const details: { field?: string; chunkIndex?: number } = {};
    if (options.field !== undefined) details.field = options.field;
    if (options.chunkIndex !== undefined) details.chunkIndex = options.chunkIndex;
    this.details = Object.freeze(details);
  }

  /** The JSON error body the functions send (see `errorBodySchema`). */
  toBody(): ErrorBody {
    const error: ErrorBody['error'] = { code: this.code, message: ERROR_CODES[this.code].message };
    if (this.details.field !== undefined) error.field = this.details.field;
    return { error };
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; field?: string };
}

export function isProtocolError(error: unknown, code?: ErrorCode): error is ProtocolError {
  return error instanceof ProtocolError && (code === undefined || error.code === code);
}

const CRYPTO_TO_PROTOCOL: Record<CryptoErrorCode, ErrorCode> = {
  THEMIS_LOAD_FAILED: 'INTERNAL_ERROR',
  THEMIS_FAILURE: 'INTERNAL_ERROR',
  KEY_INVALID: 'KEY_INVALID',
  KEY_PAIR_MISMATCH: 'KEY_INVALID',
  INPUT_INVALID: 'INVALID_REQUEST',
  INPUT_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  CHUNK_INVALID: 'CHUNK_INVALID',
  RECORD_TRUNCATED: 'RECORD_TRUNCATED',
  TRAILING_DATA: 'RECORD_TRAILING_DATA',
  KEY_UNWRAP_FAILED: 'KEY_UNWRAP_FAILED',
  KEY_BINDING_MISMATCH: 'KEY_BINDING_MISMATCH',
  SIGNATURE_INVALID: 'SIGNATURE_INVALID',
};

/**
 * Any error as a ProtocolError: ProtocolErrors pass through, CryptoErrors map to their
 * catalogue code (keeping a chunk index), anything else becomes INTERNAL_ERROR.
 */
export function toProtocolError(error: unknown): ProtocolError {
  if (error instanceof ProtocolError) return error;
  if (error instanceof CryptoError) {
    const code = CRYPTO_TO_PROTOCOL[error.code];
    return new ProtocolError(code, ERROR_CODES[code].message, {
      cause: error,
      ...(error.details.chunkIndex === undefined ? {} : { chunkIndex: error.details.chunkIndex }),
    });
  }
  return new ProtocolError('INTERNAL_ERROR', ERROR_CODES.INTERNAL_ERROR.message, { cause: error });
}
