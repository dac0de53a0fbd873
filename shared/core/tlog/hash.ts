// RFC 6962 §2.1 hashing (unchanged in RFC 9162 §2.1.1): the one-byte prefixes keep a leaf hash
// from ever equalling an interior node hash, which is what stops a second-preimage attack that
// would pass an interior node off as a leaf.
import { platform } from '#platform';

export const HASH_SIZE = 32;

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

function sha256(...parts: Uint8Array[]): Uint8Array {
  const hash = platform.createSha256();
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** MTH({}) : the hash of an empty tree is SHA-256 of the empty string. */
export function emptyTreeHash(): Uint8Array {
  return sha256();
}

/** MTH({d}) = SHA-256(0x00 || d). */
export function leafHash(data: Uint8Array): Uint8Array {
  return sha256(LEAF_PREFIX, data);
}

/** SHA-256(0x01 || left || right), the hash of an interior node. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    // A short child would still hash, and silently give a root nobody else can reproduce.
    throw new RangeError('nodeHash: children must be 32-byte hashes');
  }
  return sha256(NODE_PREFIX, left, right);
}

/**
 * Byte equality. Not constant-time on purpose: every value compared here (roots, proofs,
 * tile hashes) is public log data, so timing reveals nothing.
 */
export function hashesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
