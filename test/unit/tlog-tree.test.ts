// RFC 6962 hashing and proofs: published Certificate Transparency vectors (the same values in
// transparency-dev/merkle and certificate-transparency-go), the definitions recomputed by hand,
// and properties over random tree sizes.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyTreeHash, leafHash, nodeHash } from '../../shared/core/tlog/hash.ts';
import {
  consistencyProof,
  inclusionProof,
  memoryHashReader,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from '../../shared/core/tlog/tree.ts';
import { CT_LEAF_DATA } from '../helpers/ct-leaves.ts';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const unhex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const sha256 = (...parts: number[][]): Uint8Array =>
  new Uint8Array(createHash('sha256').update(Buffer.from(parts.flat())).digest());

const DATA = CT_LEAF_DATA.map(unhex);
const LEAVES = DATA.map(leafHash);
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

function leavesOf(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => leafHash(new Uint8Array([i & 0xff, (i >> 8) & 0xff, 7])));
}

function flipped(bytes: Uint8Array, position: number): Uint8Array {
  const copy = bytes.slice();
  copy[position % copy.length] = (copy[position % copy.length] as number) ^ 0x01;
  return copy;
}

describe('RFC 6962 hashing', () => {
  it('hashes the empty tree, leaves and nodes as the RFC defines', () => {
    expect(hex(emptyTreeHash())).toBe(hex(sha256([])));
    expect(hex(leafHash(new Uint8Array([1, 2])))).toBe(hex(sha256([0x00, 1, 2])));
    const a = leafHash(new Uint8Array([1]));
    const b = leafHash(new Uint8Array([2]));
    expect(hex(nodeHash(a, b))).toBe(hex(sha256([0x01], [...a], [...b])));
    expect(() => nodeHash(a, new Uint8Array(31))).toThrow(RangeError);
  });

  it('matches the published roots for sizes 0..8', () => {
    for (let n = 0; n <= 8; n++)
      expect(hex(rootFromLeafHashes(LEAVES.slice(0, n))), `size ${n}`).toBe(ROOTS[n]);
  });

  it('splits at the largest power of two below n, not the midpoint (size 7 by hand)', () => {
    const [l0, l1, l2, l3, l4, l5, l6] = LEAVES as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    const left = nodeHash(nodeHash(l0, l1), nodeHash(l2, l3));
    const right = nodeHash(nodeHash(l4, l5), l6);
    expect(hex(nodeHash(left, right))).toBe(ROOTS[7]);
  });
});

describe('inclusion proofs', () => {
  it('match the published vectors', () => {
    const read = memoryHashReader(LEAVES);
    expect(inclusionProof(0, 8, read).map(hex)).toEqual([
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ]);
    expect(inclusionProof(5, 8, read).map(hex)).toEqual([
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ]);
    expect(inclusionProof(0, 1, read)).toEqual([]);
  });

  it('verify for every leaf of every size, and fail for a flipped byte, a wrong index or a cut path', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 300 })
          .chain((n) => fc.tuple(fc.constant(n), fc.nat(n - 1), fc.nat(10_000))),
        ([n, index, noise]) => {
          const leaves = leavesOf(n);
          const read = memoryHashReader(leaves);
          const root = rootFromLeafHashes(leaves);
          const leaf = leaves[index] as Uint8Array;
          const proof = inclusionProof(index, n, read);
          expect(verifyInclusion(leaf, index, n, proof, root)).toBe(true);
          expect(verifyInclusion(flipped(leaf, noise), index, n, proof, root)).toBe(false);
          expect(verifyInclusion(leaf, index, n, proof, flipped(root, noise))).toBe(false);
          if (proof.length > 0) {
            const at = noise % proof.length;
            const bad = proof.map((p, i) => (i === at ? flipped(p, noise) : p));
            expect(verifyInclusion(leaf, index, n, bad, root)).toBe(false);
            expect(verifyInclusion(leaf, index, n, proof.slice(1), root)).toBe(false);
            if ((index ^ 1) < n) expect(verifyInclusion(leaf, index ^ 1, n, proof, root)).toBe(false);
          }
          expect(verifyInclusion(leaf, index, n, [...proof, root], root)).toBe(false);
          // No check of a wrong tree size here: for some shapes (index 0 of 5 vs 6) the same
          // path does verify; the size is bound by the signed checkpoint, not by the proof.
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reject impossible arguments without throwing', () => {
    const root = rootFromLeafHashes(LEAVES);
    expect(verifyInclusion(LEAVES[0] as Uint8Array, 8, 8, [], root)).toBe(false);
    expect(verifyInclusion(LEAVES[0] as Uint8Array, -1, 8, [], root)).toBe(false);
    expect(verifyInclusion(LEAVES[0] as Uint8Array, 0, 8, [new Uint8Array(3)], root)).toBe(false);
    expect(() => inclusionProof(8, 8, memoryHashReader(LEAVES))).toThrow(/below the tree size/);
  });
});

describe('consistency proofs', () => {
  it('match the published vectors', () => {
    const read = memoryHashReader(LEAVES);
    expect(consistencyProof(2, 8, read).map(hex)).toEqual([
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ]);
    expect(consistencyProof(6, 8, read).map(hex)).toEqual([
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ]);
    expect(consistencyProof(2, 5, read).map(hex)).toEqual([
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ]);
  });

  it('verify between every m <= n and fail against a wrong old root or tampered proof', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }).chain((n) => fc.tuple(fc.constant(n), fc.nat(n), fc.nat(10_000))),
        ([n, m, noise]) => {
          const leaves = leavesOf(n);
          const read = memoryHashReader(leaves);
          const oldRoot = rootFromLeafHashes(leaves.slice(0, m));
          const newRoot = rootFromLeafHashes(leaves);
          const proof = consistencyProof(m, n, read);
          expect(verifyConsistency(m, n, oldRoot, newRoot, proof)).toBe(true);
          if (m > 0) {
            expect(verifyConsistency(m, n, flipped(oldRoot, noise), newRoot, proof)).toBe(false);
            expect(verifyConsistency(m, n, oldRoot, flipped(newRoot, noise), proof)).toBe(false);
          }
          if (proof.length > 0) {
            const at = noise % proof.length;
            const bad = proof.map((p, i) => (i === at ? flipped(p, noise) : p));
            expect(verifyConsistency(m, n, oldRoot, newRoot, bad)).toBe(false);
            expect(verifyConsistency(m, n, oldRoot, newRoot, proof.slice(0, -1))).toBe(false);
          }
          if (m > 1 && m < n) {
            // The old tree is a prefix, so another old size must not pass with this proof.
            const otherRoot = rootFromLeafHashes(leaves.slice(0, m - 1));
            expect(verifyConsistency(m - 1, n, otherRoot, newRoot, proof)).toBe(false);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('treat size 0 and equal sizes as trivially consistent only with an empty proof', () => {
    const root = rootFromLeafHashes(LEAVES);
    expect(verifyConsistency(0, 8, emptyTreeHash(), root, [])).toBe(true);
    expect(verifyConsistency(0, 8, emptyTreeHash(), root, [root])).toBe(false);
    expect(verifyConsistency(8, 8, root, root, [])).toBe(true);
    expect(verifyConsistency(8, 8, root, flipped(root, 0), [])).toBe(false);
    expect(verifyConsistency(9, 8, root, root, [])).toBe(false);
    expect(() => consistencyProof(9, 8, memoryHashReader(LEAVES))).toThrow(/must not exceed/);
  });
});
