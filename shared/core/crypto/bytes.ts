// Small byte helpers shared by the files in shared/core/crypto. Not part of the public API.
import { decodeBase64Url } from '../bytes.ts';
import { CryptoError } from './errors.ts';

export { concatBytes, equalBytes, sha256, toBase64Url } from '../bytes.ts';

/** Record ids are bound into chunk contexts and wrapped keys as UTF-8, length-prefixed. */
export const MAX_RECORD_ID_BYTES = 255;

const encoder = new TextEncoder();
const LONE_SURROGATE = /\p{Cs}/u;

export function assertBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new CryptoError('INPUT_INVALID', `${what} must be a Uint8Array`);
}

/** UTF-8 bytes of a record id, after checking it is 1..255 bytes of well-formed text. */
export function recordIdBytes(recordId: unknown): Uint8Array {
  if (typeof recordId !== 'string' || recordId.length === 0) {
    throw new CryptoError('INPUT_INVALID', 'record id must be a non-empty string');
  }
  if (LONE_SURROGATE.test(recordId))
    throw new CryptoError('INPUT_INVALID', 'record id is not well-formed text');
  const bytes = encoder.encode(recordId);
  if (bytes.length > MAX_RECORD_ID_BYTES) {
    throw new CryptoError('INPUT_INVALID', `record id exceeds ${MAX_RECORD_ID_BYTES} UTF-8 bytes`);
  }
  return bytes;
}

/** Strict base64url (RFC 4648 §5, no padding): rejects other alphabets instead of guessing. */
export function fromBase64Url(text: string, what: string): Uint8Array {
  const bytes = decodeBase64Url(text);
  if (!bytes) throw new CryptoError('INPUT_INVALID', `${what} is not canonical base64url`);
  return bytes.slice(); // a copy: key bytes must not share Buffer's pool with anything else
}
