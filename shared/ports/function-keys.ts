// Each function's own Themis signing key pair (invariant 4). The private key is stored only
// wrapped by that function's own Cloud KMS key and is unwrapped once per instance (a cold
// start), never per request. The adapter lives in shared/adapters/function-keys.ts.
import type { KeyPair, PublicKey } from '../core/crypto/index.ts';

export interface FunctionKeys {
  /**
   * This function's signing key pair. The first call unwraps it (one KMS Decrypt); every
   * later or concurrent call shares that result. After a failure the next call tries again.
   */
  keyPair(): Promise<KeyPair>;
}

/** A function's public key as published for devices and connectors to verify with. */
export interface PublishedFunctionKey {
  readonly functionName: string;
  readonly publicKey: PublicKey;
  /** The Cloud KMS key version that wraps the private key (for audit and rotation). */
  readonly kmsKeyVersion: string;
  readonly createdAt: Date;
}

export interface FunctionKeyDirectory {
  /** Every provisioned function's public key, ordered by function name. */
  publishedPublicKeys(): Promise<readonly PublishedFunctionKey[]>;
}

export type FunctionKeyErrorCode =
  /** The catalog gives this function no ENCRYPT_DECRYPT key. */
  | 'KEY_NOT_CONFIGURED'
  /** No key has been provisioned for this function (run provisioning). */
  | 'KEY_NOT_PROVISIONED'
  /** KMS refused: the caller's identity may not use this key (PERMISSION_DENIED). */
  | 'KEY_ACCESS_DENIED'
  /** KMS could not unwrap: the wrapped key or its binding (project, function, public key) was changed. */
  | 'KEY_UNWRAP_FAILED'
  /** The stored key record is malformed, or its private and public key do not belong together. */
  | 'KEY_RECORD_INVALID'
  /** A CRC32C check on a KMS request or response failed: corrupted in transit. */
  | 'KEY_INTEGRITY'
  /** The KMS key version is disabled or destroyed. */
  | 'KEY_DISABLED'
  /** KMS or Firestore could not be reached; a later cold start may succeed. */
  | 'KEY_SERVICE_UNAVAILABLE';

/** Errors from FunctionKeys and provisioning. Messages never hold key material. */
export class FunctionKeyError extends Error {
  readonly code: FunctionKeyErrorCode;

  constructor(code: FunctionKeyErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FunctionKeyError';
    this.code = code;
  }
}
