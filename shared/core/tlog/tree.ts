// The Merkle tree of RFC 6962 §2.1 / RFC 9162 §2.1: tree head, inclusion and consistency proofs.
//
// Generation never holds the tree itself: it asks a HashReader for the hash of a COMPLETE subtree
// (2^level leaves starting at leaf index * 2^level). A reader over an in-memory array serves tests
// and small trees; a reader over tlog-tiles (tiles.ts) serves the real log, which only stores
// complete-subtree hashes. Incomplete right-edge subtrees are always recomputed from them.
//
// Sizes and indexes are JavaScript numbers limited to Number.MAX_SAFE_INTEGER (2^53 - 1), far
// beyond any size this log can reach; arithmetic uses division rather than `>>`, which would
// truncate to 32 bits.
import { emptyTreeHash, HASH_SIZE, hashesEqual, nodeHash } from './hash.ts';
import { TlogError } from './errors.ts';

/** The hash of the complete subtree of 2^level leaves that starts at leaf index * 2^level. */
export type HashReader = (level: number, index: number) => Uint8Array;

function checkSize(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TlogError('INVALID_ARGUMENT', `${name} must be a non-negative safe integer`);
  }
}

function half(value: number): number {
  return Math.floor(value / 2);
}

function isPowerOfTwo(value: number): boolean {
  if (value < 1) return false;
  let v = value;
  while (v % 2 === 0) v /= 2;
  return v === 1;
}

function log2Exact(powerOfTwo: number): number {
  let level = 0;
  for (let v = powerOfTwo; v > 1; v /= 2) level++;
  return level;
}

/** The k of RFC 6962: the largest power of two strictly smaller than n (n >= 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * MTH(D[start:end]) for any non-empty range, by the RFC 6962 recursion; aligned power-of-two
 * ranges come straight from the reader, so a tiled reader is asked only for hashes it stores.
 */
export function rangeHash(start: number, end: number, read: HashReader): Uint8Array {
  const n = end - start;
  if (n < 1) throw new TlogError('INVALID_ARGUMENT', 'rangeHash: the range is empty');
  if (isPowerOfTwo(n) && start % n === 0) {
    const hash = read(log2Exact(n), start / n);
    if (hash.length !== HASH_SIZE) throw new TlogError('INVALID_ARGUMENT', 'the reader returned a non-hash');
    return hash;
  }
  const k = splitPoint(n);
  return nodeHash(rangeHash(start, start + k, read), rangeHash(start + k, end, read));
}

/** The tree head (MTH) of the first `size` leaves. */
export function treeHash(size: number, read: HashReader): Uint8Array {
  checkSize('size', size);
  return size === 0 ? emptyTreeHash() : rangeHash(0, size, read);
}

/**
 * A reader over leaf hashes held in memory. It precomputes every complete subtree once (about
 * n hashes) so proofs over it cost what they would over stored tiles.
 */
export function memoryHashReader(leafHashes: readonly Uint8Array[]): HashReader {
  const levels: Uint8Array[][] = [[...leafHashes]];
  for (;;) {
    const below = levels[levels.length - 1] as Uint8Array[];
    if (below.length < 2) break;
    const above: Uint8Array[] = [];
    for (let i = 0; i + 1 < below.length; i += 2) {
      above.push(nodeHash(below[i] as Uint8Array, below[i + 1] as Uint8Array));
    }
    levels.push(above);
  }
  return (level, index) => {
    const hash = levels[level]?.[index];
    if (hash === undefined) {
      throw new TlogError('INVALID_ARGUMENT', `no complete subtree at level ${level} index ${index}`);
    }
    return hash;
  };
}

/** MTH over leaf hashes held in memory (the definition, for tests and small trees). */
export function rootFromLeafHashes(leafHashes: readonly Uint8Array[]): Uint8Array {
  return treeHash(leafHashes.length, memoryHashReader(leafHashes));
}

/** PATH(index, D[size]) of RFC 6962 §2.1.1: the audit path, leaf level first. */
export function inclusionProof(index: number, size: number, read: HashReader): Uint8Array[] {
  checkSize('index', index);
  checkSize('size', size);
  if (index >= size) throw new TlogError('INVALID_ARGUMENT', 'the leaf index must be below the tree size');
  const path: Uint8Array[] = [];
  // Walk from the root down, then reverse: the proof lists the sibling nearest the leaf first.
  let m = index;
  let start = 0;
  let end = size;
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (m < k) {
      path.push(rangeHash(start + k, end, read));
      end = start + k;
    } else {
      path.push(rangeHash(start, start + k, read));
      start += k;
      m -= k;
    }
  }
  return path.reverse();
}

/** PROOF(oldSize, D[newSize]) of RFC 6962 §2.1.2 (SUBPROOF with b = true at the top). */
export function consistencyProof(oldSize: number, newSize: number, read: HashReader): Uint8Array[] {
  checkSize('oldSize', oldSize);
  checkSize('newSize', newSize);
  if (oldSize > newSize) throw new TlogError('INVALID_ARGUMENT', 'the old size must not exceed the new size');
  // Every tree extends the empty tree, and a tree is consistent with itself: nothing to prove.
  if (oldSize === 0 || oldSize === newSize) return [];
  const proof: Uint8Array[] = [];
  let m = oldSize;
  let start = 0;
  let end = newSize;
  let wholeOldTree = true;
  while (m !== end - start) {
    const k = splitPoint(end - start);
    if (m <= k) {
      proof.push(rangeHash(start + k, end, read));
      end = start + k;
    } else {
      proof.push(rangeHash(start, start + k, read));
      start += k;
      m -= k;
      wholeOldTree = false;
    }
  }
  // SUBPROOF(m, D[m], b): the old subtree's own hash is needed unless it is the whole old tree,
  // which the verifier already has as the old root.
  if (!wholeOldTree) proof.push(rangeHash(start, end, read));
  return proof.reverse();
}

function allHashes(proof: readonly Uint8Array[]): boolean {
  return proof.every((h) => h instanceof Uint8Array && h.length === HASH_SIZE);
}

/**
 * RFC 9162 §2.1.3.2. Returns false for anything that does not verify, malformed input included,
 * so a verifier cannot be made to throw by a hostile proof.
 */
export function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (leaf.length !== HASH_SIZE || root.length !== HASH_SIZE || !allHashes(proof)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && hashesEqual(r, root);
}

/**
 * RFC 9162 §2.1.4.2. Sizes 0 and oldSize === newSize, which the RFC leaves out, are accepted only
 * with an empty proof (and, for equal sizes, equal roots): the same convention as the generator.
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 0 || oldSize > newSize) {
    return false;
  }
  if (oldRoot.length !== HASH_SIZE || newRoot.length !== HASH_SIZE || !allHashes(proof)) return false;
  if (oldSize === 0) return proof.length === 0;
  if (oldSize === newSize) return proof.length === 0 && hashesEqual(oldRoot, newRoot);
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  const first = path[0];
  if (first === undefined) return false;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = first;
  let sr = first;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && hashesEqual(fr, oldRoot) && hashesEqual(sr, newRoot);
}
