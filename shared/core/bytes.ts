// Byte helpers that shared/core/crypto and shared/core/protocol both need. They throw nothing of
// their own: each caller turns a failed decode into its own typed error.
import { platform } from '#platform';

const BASE64URL = /^[A-Za-z0-9_-]*$/;

export function toBase64Url(bytes: Uint8Array): string {
  return platform.encodeBase64(bytes, true);
}

/**
 * Strict base64url (RFC 4648 §5, no padding, canonical trailing bits): undefined for anything
 * else, rather than guessing at another alphabet.
 */
export function decodeBase64Url(text: string): Uint8Array | undefined {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return undefined;
  const bytes = platform.decodeBase64(text, true);
  return platform.encodeBase64(bytes, true) === text ? bytes : undefined;
}

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const hash = platform.createSha256();
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** Constant-time equality for equal lengths; false (early) when the lengths differ. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  // No early exit: the time depends on the length only, never on where the bytes differ.
  let difference = 0;
  for (let i = 0; i < a.length; i += 1) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
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
