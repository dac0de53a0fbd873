// `node bench/purge.ts` (part of `npm run bench`): how long the deployed retention function
// takes to purge N expired records (container, metadata, receipt, audit event, ledger) when they
// are all there is, against the same N among M records in total, measured in the same run on
// fresh stacks. Retention finds its work through indexed expiry queries, so the ratio should be
// near 1: its cost follows what has expired, not what is stored.
//
// The unexpired records are Firestore documents only: retention never reads or lists them (the
// orphan sweep reads one bounded page of the records bucket per run, whatever its size), and
// writing M containers to the local Storage emulator would take longer than the benchmark.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Firestore } from '@google-cloud/firestore';
import { Timestamp } from '@google-cloud/firestore';
import { spawnStack } from '../emulator/process.ts';
import { RECORDS_COLLECTION } from '../shared/adapters/firestore-records.ts';
import { createFirestore } from '../shared/adapters/google-clients.ts';
import {
  deletionCounts,
  deletionReceiptFromText,
  newRandomId,
  recordObjectName,
  verifyDeletionReceipt,
} from '../shared/core/protocol/index.ts';
import { inParallel } from '../shared/core/in-parallel.ts';
import { functionPublicKey, registerTestHospital, stackBlobStore } from '../test/helpers/delivery-fixture.ts';
import { isMain, table, timed, writeResults } from './stats.ts';

const HOSPITAL = 'bench-purge';
const DAY_MS = 24 * 3600_000;
const BATCH = 500;

async function seedRecords(
  firestore: Firestore,
  count: number,
  options: { expired: boolean; blob?: (recordId: string) => Promise<{ name: string; generation: string }> },
): Promise<void> {
  const now = Date.now();
  const ids = Array.from({ length: count }, () => newRandomId());
  const stored = new Map<string, { name: string; generation: string }>();
  if (options.blob) {
    const blob = options.blob;
    await inParallel(ids, 16, async (id) => void stored.set(id, await blob(id)));
  }
  const batches: string[][] = [];
  for (let i = 0; i < ids.length; i += BATCH) batches.push(ids.slice(i, i + BATCH));
  await inParallel(batches, 4, async (part) => {
    const batch = firestore.batch();
    part.forEach((recordId) => {
      batch.create(firestore.collection(RECORDS_COLLECTION).doc(recordId), {
        uploadId: newRandomId(),
        hospitalId: HOSPITAL,
        patientRef: newRandomId(),
        contentClass: 'document',
        createdAt: Timestamp.fromMillis(now - DAY_MS),
        expiresAt: Timestamp.fromMillis(options.expired ? now - 3600_000 : now + 30 * DAY_MS),
        acceptedAt: Timestamp.fromMillis(now - DAY_MS),
        size: 64,
        objectName: stored.get(recordId)?.name ?? recordObjectName(HOSPITAL, recordId),
        generation: stored.get(recordId)?.generation ?? '1',
        recipients: [],
        acks: {},
      });
    });
    await batch.commit();
  });
}

/** One case on a fresh stack: `expired` records due among `total`; returns the run's seconds. */
async function purgeCase(expired: number, total: number): Promise<{ seconds: number; purged: number }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cb-bench-purge-'));
  const stack = await spawnStack(['--port-base', '0', '--data-dir', dataDir], { timeoutMs: 180_000 });
  const firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
  const blobs = stackBlobStore(stack);
  try {
    await registerTestHospital(firestore, stack, HOSPITAL);
    const bucket = stack.env.RECORDS_BUCKET!;
    await seedRecords(firestore, expired, {
      expired: true,
      blob: async (recordId) => {
        const name = recordObjectName(HOSPITAL, recordId);
        const info = await blobs.writeSmall(bucket, name, new Uint8Array(randomBytes(64)));
        return { name, generation: info.generation };
      },
    });
    await seedRecords(firestore, total - expired, { expired: false });
    const retentionKey = await functionPublicKey(firestore, 'retention');
    let receipt = '';
    const seconds = await timed(async () => {
      const response = await fetch(`${stack.env.FUNCTIONS_BASE_URL}/retention`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jobId: 'bench' }),
      });
      if (!response.ok) throw new Error(`retention answered ${response.status}`);
      receipt = ((await response.json()) as { receipt: string }).receipt;
    });
    const verified = verifyDeletionReceipt(deletionReceiptFromText(receipt), retentionKey);
    const purged = deletionCounts(verified).records;
    if (purged !== expired || !verified.complete) throw new Error(`purged ${purged} of ${expired}`);
    const left = (await firestore.collection(RECORDS_COLLECTION).count().get()).data().count;
    if (left !== total - expired) throw new Error(`${left} records left, expected ${total - expired}`);
    return { seconds, purged };
  } finally {
    await firestore.terminate();
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export async function benchPurge(options: {
  readonly expired: number;
  readonly total: number;
}): Promise<{ results: Record<string, unknown>; rows: (string | number)[][] }> {
  const alone = await purgeCase(options.expired, options.expired);
  const among = await purgeCase(options.expired, options.total);
  const results = {
    expired: options.expired,
    total: options.total,
    aloneSeconds: alone.seconds,
    amongSeconds: among.seconds,
    aloneRecordsPerSecond: alone.purged / alone.seconds,
    amongRecordsPerSecond: among.purged / among.seconds,
    amongToAloneRatio: among.seconds / alone.seconds,
  };
  return {
    results: { purge: results },
    rows: [
      [`retention purge, ${options.expired} expired of ${options.expired}`, results.aloneSeconds, 's'],
      [`retention purge, ${options.expired} expired of ${options.total}`, results.amongSeconds, 's'],
      [
        'records purged per second (of all / among many)',
        `${results.aloneRecordsPerSecond.toFixed(0)} / ${results.amongRecordsPerSecond.toFixed(0)}`,
        'records/s',
      ],
      ['ratio time among many / time alone', results.amongToAloneRatio, 'x'],
    ],
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: { expired: { type: 'string', default: '10000' }, total: { type: 'string', default: '200000' } },
  });
  const { results, rows } = await benchPurge({
    expired: Number(values.expired),
    total: Number(values.total),
  });
  console.log(table([['measure', 'value', 'unit'], ...rows]));
  console.log(`\nwritten to ${await writeResults('purge', { at: new Date().toISOString(), ...results })}`);
}
