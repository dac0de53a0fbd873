// The committed vectors are what the generator produces now, and they verify with the library
// (independently of how they were produced), so neither the file nor the code can drift.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateTlogVectors } from '../fixtures/generate-tlog-vectors.ts';
import { openAuditEvent } from '../../shared/audit/fields.ts';
import { fromBase64Url } from '../../shared/core/protocol/encoding.ts';
import {
  auditLeafData,
  auditLogKeyName,
  auditLogOrigin,
  witnessKeyName,
} from '../../shared/core/tlog/audit-leaf.ts';
import { openCheckpoint } from '../../shared/core/tlog/checkpoint.ts';
import { cosignatureVerifier } from '../../shared/core/tlog/cosignature.ts';
import { ed25519Verifier, ed25519VerifierFromKey } from '../../shared/core/tlog/ed25519.ts';
import { decodeEntryBundle } from '../../shared/core/tlog/entries.ts';
import { acceptCheckpoint, isIncluded } from '../../shared/core/tlog/follower.ts';
import { leafHash } from '../../shared/core/tlog/hash.ts';
import { parseVerifierKey } from '../../shared/core/tlog/keys.ts';
import { parseTilePath, tileHashReader } from '../../shared/core/tlog/tiles.ts';
import {
  rootFromLeafHashes,
  treeHash,
  verifyConsistency,
  verifyInclusion,
} from '../../shared/core/tlog/tree.ts';

interface Vectors {
  leaves: { data: string; leafHash: string }[];
  roots: { size: number; root: string }[];
  inclusion: { index: number; size: number; proof: string[] };
  consistency: { oldSize: number; newSize: number; proof: string[] };
  checkpoint: { logVerifierKey: string; signedNote: string };
  cosignature: { witnessVerifierKey: string; timestamp: number; cosignedNote: string };
  audit: AuditVectors;
}

interface AuditVectors {
  apiBase: string;
  hospitalId: string;
  origin: string;
  logKeyName: string;
  witnessKeyName: string;
  events: {
    index: number;
    event: string;
    salt: string;
    saltBase64Url: string;
    leafData: string;
    leafHash: string;
  }[];
  roots: { size: number; root: string }[];
  inclusion: { index: number; size: number; proof: string[] }[];
  consistency: { oldSize: number; newSize: number; proof: string[] }[];
  tiles: { tiles: { path: string; data: string }[]; entryBundle: { path: string; data: string } };
  keys: { logVerifierKey: string; witnessPublicKeyBase64Url: string; witnessVerifierKey: string };
  checkpoint: { text: string; signedNote: string; cosignatureTimestamp: number; cosignedNote: string };
  wire: {
    deviceCheckpointResponseFrom3: { logKey: string; checkpoint: string; consistencyProof: string[] };
    accessLogLeafOfEntry3: { event: string; salt: string; index: number; inclusionProof: string[] };
  };
}

const FILE = new URL('../../vectors/transparency.json', import.meta.url);
const vectors = JSON.parse(readFileSync(FILE, 'utf8')) as Vectors;
const unhex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const rootOf = (size: number): Uint8Array => unhex(vectors.roots.find((r) => r.size === size)?.root ?? '');
const audit = vectors.audit;
const auditRoot = (size: number): Uint8Array => unhex(audit.roots.find((r) => r.size === size)?.root ?? '');
const unb64url = (text: string): Uint8Array => fromBase64Url(text) ?? new Uint8Array(0);
/** What a phone trusts for the vectors' hospital: the origin and key names it computes itself. */
function phoneTrust() {
  const log = ed25519VerifierFromKey(audit.keys.logVerifierKey);
  expect(log.name).toBe(auditLogKeyName(audit.apiBase));
  return {
    origin: auditLogOrigin(audit.apiBase, audit.hospitalId),
    log,
    witnesses: [
      cosignatureVerifier(witnessKeyName(audit.hospitalId), unb64url(audit.keys.witnessPublicKeyBase64Url)),
    ],
  };
}

