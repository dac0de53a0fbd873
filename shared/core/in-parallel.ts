// Runs `run` over `items` with at most `limit` calls in flight: bounded fan-out for deletions
// and for benchmarks that drive the stack, without a dependency for twelve lines.
export async function inParallel<T>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await run(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
