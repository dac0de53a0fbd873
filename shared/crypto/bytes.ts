// Small byte helpers shared by the files in shared/crypto. Not part of the public API.
import { createHash, timingSafeEqual } from 'node:crypto';
import { CryptoError } from './errors.ts';

/** Record ids are bound into chunk contexts and wrapped keys as UTF-8, length-prefixed. */
export const MAX_RECORD_ID_BYTES = 255;

const encoder = new TextEncoder();
const LONE_SURROGATE = /\p{Cs}/u;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

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

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

export function toBase64Url(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64url');
}

/** Strict base64url (RFC 4648 §5, no padding): rejects other alphabets instead of guessing. */
export function fromBase64Url(text: string, what: string): Uint8Array {
  const bytes = Buffer.from(text, 'base64url');
  if (!BASE64URL.test(text) || bytes.toString('base64url') !== text) {
    throw new CryptoError('INPUT_INVALID', `${what} is not canonical base64url`);
  }
  return new Uint8Array(bytes);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Concatenates parts into one new buffer. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
