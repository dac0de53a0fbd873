// Small helpers for benchmarks on a shared, noisy 2-core machine: interleave the cases
// being compared, repeat, and report medians and ratios taken in the same run.

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
