// Byte and text encodings every wire format in shared/core/protocol shares: strict base64url,
// strict UTF-8, canonical JSON, SHA-256 and HMAC-SHA256. Hashing and HMAC come from the platform
// (shared/core/platform); everything Themis does stays in shared/core/crypto.
import { platform } from '#platform';
import { toBase64Url } from '../bytes.ts';
import { ProtocolError } from './error-codes.ts';
import type { ErrorCode } from './error-codes.ts';

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// fromBase64Url returns undefined for anything but strict base64url, so callers pick their
// own error code.
export { concatBytes, decodeBase64Url as fromBase64Url, equalBytes, sha256, toBase64Url } from '../bytes.ts';

/** Base64url length of `n` bytes (no padding). */
export function base64UrlLength(n: number): number {
  return Math.ceil((n * 4) / 3);
}

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Strict UTF-8 decoding: undefined for malformed bytes (no replacement characters). */
export function fromUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  return platform.hmacSha256(key, parts);
}

export function randomBase64Url(byteLength: number): string {
  return toBase64Url(platform.randomBytes(byteLength));
}

// ---- Canonical JSON ----
//
// The one serialisation of a signed document: UTF-8 JSON with no whitespace, object keys
// sorted by UTF-16 code units (JavaScript's default sort, which for the ASCII keys used here is
// byte order), strings escaped as JSON.stringify escapes them, numbers only as safe integers,
// no undefined, no floats, no NaN. The same value always gives the same bytes, so a verifier
// can insist that what it received is canonical and a document's hash identifies it.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Canonical JSON text of a value. Throws INVALID_REQUEST for values it cannot represent. */
export function canonicalJson(value: unknown): string {
  return serialise(value, 0);
}

const MAX_DEPTH = 16;

function serialise(value: unknown, depth: number): string {
  if (depth > MAX_DEPTH) throw invalid('nesting too deep for canonical JSON');
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) throw invalid('canonical JSON allows only safe integers');
      return Object.is(value, -0) ? '0' : String(value);
    case 'string':
      if (/\p{Cs}/u.test(value)) throw invalid('canonical JSON strings must be well-formed text');
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((item) => serialise(item, depth + 1)).join(',')}]`;
      const prototype = Object.getPrototypeOf(value) as unknown;
      if (prototype !== Object.prototype && prototype !== null) {
        throw invalid('canonical JSON takes plain objects only');
      }
      const entries = Object.keys(value)
        .sort()
        .map((key) => {
          const item = (value as Record<string, unknown>)[key];
          if (item === undefined) throw invalid('canonical JSON has no undefined values');
          return `${JSON.stringify(key)}:${serialise(item, depth + 1)}`;
        });
      return `{${entries.join(',')}}`;
    }
    default:
      throw invalid(`canonical JSON cannot hold a ${typeof value}`);
  }
}

/**
 * Parses bytes that must be canonical JSON (strict UTF-8, re-serialises to the same bytes).
 * Throws `code` for anything else.
 */
export function parseCanonicalJson(bytes: Uint8Array, code: ErrorCode): unknown {
  const text = fromUtf8(bytes);
  if (text === undefined) throw new ProtocolError(code, 'the document is not UTF-8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError(code, 'the document is not JSON');
  }
  let again: string;
  try {
    again = canonicalJson(value);
  } catch {
    throw new ProtocolError(code, 'the document holds values canonical JSON does not allow');
  }
  if (again !== text) throw new ProtocolError(code, 'the document is not in canonical JSON form');
  return value;
}

function invalid(message: string): ProtocolError {
  return new ProtocolError('INVALID_REQUEST', message);
}
