// `npm run bench`: every benchmark in one run, each printed beside the reference it was
// measured against in that same run (cases interleaved where they can be, medians, ratios),
// because absolute times on this shared 2-core machine drift. `--only stack,pairing` picks
// some; each also runs alone (`node bench/<name>.ts --help`).
import { parseArgs } from 'node:util';
import { benchColdStart } from './coldstart.ts';
import { benchCrypto } from './crypto.ts';
import { benchDelivery } from './delivery.ts';
import { benchIngest } from './ingest.ts';
import { benchLoad } from './load.ts';
import { benchPairing } from './pairing.ts';
import { benchPurge } from './purge.ts';
import { benchSequencer } from './sequencer.ts';
import { benchStack } from './stack.ts';
import { table, writeResults } from './stats.ts';

type Bench = () => Promise<{ results: Record<string, unknown>; rows: (string | number)[][] }>;

const BENCHES: Record<string, Bench> = {
  crypto: () => benchCrypto({ sizesMiB: [1, 16, 256], rounds: 7 }),
  stack: () => benchStack({ rounds: 5, kmsCalls: 300, startRounds: 3 }),
  coldstart: () => benchColdStart({ rounds: 3 }),
  pairing: () => benchPairing({ pairings: 200 }),
  ingest: () => benchIngest({ records: 60, concurrency: 4, patients: 1, spread: 10 }),
  delivery: () => benchDelivery({ sizesMiB: [200, 1024] }),
  purge: () => benchPurge({ expired: 10_000, total: 200_000 }),
  sequencer: () => benchSequencer({ entries: 2000 }),
  load: () =>
    benchLoad({
      patients: 20,
      devicesPerPatient: 2,
      records: 240,
      referenceRecords: 40,
      concurrency: 4,
      recordBytes: 16 * 1024,
      deadlineMs: 600_000,
    }),
};

const { values } = parseArgs({ options: { only: { type: 'string' } } });
const names = values.only ? values.only.split(',') : Object.keys(BENCHES);
const unknown = names.filter((name) => !(name in BENCHES));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`);
  process.exit(2);
}

const all: Record<string, unknown> = {
  at: new Date().toISOString(),
  node: process.version,
  cpus: (await import('node:os')).cpus().length,
};
const rows: (string | number)[][] = [];
for (const name of names) {
  console.error(`running ${name} ...`);
  const { results, rows: own } = await BENCHES[name]!();
  Object.assign(all, results);
  rows.push(...own);
}
console.log(table([['measure', 'value', 'unit'], ...rows]));
console.log(`\nwritten to ${await writeResults('all', all)}`);
