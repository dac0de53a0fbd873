// What a follower (the hospital's witness, a phone, a monitor) accepts: a checkpoint signed by the
// log and cosigned by every required witness that extends the one it trusted before. Every way a
// platform could rewrite the history it already showed (edit, delete, reorder, insert, then
// re-sign with its real key) must end in INCONSISTENT, and every missing or foreign signature in
// a refusal, never in a tree the follower keeps.
import { describe, expect, it } from 'vitest';
import { auditLeafData } from '../../shared/core/tlog/audit-leaf.ts';
import { cosignCheckpoint, signCheckpoint } from '../../shared/core/tlog/checkpoint.ts';
import { cosignatureSigner, cosignatureVerifier } from '../../shared/core/tlog/cosignature.ts';
import { ed25519Signer, ed25519Verifier } from '../../shared/core/tlog/ed25519.ts';
import {
  acceptCheckpoint,
  isIncluded,
  isSplitView,
  type LogTrust,
  type TrustedCheckpoint,
} from '../../shared/core/tlog/follower.ts';
import { leafHash } from '../../shared/core/tlog/hash.ts';
import { consistencyProof, inclusionProof, memoryHashReader, treeHash } from '../../shared/core/tlog/tree.ts';

const ORIGIN = 'api.clinic-bridge.example/audit/st-example-zh';
const LOG_NAME = 'api.clinic-bridge.example/audit';
const WITNESS_NAME = 'st-example-zh.witness.clinic-bridge';
const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);

const logSigner = ed25519Signer(LOG_NAME, seed(1));
const otherLogSigner = ed25519Signer(LOG_NAME, seed(2));
const witnessSigner = cosignatureSigner(WITNESS_NAME, seed(3), () => 1_767_610_800);
const otherWitnessSigner = cosignatureSigner(WITNESS_NAME, seed(4), () => 1_767_610_800);

const trust: LogTrust = {
  origin: ORIGIN,
  log: ed25519Verifier(LOG_NAME, logSigner.publicKey),
  witnesses: [cosignatureVerifier(WITNESS_NAME, witnessSigner.publicKey)],
};

/** Leaf data of event `i`: a real salted audit leaf, so the tree is what the platform builds. */
function leaf(i: number, text = `{"n":${i}}`): Uint8Array {
  return auditLeafData(new Uint8Array(32).fill(i & 0xff), text);
}

function history(count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => leaf(i));
}

/** A log over `leaves`: its checkpoint at any size, signed and cosigned as asked, and its proofs. */
function logOf(leaves: readonly Uint8Array[]) {
  const read = memoryHashReader(leaves.map(leafHash));
  return {
    trusted: (size: number): TrustedCheckpoint => ({ size, rootHash: treeHash(size, read) }),
    note: async (
      size: number,
      options: { log?: typeof logSigner; witnesses?: (typeof witnessSigner)[]; origin?: string } = {},
    ): Promise<string> => {
      const signed = await signCheckpoint(
        { origin: options.origin ?? ORIGIN, size, rootHash: treeHash(size, read), extensions: [] },
        [options.log ?? logSigner],
      );
      const witnesses = options.witnesses ?? [witnessSigner];
      return witnesses.length === 0 ? signed : cosignCheckpoint(signed, witnesses);
    },
    consistency: (oldSize: number, newSize: number) => consistencyProof(oldSize, newSize, read),
    inclusion: (index: number, size: number) => inclusionProof(index, size, read),
  };
}

const code = (c: string) => expect.objectContaining({ name: 'TlogError', code: c });

