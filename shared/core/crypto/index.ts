// The public API of shared/core/crypto: the only code in Clinic Bridge that touches Themis.
// Importing it loads Themis once (themis.ts awaits the load at the top level); everything else
// is synchronous and throws CryptoError.
export { CryptoError, isCryptoError } from './errors.ts';
export type { CryptoErrorCode, CryptoErrorDetails } from './errors.ts';
export {
  CONTENT_KEY_LENGTH,
  ContentKey,
  EC_KEY_LENGTH,
  exportPrivateKey,
  generateContentKey,
  generateKeyPair,
  importKeyPair,
  importPrivateKey,
  importPublicKey,
  PrivateKey,
  PublicKey,
  publicKeyFromPoint,
} from './keys.ts';
export type { KeyPair } from './keys.ts';
export {
  CHUNK_HEADER_LENGTH,
  CHUNK_OVERHEAD,
  DEFAULT_CHUNK_SIZE,
  decryptRecord,
  decryptRecordStream,
  encryptedChunkLength,
  encryptedRecordLength,
  encryptRecord,
  encryptRecordPieces,
  encryptRecordStream,
  MAX_CHUNK_SIZE,
  RECORD_CELL_VERSION,
  recordChunkContext,
  recordChunkCount,
  SEAL_OVERHEAD,
} from './record-cell.ts';
export type { RecordCellOpenOptions, RecordCellOptions } from './record-cell.ts';
export {
  createKeyWrapper,
  KEY_WRAP_VERSION,
  MAX_WRAPPED_KEY_LENGTH,
  SECURE_MESSAGE_OVERHEAD,
  unwrapContentKey,
  wrappedKeyLength,
} from './key-wrap.ts';
export type { KeyWrapper, UnwrapOptions, WrapTarget } from './key-wrap.ts';
export {
  MAX_SIGNED_LENGTH,
  MAX_SIGNED_MESSAGE_LENGTH,
  SIGNED_HEADER_LENGTH,
  keyPairSigner,
  sign,
  signedFormFromRaw,
  signWith,
  verify,
} from './signature.ts';
export type { Signer } from './signature.ts';
export { MAX_RECORD_ID_BYTES } from './bytes.ts';
