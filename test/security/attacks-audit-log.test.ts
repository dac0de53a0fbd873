// The audit transparency log on the local stack (docs/PROTOCOL.md §10), against the party the
// log exists to catch: the cloud operator, who can write Firestore and the log's bucket and can
// sign with the platform's log key. Events are recorded through the real adapter, sequenced by
// the sequencer over the real Storage and KMS emulators, and checked the way the hospital's
// witness and the patient's phone check them (shared/core/tlog/follower.ts).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../emulator/stack.ts';
import {
  createFirestoreAuditLog,
  createFirestoreLogRegistry,
} from '../../shared/adapters/firestore-audit.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import type { AuditFields } from '../../shared/audit/fields.ts';
import { fromBase64Url, toBase64Url } from '../../shared/core/protocol/encoding.ts';
import type { TlogError } from '../../shared/core/tlog/index.ts';
import {
  acceptCheckpoint,
  auditLeafData,
  auditLogOrigin,
  cosignatureVerifier,
  decodeEntryBundle,
  ed25519VerifierFromKey,
  encodeEntryBundle,
  isIncluded,
  isSplitView,
  leafHash,
  rootFromLeafHashes,
  signCheckpoint,
  TILE_WIDTH,
  tilesFromLeafHashes,
  witnessKeyName,
  type LogTrust,
  type TrustedCheckpoint,
} from '../../shared/core/tlog/index.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import type { LogObjects } from '../../shared/ports/log-objects.ts';
import {
  stackLogObjects,
  stackLogSigner,
  stackSequencer,
  stackTransparency,
  testWitness,
  tlogBucket,
} from '../helpers/audit-logs.ts';
import { stackBlobStore } from '../helpers/delivery-fixture.ts';

const PATIENT = 'PPPPPPPPPPPPPPPPPPPPPA';
let counter = 0;

function event(hospitalId: string, extra: Partial<AuditFields> = {}): { fields: AuditFields } {
  counter++;
  return {
    fields: {
      at: new Date(Date.UTC(2031, 4, 1, 10, 0, counter)).toISOString().replace('.000Z', 'Z'),
      actor: { kind: 'device', id: `device-${counter}` },
      action: 'record.downloaded',
      hospitalId,
      patientRef: PATIENT,
      ...extra,
    },
  };
}

function proofBytes(proof: readonly string[]): Uint8Array[] {
  return proof.map((hash) => fromBase64Url(hash)!);
}

