// Small helpers for benchmarks on a shared, noisy 2-core machine: interleave the cases
// being compared, repeat, and report medians and ratios taken in the same run.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Benchmarks create Google clients against the local stack: never probe for a GCE metadata server.
process.env.METADATA_SERVER_DETECTION ??= 'none';

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

export function mbPerSecond(bytes: number, seconds: number): number {
  return bytes / (1024 * 1024) / seconds;
}

export function table(rows: readonly (readonly (string | number)[])[]): string {
  const text = rows.map((row) => row.map((cell) => (typeof cell === 'number' ? cell.toFixed(2) : cell)));
  const widths = text[0]!.map((_, i) => Math.max(...text.map((row) => row[i]!.length)));
  return text.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')).join('\n');
}

/** The p-th percentile (0..100) by nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Writes one benchmark's results to bench/results/<name>-<time>.json and says where. */
export async function writeResults(name: string, results: unknown): Promise<string> {
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  const out = join(ROOT, 'bench/results', `${name}-${Date.now()}.json`);
  await writeFile(out, JSON.stringify(results, null, 2));
  return out;
}

/** True when the module at `url` is the script node was started with (run alone). */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && fileURLToPath(url) === process.argv[1];
}

/** Peak resident set (VmHWM) of a live process, in MiB, from /proc; undefined once it is gone. */
export async function peakRssMiB(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
