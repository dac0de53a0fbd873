import { CryptoError, type CryptoErrorCode } from '../../shared/core/crypto/index.ts';

/** The CryptoError code a call throws, or a description of what happened instead. */
export function codeOf(run: () => unknown): CryptoErrorCode | string {
  try {
    run();
  } catch (error) {
    return error instanceof CryptoError ? error.code : `not a CryptoError: ${String(error)}`;
  }
  return 'no error';
}
