// The committed vectors are what the generator produces now, and they verify with the library
// (independently of how they were produced), so neither the file nor the code can drift.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateTlogVectors } from '../fixtures/generate-tlog-vectors.ts';
import { openCheckpoint } from '../../shared/core/tlog/checkpoint.ts';
import { cosignatureVerifier } from '../../shared/core/tlog/cosignature.ts';
import { ed25519Verifier } from '../../shared/core/tlog/ed25519.ts';
import { parseVerifierKey } from '../../shared/core/tlog/keys.ts';
import { verifyConsistency, verifyInclusion } from '../../shared/core/tlog/tree.ts';

interface Vectors {
  leaves: { data: string; leafHash: string }[];
  roots: { size: number; root: string }[];
  inclusion: { index: number; size: number; proof: string[] };
  consistency: { oldSize: number; newSize: number; proof: string[] };
  checkpoint: { logVerifierKey: string; signedNote: string };
  cosignature: { witnessVerifierKey: string; timestamp: number; cosignedNote: string };
}

const FILE = new URL('../fixtures/tlog-vectors.json', import.meta.url);
const vectors = JSON.parse(readFileSync(FILE, 'utf8')) as Vectors;
const unhex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const rootOf = (size: number): Uint8Array => unhex(vectors.roots.find((r) => r.size === size)?.root ?? '');

describe('test/fixtures/tlog-vectors.json', () => {
  it('is exactly what the generator produces (rerun it if this fails on purpose)', async () => {
    expect(vectors).toEqual(await generateTlogVectors());
  });

  it('keeps the published RFC 6962 root for 8 leaves', () => {
    expect(vectors.roots[8]?.root).toBe('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
  });

  it('holds proofs and notes that verify', () => {
    const { index, size, proof } = vectors.inclusion;
    const leaf = unhex(vectors.leaves[index]?.leafHash ?? '');
    expect(verifyInclusion(leaf, index, size, proof.map(unhex), rootOf(size))).toBe(true);
    const c = vectors.consistency;
    expect(
      verifyConsistency(c.oldSize, c.newSize, rootOf(c.oldSize), rootOf(c.newSize), c.proof.map(unhex)),
    ).toBe(true);
    const log = parseVerifierKey(vectors.checkpoint.logVerifierKey);
    const witness = parseVerifierKey(vectors.cosignature.witnessVerifierKey);
    const verifiers = [
      ed25519Verifier(log.name, log.publicKey),
      cosignatureVerifier(witness.name, witness.publicKey),
    ];
    const opened = openCheckpoint(vectors.cosignature.cosignedNote, { origin: log.name, verifiers });
    expect(opened.verified).toHaveLength(2);
    expect(opened.checkpoint.rootHash).toEqual(rootOf(8));
    expect(
      openCheckpoint(vectors.checkpoint.signedNote, { origin: log.name, verifiers }).verified,
    ).toHaveLength(1);
  });
});