describe('vectors/transparency.json', () => {
  it('is exactly what the generator produces (rerun it if this fails on purpose)', async () => {
    expect(vectors).toEqual(await generateTlogVectors());
  });

  it('is byte for byte what the documented command writes', () => {
    // The generator run in a fresh Node as its header says, formatted as the repository's
    // prettier formats that file, compared with the committed bytes.
    const script = fileURLToPath(new URL('../fixtures/generate-tlog-vectors.ts', import.meta.url));
    const json = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(script)}); process.stdout.write(JSON.stringify(await m.generateTlogVectors(), null, 2) + '\\n');`,
      ],
      { encoding: 'utf8' },
    );
    const prettier = fileURLToPath(new URL('../../node_modules/prettier/bin/prettier.cjs', import.meta.url));
    const formatted = execFileSync(process.execPath, [prettier, '--stdin-filepath', fileURLToPath(FILE)], {
      input: json,
      encoding: 'utf8',
    });
    expect(formatted).toBe(readFileSync(FILE, 'utf8'));
  }, 30_000);

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

  describe('audit', () => {
    it('names the log, its key and the witness as a phone derives them from apiBase and hospitalId', () => {
      expect(audit.origin).toBe(auditLogOrigin(audit.apiBase, audit.hospitalId));
      expect(audit.logKeyName).toBe(auditLogKeyName(audit.apiBase));
      expect(audit.witnessKeyName).toBe(witnessKeyName(audit.hospitalId));
      expect(audit.origin).toBe('api.clinic-bridge.example/cb/audit/st-example-zh');
    });

    it('holds canonical events whose salted leaves hash to the committed tree', () => {
      for (const e of audit.events) {
        expect(openAuditEvent(e.event).hospitalId).toBe(audit.hospitalId);
        const salt = unhex(e.salt);
        expect(unb64url(e.saltBase64Url)).toEqual(salt);
        const data = auditLeafData(salt, e.event);
        expect(hex(data)).toBe(e.leafData);
        expect(hex(leafHash(data))).toBe(e.leafHash);
      }
      const leaves = audit.events.map((e) => unhex(e.leafHash));
      for (const { size, root } of audit.roots) {
        expect(hex(rootFromLeafHashes(leaves.slice(0, size)))).toBe(root);
      }
    });

    it('holds the level-0 tile and entry bundle, which rebuild every tree of the log', () => {
      const size = audit.events.length;
      expect(audit.tiles.tiles).toHaveLength(1);
      const tile = audit.tiles.tiles[0] as { path: string; data: string };
      expect(parseTilePath(tile.path)).toEqual({ level: 0, index: 0, width: size, entries: false });
      // A smaller tree's partial tile is a prefix of this one: tiles only ever grow.
      const data = unhex(tile.data);
      for (const { size: n, root } of audit.roots.filter((r) => r.size > 0)) {
        const read = tileHashReader(n, (c) =>
          c.level === 0 && c.index === 0 && c.width === n ? data.subarray(0, n * 32) : undefined,
        );
        expect(hex(treeHash(n, read))).toBe(root);
      }
      const bundle = parseTilePath(audit.tiles.entryBundle.path);
      expect(bundle).toEqual({ level: 0, index: 0, width: size, entries: true });
      const entries = decodeEntryBundle(unhex(audit.tiles.entryBundle.data), bundle.width);
      expect(entries.map((entry) => hex(entry))).toEqual(audit.events.map((e) => e.leafData));
    });

    it('holds an inclusion proof of every leaf that isIncluded accepts, and none at another index', () => {
      const size = audit.events.length;
      const trusted = { size, rootHash: auditRoot(size) };
      expect(audit.inclusion).toHaveLength(size);
      for (const { index, size: proofSize, proof } of audit.inclusion) {
        expect(proofSize).toBe(size);
        const data = unhex(audit.events[index]?.leafData ?? '');
        expect(isIncluded(trusted, data, index, proof.map(unhex))).toBe(true);
        expect(isIncluded(trusted, data, (index + 1) % size, proof.map(unhex))).toBe(false);
      }
    });

    it('holds consistency proofs that take a phone from each older tree to the newest', () => {
      const trust = phoneTrust();
      for (const { oldSize, newSize, proof } of audit.consistency) {
        expect(
          verifyConsistency(oldSize, newSize, auditRoot(oldSize), auditRoot(newSize), proof.map(unhex)),
        ).toBe(true);
        const accepted = acceptCheckpoint(
          trust,
          { size: oldSize, rootHash: auditRoot(oldSize) },
          audit.checkpoint.cosignedNote,
          proof.map(unhex),
        );
        expect(accepted.trusted).toEqual({ size: newSize, rootHash: auditRoot(newSize) });
        expect(accepted.cosignedAt).toEqual([audit.checkpoint.cosignatureTimestamp]);
      }
    });

    it('holds a cosigned checkpoint a phone accepts on first use, and a log-only one it refuses', () => {
      const trust = phoneTrust();
      const size = audit.events.length;
      const accepted = acceptCheckpoint(trust, undefined, audit.checkpoint.cosignedNote, []);
      expect(accepted.checkpoint.size).toBe(size);
      expect(accepted.checkpoint.rootHash).toEqual(auditRoot(size));
      expect(audit.checkpoint.cosignedNote.startsWith(`${audit.checkpoint.text}\n`)).toBe(true);
      expect(() => acceptCheckpoint(trust, undefined, audit.checkpoint.signedNote, [])).toThrow(
        expect.objectContaining({ code: 'COSIGNATURE_MISSING' }),
      );
      expect(parseVerifierKey(audit.keys.witnessVerifierKey).publicKey).toEqual(
        unb64url(audit.keys.witnessPublicKeyBase64Url),
      );
    });

    it('holds API bodies a phone checks exactly as it would a live answer', () => {
      const trust = phoneTrust();
      const answer = audit.wire.deviceCheckpointResponseFrom3;
      expect(answer.logKey).toBe(audit.keys.logVerifierKey);
      const { trusted } = acceptCheckpoint(
        trust,
        { size: 3, rootHash: auditRoot(3) },
        answer.checkpoint,
        answer.consistencyProof.map(unb64url),
      );
      const leaf = audit.wire.accessLogLeafOfEntry3;
      const data = auditLeafData(unb64url(leaf.salt), leaf.event);
      expect(isIncluded(trusted, data, leaf.index, leaf.inclusionProof.map(unb64url))).toBe(true);
    });
  });
});