describe('acceptCheckpoint', () => {
  const honest = logOf(history(11));

  it('accepts a signed, cosigned checkpoint on first use and reports the cosignature time', async () => {
    const accepted = acceptCheckpoint(trust, undefined, await honest.note(7), []);
    expect(accepted.trusted).toEqual(honest.trusted(7));
    expect(accepted.checkpoint.origin).toBe(ORIGIN);
    expect(accepted.cosignedAt).toEqual([1_767_610_800]);
  });

  it('accepts an extension with its consistency proof, and the same tree again with none', async () => {
    for (const [from, to] of [
      [7, 11],
      [1, 11],
      [8, 11],
      [10, 11],
      [0, 11],
    ] as const) {
      const accepted = acceptCheckpoint(
        trust,
        honest.trusted(from),
        await honest.note(to),
        honest.consistency(from, to),
      );
      expect(accepted.trusted).toEqual(honest.trusted(to));
    }
    expect(acceptCheckpoint(trust, honest.trusted(7), await honest.note(7), []).trusted).toEqual(
      honest.trusted(7),
    );
  });

  it('refuses an extension without its proof, or with the proof for another old size', async () => {
    const note = await honest.note(11);
    expect(() => acceptCheckpoint(trust, honest.trusted(7), note, [])).toThrow(code('INCONSISTENT'));
    expect(() => acceptCheckpoint(trust, honest.trusted(7), note, honest.consistency(6, 11))).toThrow(
      code('INCONSISTENT'),
    );
  });

  describe('refuses a rewritten history, re-signed and cosigned with the real keys, as INCONSISTENT', () => {
    const original = history(11);
    const trusted = logOf(original).trusted(7);
    const rewrites: Record<string, Uint8Array[]> = {
      'an edited entry': original.map((l, i) => (i === 3 ? leaf(3, '{"n":3,"edited":true}') : l)),
      'a deleted entry': [...original.slice(0, 2), ...original.slice(3), leaf(99)],
      'two entries swapped': [original[1], original[0], ...original.slice(2)] as Uint8Array[],
      'an inserted entry': [...original.slice(0, 5), leaf(42), ...original.slice(5)],
      'a re-salted entry': original.map((l, i) =>
        i === 6 ? auditLeafData(new Uint8Array(32).fill(0xee), '{"n":6}') : l,
      ),
    };
    for (const [what, leaves] of Object.entries(rewrites)) {
      it(what, async () => {
        const forged = logOf(leaves);
        const size = leaves.length;
        expect(forged.trusted(7).rootHash).not.toEqual(trusted.rootHash);
        // The forger's best proofs: its own tree's, and the honest one's.
        const note = await forged.note(size);
        for (const proof of [forged.consistency(7, size), logOf(original).consistency(7, 11)]) {
          expect(() => acceptCheckpoint(trust, trusted, note, proof)).toThrow(code('INCONSISTENT'));
        }
        // Also when it shows the rewritten tree at the very size already trusted.
        const sameSize = await forged.note(7);
        expect(() => acceptCheckpoint(trust, trusted, sameSize, [])).toThrow(code('INCONSISTENT'));
      });
    }
  });

  it('refuses a rollback to a smaller tree, even a genuine older checkpoint', async () => {
    const note = await honest.note(5);
    expect(() => acceptCheckpoint(trust, honest.trusted(7), note, [])).toThrow(code('CHECKPOINT_ROLLBACK'));
    expect(() => acceptCheckpoint(trust, honest.trusted(7), note, honest.consistency(5, 7))).toThrow(
      code('CHECKPOINT_ROLLBACK'),
    );
  });

  it('refuses a checkpoint without the witness cosignature as COSIGNATURE_MISSING', async () => {
    const note = await honest.note(7, { witnesses: [] });
    expect(() => acceptCheckpoint(trust, undefined, note, [])).toThrow(code('COSIGNATURE_MISSING'));
  });

  it('refuses a cosignature by another key under the witness name as COSIGNATURE_MISSING', async () => {
    // Its key id differs, so signed-note treats the line as an unknown key's and ignores it.
    const note = await honest.note(7, { witnesses: [otherWitnessSigner] });
    expect(() => acceptCheckpoint(trust, undefined, note, [])).toThrow(code('COSIGNATURE_MISSING'));
  });

  it('refuses a cosignature line from the witness key that does not verify', async () => {
    const note = await honest.note(7);
    const lines = note.split('\n');
    const last = lines.at(-2) as string;
    // Flip one bit inside the Ed25519 signature, after the key id and timestamp.
    const encoded = last.slice(last.lastIndexOf(' ') + 1);
    const bytes = Buffer.from(encoded, 'base64');
    bytes[20] = (bytes[20] as number) ^ 1;
    lines[lines.length - 2] = `${last.slice(0, last.lastIndexOf(' ') + 1)}${bytes.toString('base64')}`;
    expect(() => acceptCheckpoint(trust, undefined, lines.join('\n'), [])).toThrow(code('SIGNATURE_INVALID'));
  });

  it('refuses a note signed by another log key, even one the witness cosigned', async () => {
    const note = await honest.note(7, { log: otherLogSigner });
    const uncosigned = await honest.note(7, { log: otherLogSigner, witnesses: [] });
    expect(() => acceptCheckpoint(trust, undefined, note, [])).toThrow(code('SIGNATURE_MISSING'));
    expect(() => acceptCheckpoint(trust, undefined, uncosigned, [])).toThrow(code('SIGNATURE_MISSING'));
  });

  it('refuses a checkpoint of another log', async () => {
    const note = await honest.note(7, { origin: 'api.clinic-bridge.example/audit/other-hospital' });
    expect(() => acceptCheckpoint(trust, undefined, note, [])).toThrow(code('CHECKPOINT_ORIGIN_MISMATCH'));
  });
});