describe('the audit transparency log', () => {
  let dir: string;
  let stack: Stack;
  let firestore: Firestore;
  let blobs: BlobStore;
  let objects: LogObjects;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-tlog-'));
    stack = await startStack({ dataDir: join(dir, 'stack'), portBase: 0 });
    firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
    blobs = stackBlobStore(stack);
    objects = stackLogObjects(stack, blobs);
  });

  afterAll(async () => {
    await firestore?.terminate();
    await stack?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Every leaf of a log as its entry bundles hold them, up to `size`. */
  async function leavesOf(logId: string, size: number): Promise<Uint8Array[]> {
    const leaves: Uint8Array[] = [];
    for (let index = 0; index * TILE_WIDTH < size; index++) {
      const width = Math.min(TILE_WIDTH, size - index * TILE_WIDTH);
      leaves.push(...decodeEntryBundle((await objects.entryBundle(logId, index, width))!, width));
    }
    return leaves;
  }

  /** Checks a log end to end: one index per entry, no gaps, bundles match entries and the root. */
  async function expectOneLog(logId: string): Promise<number> {
    const current = await objects.checkpoint(logId);
    const size = current!.checkpoint.size;
    const entries = await createFirestoreAuditLog(firestore).sequenced(logId, { from: 0, limit: 1000 });
    expect(entries.map((entry) => entry.index)).toEqual(Array.from({ length: size }, (_, i) => i));
    const leaves = await leavesOf(logId, size);
    entries.forEach((entry) => expect(leaves[entry.index!]).toEqual(auditLeafData(entry.salt, entry.event)));
    expect(rootFromLeafHashes(leaves.map(leafHash))).toEqual(current!.checkpoint.rootHash);
    return size;
  }

  it('A3 records many events for one patient with nothing to contend on, and the sequencer commits them all', async () => {
    const logId = 'tl-burst-h';
    const audit = createFirestoreAuditLog(firestore);
    await Promise.all(Array.from({ length: 60 }, () => audit.append([event(logId)])));
    const run = await stackSequencer(stack, firestore).run();
    expect(run.sequenced).toBeGreaterThanOrEqual(60);
    expect(await expectOneLog(logId)).toBe(60);
    // Tiles are immutable: the sequencer created each one only if it did not exist.
    const tile = await blobs.stat(tlogBucket(stack), `${logId}/tile/0/000.p/60`);
    expect(tile).toBeDefined();
  });

  it('A4 the log bucket holds hashes and counts only: no id, action or time of any event', async () => {
    const logId = 'tl-burst-h';
    const events = await createFirestoreAuditLog(firestore).sequenced(logId, { from: 0, limit: 1000 });
    const secrets = new Set<string>([PATIENT, 'record.downloaded', 'device-']);
    for (const entry of events) secrets.add(entry.fields.at);
    const bucket = tlogBucket(stack);
    let objectsRead = 0;
    for (const item of (await blobs.list(bucket, `${logId}/`)).items) {
      const chunks: Uint8Array[] = [];
      for await (const chunk of blobs.read(bucket, item.name)) chunks.push(chunk);
      const text = Buffer.concat(chunks).toString('latin1');
      for (const secret of secrets) expect(text.includes(secret), `${item.name} holds ${secret}`).toBe(false);
      objectsRead++;
    }
    expect(objectsRead).toBeGreaterThanOrEqual(2); // a hash tile and an entry bundle at least
  });

  describe('a sequencer that crashes', () => {
    const crashes: [string, (real: LogObjects) => Partial<LogObjects>][] = [
      ['after staging, before any tile', () => ({ putTile: async () => Promise.reject(new Error('crash')) })],
      [
        'between writing the tiles and advancing the checkpoint',
        () => ({ advanceCheckpoint: async () => Promise.reject(new Error('crash')) }),
      ],
      [
        'after advancing the checkpoint, before clearing its in-flight mark',
        (real) => ({
          advanceCheckpoint: async (...args) => {
            await real.advanceCheckpoint(...args);
            throw new Error('crash');
          },
        }),
      ],
    ];
    for (const [where, fault] of crashes) {
      it(`A3 ${where} loses nothing and forks nothing`, async () => {
        const logId = `tl-crash-${crashes.findIndex(([w]) => w === where)}-h`;
        const audit = createFirestoreAuditLog(firestore);
        await audit.append([event(logId), event(logId), event(logId)]);
        await stackSequencer(stack, firestore).run();
        await audit.append([event(logId), event(logId)]);
        const crashing = { ...objects, ...fault(objects) };
        await expect(stackSequencer(stack, firestore, { objects: crashing }).run()).rejects.toThrow('crash');
        // More arrives while the log is down; then the sequencer comes back.
        await audit.append([event(logId)]);
        await stackSequencer(stack, firestore).run();
        expect(await expectOneLog(logId)).toBe(6);
        expect(await createFirestoreLogRegistry(firestore).inFlight()).not.toContain(logId);
      });
    }
  });

  it('A3 two sequencers racing (and a third) produce one log', async () => {
    const logId = 'tl-race-h';
    const audit = createFirestoreAuditLog(firestore);
    for (let round = 0; round < 4; round++) {
      await Promise.all([
        audit.append(Array.from({ length: 7 }, () => event(logId))),
        stackSequencer(stack, firestore).run(),
        stackSequencer(stack, firestore).run(),
        stackSequencer(stack, firestore).run(),
      ]);
    }
    await stackSequencer(stack, firestore).run();
    expect(await expectOneLog(logId)).toBe(28);
  });

  describe('an operator who rewrites the log and re-signs it', () => {
    const logId = 'tl-attack-h';
    let trust: LogTrust;
    let phoneTrust: LogTrust;
    let witnessSeen: TrustedCheckpoint;
    let phoneSeen: TrustedCheckpoint;
    let original: Uint8Array[];
    let size: number;
    const witness = testWitness(logId, randomBytes(32), () => Math.floor(Date.now() / 1000));

    beforeAll(async () => {
      const audit = createFirestoreAuditLog(firestore);
      await audit.append(Array.from({ length: 9 }, () => event(logId)));
      await stackSequencer(stack, firestore).run();
      const transparency = stackTransparency(stack, firestore);
      const latest = await transparency.latestCheckpoint(logId, undefined);
      const origin = auditLogOrigin(stack.env.FUNCTIONS_BASE_URL!, logId);
      trust = { origin, log: ed25519VerifierFromKey(latest.logKey!), witnesses: [] };
      phoneTrust = {
        ...trust,
        witnesses: [cosignatureVerifier(witnessKeyName(logId), witness.signer.publicKey)],
      };
      witnessSeen = acceptCheckpoint(trust, undefined, latest.checkpoint!, []).trusted;
      await witness.cosignLatest(transparency);
      const cosigned = await transparency.witnessedCheckpoint(logId, undefined);
      phoneSeen = acceptCheckpoint(phoneTrust, undefined, cosigned.checkpoint!, []).trusted;
      size = witnessSeen.size;
      original = await leavesOf(logId, size);
    });

    /** Replaces the log's tiles, bundles and checkpoint with a tree of `leaves`, signed with the real key. */
    async function rewrite(leaves: readonly Uint8Array[]): Promise<string> {
      const bucket = tlogBucket(stack);
      const prefix = `${logId}/`;
      for (const item of (await blobs.list(bucket, prefix)).items) await blobs.delete(bucket, item.name);
      for (const tile of tilesFromLeafHashes(leaves.map(leafHash))) {
        await objects.putTile(logId, tile);
        if (tile.level === 0) {
          const from = tile.index * TILE_WIDTH;
          await objects.putEntryBundle(
            logId,
            tile.index,
            tile.width,
            encodeEntryBundle(leaves.slice(from, from + tile.width)),
          );
        }
      }
      const note = await signCheckpoint(
        {
          origin: trust.origin,
          size: leaves.length,
          rootHash: rootFromLeafHashes(leaves.map(leafHash)),
          extensions: [],
        },
        [await stackLogSigner(stack)],
      );
      await objects.advanceCheckpoint(logId, note, '0');
      return note;
    }

    const forged = () => auditLeafData(randomBytes(32), '{"forged":true}');
    const attacks: [string, () => Uint8Array[]][] = [
      ['edits an entry', () => original.map((leaf, i) => (i === 4 ? forged() : leaf))],
      [
        'deletes an entry (and pads the end to keep the size)',
        () => [...original.filter((_, i) => i !== 2), forged()],
      ],
      [
        'reorders two entries',
        () => original.map((leaf, i) => (i === 3 ? original[5]! : i === 5 ? original[3]! : leaf)),
      ],
      ['inserts an entry', () => [...original.slice(0, 1), forged(), ...original.slice(1)]],
      ['deletes the newest entry', () => original.slice(0, -1)],
    ];

    for (const [attack, leaves] of attacks) {
      it(`A1 who ${attack} is caught by the witness and by a phone that saw an earlier checkpoint`, async () => {
        const note = await rewrite(leaves());
        const transparency = stackTransparency(stack, firestore);
        // The witness asks for a proof from what it cosigned: there is none that verifies.
        const shown = await transparency.latestCheckpoint(logId, witnessSeen.size);
        const witnessVerdict = (() => {
          try {
            acceptCheckpoint(trust, witnessSeen, shown.checkpoint!, proofBytes(shown.consistencyProof));
            return 'accepted';
          } catch (error) {
            return (error as TlogError).code;
          }
        })();
        expect(['INCONSISTENT', 'CHECKPOINT_ROLLBACK']).toContain(witnessVerdict);
        // Nor can the rewritten tree be passed to the phone: the witness never cosigned it, and
        // the witness's old cosignature does not fit the new text.
        expect(() => acceptCheckpoint(phoneTrust, phoneSeen, note, [])).toThrow(
          expect.objectContaining({ code: 'COSIGNATURE_MISSING' }),
        );
        const oldCosignature = (await transparency.witnessedCheckpoint(logId, undefined))
          .checkpoint!.split('\n')
          .filter((line) => line.startsWith(`— ${witnessKeyName(logId)} `));
        expect(oldCosignature).toHaveLength(1);
        expect(() => acceptCheckpoint(phoneTrust, phoneSeen, `${note}${oldCosignature[0]}\n`, [])).toThrow(
          expect.objectContaining({ code: 'SIGNATURE_INVALID' }),
        );
        // And the platform itself refuses to record a cosignature of a tree that is not the log's.
        await rewrite(original);
      });
    }

    it('A2 a split view (one history for the phone, another for the witness) is caught', async () => {
      // The operator keeps the real log for the witness and builds a fork for the phone.
      const fork = [...original.slice(0, 6), forged(), forged(), forged()];
      const forkNote = await rewrite(fork);
      const forkSeen = acceptCheckpoint(trust, undefined, forkNote, []).trusted;
      await rewrite(original);
      // Same size, another root: two signed histories, which is proof of misbehaviour.
      expect(isSplitView(forkSeen, witnessSeen)).toBe(true);
      // The phone would only take the fork with the witness's cosignature, which the witness
      // (following the real history) will not give; without it the phone refuses.
      expect(() => acceptCheckpoint(phoneTrust, undefined, forkNote, [])).toThrow(
        expect.objectContaining({ code: 'COSIGNATURE_MISSING' }),
      );
      // And a witness shown the fork after the real one refuses to cosign it.
      expect(() => acceptCheckpoint(trust, witnessSeen, forkNote, [])).toThrow(
        expect.objectContaining({ code: 'INCONSISTENT' }),
      );
    });

    it('A2 the platform refuses a cosignature of a checkpoint the log never published', async () => {
      const transparency = stackTransparency(stack, firestore);
      const fork = [...original.slice(0, 5), forged()];
      const note = await signCheckpoint(
        {
          origin: trust.origin,
          size: fork.length,
          rootHash: rootFromLeafHashes(fork.map(leafHash)),
          extensions: [],
        },
        [await stackLogSigner(stack)],
      );
      const { cosignCheckpoint } = await import('../../shared/core/tlog/index.ts');
      await expect(
        transparency.cosign(logId, await cosignCheckpoint(note, [witness.signer]), witness.witnessKey),
      ).rejects.toMatchObject({ code: 'COSIGNATURE_INVALID' });
      // A second witness key for the same log is refused too.
      const other = testWitness(logId, randomBytes(32), () => Math.floor(Date.now() / 1000));
      await expect(other.cosignLatest(transparency)).rejects.toMatchObject({ code: 'WITNESS_KEY_MISMATCH' });
    });

    it('A1 a phone verifies each of its access-log entries against the cosigned checkpoint', async () => {
      const transparency = stackTransparency(stack, firestore);
      const audit = createFirestoreAuditLog(firestore);
      const entries = await audit.forPatient(logId, PATIENT, { limit: 100 });
      const proofs = await transparency.inclusionProofs(
        logId,
        entries.map((entry) => entry.index!),
        phoneSeen.size,
      );
      entries.forEach((entry, i) => {
        expect(
          isIncluded(phoneSeen, auditLeafData(entry.salt, entry.event), entry.index!, proofBytes(proofs[i]!)),
        ).toBe(true);
      });
      // An entry whose stored text was edited no longer proves its inclusion.
      const edited = entries[0]!.event.replace('record.downloaded', 'record.acknowledged');
      expect(
        isIncluded(
          phoneSeen,
          auditLeafData(entries[0]!.salt, edited),
          entries[0]!.index!,
          proofBytes(proofs[0]!),
        ),
      ).toBe(false);
      expect(toBase64Url(phoneSeen.rootHash)).toBe(toBase64Url(witnessSeen.rootHash));
    });
  });
});
