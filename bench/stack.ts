// `node bench/stack.ts` (part of `npm run bench`): measures the local stack itself. Each comparison is made side by side in this
// one run (cases interleaved, medians of several rounds), because absolute times on a
// shared machine drift; the ratios are what to compare between runs.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createKms, createStorage } from '../shared/adapters/google-clients.ts';
import { cryptoKeyName, loadCatalog } from '../shared/runtime/catalog.ts';
import { spawnStack } from '../emulator/process.ts';
import { startStack } from '../emulator/stack.ts';
import { isMain, mbPerSecond, median, table, timed, writeResults } from './stats.ts';

export interface StackBenchOptions {
  readonly rounds: number;
  readonly kmsCalls: number;
  readonly startRounds: number;
}

async function storageAndKms(options: StackBenchOptions, results: Record<string, unknown>): Promise<void> {
  const rounds = options.rounds;
  const dataDir = await mkdtemp(join(tmpdir(), 'cb-bench-'));
  const stack = await startStack({ dataDir, portBase: 0 });
  try {
    const projectId = stack.env.GCLOUD_PROJECT!;
    const size = 16 * 1024 * 1024;
    const bytes = randomBytes(size);
    const source = join(dataDir, 'source.bin');
    await writeFile(source, bytes);
    const storage = createStorage(projectId, stack.env);
    const bucket = storage.bucket(stack.env.INGEST_BUCKET!);

    const copy: number[] = [];
    const roundTrip: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const target = join(dataDir, `copy-${round}.bin`);
      copy.push(await timed(() => pipeline(createReadStream(source), createWriteStream(target))));
      await rm(target);
      const file = bucket.file(`bench/${round}.bin`);
      roundTrip.push(
        await timed(async () => {
          await file.save(bytes, { resumable: true, validation: 'crc32c' });
          const [back] = await file.download({ validation: 'crc32c' });
          if (back.length !== size) throw new Error('short download');
        }),
      );
    }
    const storageRate = mbPerSecond(2 * size, median(roundTrip));
    const copyRate = mbPerSecond(2 * size, median(copy));
    results.storage = {
      objectMiB: 16,
      uploadPlusDownloadMBps: storageRate,
      plainFileCopyMBps: copyRate,
      ratioToFileCopy: storageRate / copyRate,
      rounds,
    };

    const kms = createKms(stack.env);
    const key = cryptoKeyName(loadCatalog(), 'pairing', projectId);
    const calls = options.kmsCalls;
    const plaintext = randomBytes(32);
    await kms.encrypt({ name: key, plaintext }); // connect before timing
    const perRound: number[] = [];
    for (let round = 0; round < 3; round++) {
      const seconds = await timed(async () => {
        for (let i = 0; i < calls; i++) {
          const [sealed] = await kms.encrypt({ name: key, plaintext });
          await kms.decrypt({ name: key, ciphertext: sealed.ciphertext });
        }
      });
      perRound.push(calls / seconds);
    }
    await kms.close();
    results.kms = { encryptDecryptRoundTripsPerSecond: median(perRound), callsPerRound: calls, rounds: 3 };
  } finally {
    await stack.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function timeToReady(dataDir: string): Promise<number> {
  const started = performance.now();
  const stack = await spawnStack(['--port-base', '0', '--data-dir', dataDir]);
  const seconds = (performance.now() - started) / 1000;
  await stack.stop();
  return seconds;
}

async function stackStart(options: StackBenchOptions, results: Record<string, unknown>): Promise<void> {
  const fresh: number[] = [];
  const warm: number[] = [];
  const count = options.startRounds;
  for (let round = 0; round < count; round++) {
    const dataDir = join(tmpdir(), `cb-bench-start-${process.pid}-${round}`);
    await mkdir(dataDir, { recursive: true });
    fresh.push(await timeToReady(dataDir));
    warm.push(await timeToReady(dataDir)); // same data: imports Firestore, keys already provisioned
    await rm(dataDir, { recursive: true, force: true });
  }
  results.stackStart = { freshSeconds: median(fresh), restartSeconds: median(warm), rounds: count };
}

/** Storage and KMS throughput against plain local references, and stack start-up time. */
export async function benchStack(
  options: StackBenchOptions,
): Promise<{ results: Record<string, unknown>; rows: (string | number)[][] }> {
  const results: Record<string, unknown> = {};
  await storageAndKms(options, results);
  await stackStart(options, results);
  const s = results.storage as Record<string, number>;
  const k = results.kms as Record<string, number>;
  const st = results.stackStart as Record<string, number>;
  return {
    results,
    rows: [
      ['storage upload+download 16 MiB (crc32c on)', s.uploadPlusDownloadMBps!, 'MB/s'],
      ['plain local file copy, same bytes', s.plainFileCopyMBps!, 'MB/s'],
      ['ratio storage / file copy', s.ratioToFileCopy!, 'x'],
      ['KMS encrypt+decrypt round trips', k.encryptDecryptRoundTripsPerSecond!, 'per s'],
      ['stack start to ready (fresh data)', st.freshSeconds!, 's'],
      ['stack start to ready (restart)', st.restartSeconds!, 's'],
    ],
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      'kms-calls': { type: 'string', default: '300' },
      'start-rounds': { type: 'string', default: '3' },
    },
  });
  const { results, rows } = await benchStack({
    rounds: Number(values.rounds),
    kmsCalls: Number(values['kms-calls']),
    startRounds: Number(values['start-rounds']),
  });
  console.log(table([['measure', 'value', 'unit'], ...rows]));
  console.log(
    `\nwritten to ${await writeResults('stack', { at: new Date().toISOString(), node: process.version, ...results })}`,
  );
}