describe('isSplitView', () => {
  it('is true for two trees of one size with different roots, false otherwise', () => {
    const a = logOf(history(8));
    const b = logOf(history(8).map((l, i) => (i === 2 ? leaf(2, '{"n":2,"fork":true}') : l)));
    expect(isSplitView(a.trusted(8), b.trusted(8))).toBe(true);
    expect(isSplitView(a.trusted(8), a.trusted(8))).toBe(false);
    // Before the forked entry the two histories agree; different sizes are a question for a proof.
    expect(isSplitView(a.trusted(2), b.trusted(2))).toBe(false);
    expect(isSplitView(a.trusted(7), b.trusted(8))).toBe(false);
  });
});

describe('isIncluded', () => {
  const leaves = history(11);
  const log = logOf(leaves);

  it('is true for every leaf with its real proof, in trees of several sizes', () => {
    for (const size of [1, 2, 7, 8, 11]) {
      for (let index = 0; index < size; index++) {
        expect(
          isIncluded(log.trusted(size), leaves[index] as Uint8Array, index, log.inclusion(index, size)),
        ).toBe(true);
      }
    }
  });

  it('is false for a wrong index, leaf, proof, tree, or an index outside the tree', () => {
    const trusted = log.trusted(11);
    const proof = log.inclusion(4, 11);
    const data = leaves[4] as Uint8Array;
    expect(isIncluded(trusted, data, 4, proof)).toBe(true);
    expect(isIncluded(trusted, data, 5, proof)).toBe(false);
    expect(isIncluded(trusted, leaves[5] as Uint8Array, 4, proof)).toBe(false);
    expect(isIncluded(trusted, leafHash(data), 4, proof)).toBe(false);
    expect(isIncluded(trusted, data, 4, log.inclusion(5, 11))).toBe(false);
    expect(isIncluded(trusted, data, 4, proof.slice(0, -1))).toBe(false);
    expect(isIncluded(trusted, data, 4, [...proof, proof[0] as Uint8Array])).toBe(false);
    const flipped = proof.map((h, i) => (i === 1 ? h.map((b, j) => (j === 0 ? b ^ 1 : b)) : h));
    expect(isIncluded(trusted, data, 4, flipped)).toBe(false);
    expect(isIncluded(log.trusted(10), data, 4, proof)).toBe(false);
    expect(isIncluded(trusted, data, 11, proof)).toBe(false);
    expect(isIncluded(trusted, data, -1, proof)).toBe(false);
    expect(isIncluded({ size: 0, rootHash: log.trusted(0).rootHash }, data, 0, [])).toBe(false);
  });
});
