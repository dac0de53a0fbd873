// `node bench/coldstart.ts` (part of `npm run bench`): how long each HTTP function's first
// request takes on a freshly started stack — the function is built then (its adapters wired, its
// own key unwrapped with one KMS Decrypt, Themis loaded) — against the same request once it is
// warm, in the same run. Repeated on fresh stacks; medians. The requests are the cheapest each
// function serves: the health probe, a malformed pair request (400 after the build), and the
// records function's public key.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnStack } from '../emulator/process.ts';
import { isMain, median, table, writeResults } from './stats.ts';

const PROBES = [
  { name: 'health', path: '/health', init: { method: 'GET' } },
  {
    name: 'pairing',
    path: '/pairing/v1/pair',
    init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' },
  },
  { name: 'records', path: '/records/v1/signing-key', init: { method: 'GET' } },
] as const;

async function timedRequest(url: string, init: RequestInit): Promise<number> {
  const started = performance.now();
  const response = await fetch(url, init);
  await response.arrayBuffer();
  if (response.status >= 500) throw new Error(`${url} answered ${response.status}`);
  return performance.now() - started;
}

export async function benchColdStart(options: {
  readonly rounds: number;
}): Promise<{ results: Record<string, unknown>; rows: (string | number)[][] }> {
  const samples = new Map(PROBES.map((p) => [p.name, { cold: [] as number[], warm: [] as number[] }]));
  for (let round = 0; round < options.rounds; round++) {
    const dataDir = await mkdtemp(join(tmpdir(), 'cb-bench-cold-'));
    const stack = await spawnStack(['--port-base', '0', '--data-dir', dataDir]);
    try {
      for (const probe of PROBES) {
        const url = `${stack.env.FUNCTIONS_BASE_URL}${probe.path}`;
        const sample = samples.get(probe.name)!;
        sample.cold.push(await timedRequest(url, probe.init));
        const warm: number[] = [];
        for (let i = 0; i < 5; i++) warm.push(await timedRequest(url, probe.init));
        sample.warm.push(median(warm));
      }
    } finally {
      await stack.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  const results: Record<string, unknown> = {};
  const rows: (string | number)[][] = [];
  for (const [name, { cold, warm }] of samples) {
    const c = median(cold);
    const w = median(warm);
    results[name] = { coldMs: c, warmMs: w, ratio: c / w };
    rows.push([`${name}: first request after start (build + key unwrap)`, c, 'ms']);
    rows.push([`${name}: warm request, same run`, w, `ms  (cold ${(c / w).toFixed(1)}x warm)`]);
  }
  return { results: { coldStart: { rounds: options.rounds, ...results } }, rows };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
  const { results, rows } = await benchColdStart({ rounds: Number(values.rounds) });
  console.log(table([['measure', 'value', 'unit'], ...rows]));
  console.log(
    `\nwritten to ${await writeResults('coldstart', { at: new Date().toISOString(), ...results })}`,
  );
}
