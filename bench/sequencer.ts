// `node bench/sequencer.ts` (part of `npm run bench`): the audit transparency log's costs.
//   - Sequencer throughput: entries recorded for one hospital, then integrated by one sequencer
//     run (stage, tiles, indexes, KMS-signed checkpoint), in entries/s, against a bare Firestore
//     write of the same number of documents in the same run (batches of 400).
//   - Proof sizes at several log sizes: a consistency proof a phone or witness downloads per sync
//     and an inclusion proof per access-log entry.
//   - The phone's verification per sync: accept a cosigned checkpoint with its consistency proof
//     and check 20 inclusion proofs, against recomputing one SHA-256 per entry (the floor).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnStack } from '../emulator/process.ts';
import { createFirestoreAuditLog } from '../shared/adapters/firestore-audit.ts';
import { createFirestore } from '../shared/adapters/google-clients.ts';
import { formatTimestamp } from '../shared/core/protocol/index.ts';
import {
  acceptCheckpoint,
  consistencyProof,
  cosignatureSigner,
  cosignatureVerifier,
  cosignCheckpoint,
  ed25519Signer,
  ed25519Verifier,
  inclusionProof,
  isIncluded,
  leafHash,
  memoryHashReader,
  signCheckpoint,
  treeHash,
} from '../shared/core/tlog/index.ts';
import { stackSequencer } from '../test/helpers/audit-logs.ts';
import { isMain, median, table, timed, writeResults } from './stats.ts';

const SHOWN_ENTRIES = 20;

export async function benchSequencer(options: { readonly entries: number }): Promise<{
  results: Record<string, unknown>;
  rows: (string | number)[][];
}> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cb-bench-sequencer-'));
  const stack = await spawnStack(['--port-base', '0', '--data-dir', dataDir]);
  const firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
  try {
    const audit = createFirestoreAuditLog(firestore);
    const fields = (i: number) => ({
      fields: {
        at: formatTimestamp(new Date(Date.UTC(2031, 0, 1, 0, 0, i % 60))),
        actor: { kind: 'device' as const, id: `device-${i}` },
        action: 'record.downloaded' as const,
        hospitalId: 'bench-seq-h',
      },
    });
    // Warm the sequencer's KMS client and the log's first tiles.
    await audit.append([fields(0)]);
    await stackSequencer(stack, firestore).run();

    await audit.append(Array.from({ length: options.entries }, (_, i) => fields(i + 1)));
    const sequencer = stackSequencer(stack, firestore);
    let sequenced = 0;
    const sequencerSeconds = await timed(async () => {
      sequenced = (await sequencer.run()).sequenced;
    });
    if (sequenced !== options.entries) throw new Error(`sequenced ${sequenced} of ${options.entries}`);
    const bareSeconds = await timed(async () => {
      for (let i = 0; i < options.entries; i += 400) {
        const batch = firestore.batch();
        for (let j = i; j < Math.min(i + 400, options.entries); j++) {
          batch.set(firestore.collection('benchBare').doc(`e${j}`), { index: j, pending: false });
        }
        await batch.commit();
      }
    });

    // Proof sizes and the phone's work per sync, in memory over a log of the given size.
    const proofRows: (string | number)[][] = [];
    const sizes: Record<string, unknown> = {};
    for (const size of [1_000, 100_000, 1_000_000]) {
      const leaves = Array.from({ length: size }, (_, i) =>
        leafHash(createHash('sha256').update(String(i)).digest()),
      );
      const read = memoryHashReader(leaves);
      const old = Math.floor(size * 0.9);
      const consistency = consistencyProof(old, size, read);
      const inclusion = inclusionProof(size - 7, size, read);
      sizes[size] = { consistencyBytes: consistency.length * 32, inclusionBytes: inclusion.length * 32 };
      proofRows.push(
        [`consistency proof, ${old} → ${size} entries`, consistency.length * 32, 'bytes'],
        [`inclusion proof, log of ${size} entries`, inclusion.length * 32, 'bytes'],
      );
      if (size === 100_000) sizes.verification = await phoneVerification(read, old, size);
    }
    const verification = sizes.verification as { syncMs: number; floorMs: number };

    const results = {
      entries: options.entries,
      sequencerEntriesPerSecond: options.entries / sequencerSeconds,
      bareFirestoreEntriesPerSecond: options.entries / bareSeconds,
      sequencerToBareRatio: bareSeconds / sequencerSeconds,
      proofs: sizes,
    };
    return {
      results: { sequencer: results },
      rows: [
        [
          `sequencer, ${options.entries} entries of one hospital in one run`,
          results.sequencerEntriesPerSecond,
          'entries/s',
        ],
        [
          'bare Firestore batch write of the same number of documents',
          results.bareFirestoreEntriesPerSecond,
          'entries/s',
        ],
        ['ratio sequencer / bare write', results.sequencerToBareRatio, 'x'],
        ...proofRows,
        [
          `phone per sync: checkpoint + consistency + ${SHOWN_ENTRIES} inclusion proofs (log of 100,000)`,
          verification.syncMs,
          'ms',
        ],
        [`floor: ${SHOWN_ENTRIES} SHA-256 of the entries alone`, verification.floorMs, 'ms'],
      ],
    };
  } finally {
    await firestore.terminate();
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Median time of what a phone does per sync: open a cosigned checkpoint, check consistency and 20 entries. */
async function phoneVerification(
  read: ReturnType<typeof memoryHashReader>,
  old: number,
  size: number,
): Promise<{ syncMs: number; floorMs: number }> {
  const origin = 'bench.clinic-bridge.test/audit/bench-h';
  const log = ed25519Signer('bench.clinic-bridge.test/audit', randomBytes(32));
  const witness = cosignatureSigner('bench-h.witness.clinic-bridge', randomBytes(32), () => 1_900_000_000);
  const note = await cosignCheckpoint(
    await signCheckpoint({ origin, size, rootHash: treeHash(size, read), extensions: [] }, [log]),
    [witness],
  );
  const trust = {
    origin,
    log: ed25519Verifier(log.name, log.publicKey),
    witnesses: [cosignatureVerifier(witness.name, witness.publicKey)],
  };
  const previous = { size: old, rootHash: treeHash(old, read) };
  const consistency = consistencyProof(old, size, read);
  const shown = Array.from({ length: SHOWN_ENTRIES }, (_, i) => size - 1 - i * 97);
  const proofs = shown.map((index) => inclusionProof(index, size, read));
  const data = shown.map((index) => createHash('sha256').update(String(index)).digest());
  const sync: number[] = [];
  const floor: number[] = [];
  for (let round = 0; round < 15; round++) {
    floor.push(
      (await timed(async () => {
        for (const entry of data) createHash('sha256').update(entry).digest();
      })) * 1000,
    );
    sync.push(
      (await timed(async () => {
        const { trusted } = acceptCheckpoint(trust, previous, note, consistency);
        shown.forEach((index, i) => {
          if (!isIncluded(trusted, data[i]!, index, proofs[i]!)) throw new Error('proof failed');
        });
      })) * 1000,
    );
  }
  return { syncMs: median(sync), floorMs: median(floor) };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { entries: { type: 'string', default: '2000' } } });
  const { results, rows } = await benchSequencer({ entries: Number(values.entries) });
  console.log(table([['measure', 'value', 'unit'], ...rows]));
  console.log(
    `\nwritten to ${await writeResults('sequencer', { at: new Date().toISOString(), ...results })}`,
  );
}
