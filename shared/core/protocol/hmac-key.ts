// The hospital's secret HMAC keys (pseudonyms, binding secrets) as the protocol uses them: only
// as a function that MACs bytes. A connector keeps them in memory (derived from its master
// secret) or in a hardware token that computes the HMAC inside, so nothing in the protocol
// needs the key bytes themselves.
import { hmacSha256 } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';

/** A secret HMAC-SHA256 key, held wherever its custody keeps it. */
export interface HmacKey {
  /** The key's generation: what it derived records it, so the key can be rotated. */
  readonly version: number;
  /** HMAC-SHA256 of the concatenation of `parts`. */
  hmac(...parts: Uint8Array[]): Uint8Array;
}

/** The smallest HMAC key accepted (bytes). */
export const MIN_HMAC_KEY_BYTES = 32;

/**
 * An HmacKey over bytes in memory. The bytes are copied into memory of their own (not Node's
 * shared buffer pool, where a later allocation could expose them) and zeroed by destroy().
 */
export function memoryHmacKey(bytes: Uint8Array, version: number): HmacKey & { destroy(): void } {
  if (!(bytes instanceof Uint8Array) || bytes.length < MIN_HMAC_KEY_BYTES) {
    throw new ProtocolError('INVALID_REQUEST', `an HMAC key must be at least ${MIN_HMAC_KEY_BYTES} bytes`);
  }
  if (!Number.isSafeInteger(version) || version < 1 || version > 0xffff) {
    throw new ProtocolError('INVALID_REQUEST', 'a key version is 1..65535');
  }
  const held = new Uint8Array(new ArrayBuffer(bytes.length));
  held.set(bytes);
  let destroyed = false;
  return Object.freeze({
    version,
    hmac(...parts: Uint8Array[]) {
      if (destroyed) throw new ProtocolError('INTERNAL_ERROR', 'the key has been destroyed');
      return hmacSha256(held, ...parts);
    },
    destroy() {
      held.fill(0);
      destroyed = true;
    },
  });
}
