// Progress of a large send (clients/connector/progress.ts): rate and time left from a clock the
// test drives, one redrawn line on a terminal, and a short plain log (a line per tenth) elsewhere.
import { describe, expect, it } from 'vitest';
import {
  formatDuration,
  formatProgress,
  progressBar,
  PROGRESS_MIN_BYTES,
} from '../../clients/connector/progress.ts';

const MiB = 1024 * 1024;

function recorder(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, target: { isTTY, write: (text: string) => writes.push(text) } };
}

describe('send progress', () => {
  it('says how far, how fast and how long is left', () => {
    expect(formatProgress({ stage: 'upload', done: 50 * MiB, total: 200 * MiB, elapsedMs: 5000 })).toBe(
      'uploading   [######                   ]  25% of 200 MiB, 10.0 MiB/s, ETA 0:15',
    );
    expect(
      formatProgress({ stage: 'seal', done: 200 * MiB, total: 200 * MiB, elapsedMs: 65_000, bar: false }),
    ).toBe('encrypting  100% of 200 MiB, 3.1 MiB/s, done in 1:05');
    // Too early to say: a first chunk's rate is no estimate.
    expect(formatProgress({ stage: 'seal', done: MiB, total: 200 * MiB, elapsedMs: 100 })).toContain(
      'ETA --:--',
    );
    expect(formatProgress({ stage: 'download', done: 0, total: 8 * MiB, elapsedMs: 0, bar: false })).toBe(
      'downloading   0% of 8 MiB, 0.0 MiB/s, ETA --:--',
    );
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(59.6)).toBe('1:00');
  });

  it('on a terminal redraws one line at most ten times a second and ends it', () => {
    let now = 0;
    const { writes, target } = recorder(true);
    const progress = progressBar(true, target, () => now);
    for (let done = 0; done <= 100 * MiB; done += MiB) {
      progress('upload', done, 100 * MiB);
      now += 10; // 100 updates in one second
    }
    expect(writes.length).toBeGreaterThanOrEqual(10);
    expect(writes.length).toBeLessThanOrEqual(12);
    expect(writes.every((line) => line.startsWith('\r'))).toBe(true);
    expect(writes.at(-1)).toMatch(/100% of 100 MiB, .* done in 0:01/);
    expect(writes.at(-1)!.endsWith('\u001b[K\n')).toBe(true); // clears the rest of the line, then ends it
  });

  it('into a pipe or a log writes a plain line per tenth, and nothing for small files or when off', () => {
    let now = 0;
    const piped = recorder(false);
    const progress = progressBar(true, piped.target, () => now);
    for (let done = 0; done <= 100 * MiB; done += MiB / 4) {
      progress('seal', done, 100 * MiB);
      now += 5;
    }
    expect(piped.writes).toHaveLength(11); // 0%, 10%, … 100%
    expect(piped.writes.every((line) => !line.includes('\r') && line.endsWith('\n'))).toBe(true);
    expect(piped.writes[5]).toMatch(/^encrypting {3}50% of 100 MiB, \d+\.\d MiB\/s, ETA 0:\d\d\n$/);

    const small = recorder(true);
    progressBar(true, small.target)('upload', 1, PROGRESS_MIN_BYTES - 1);
    const off = recorder(true);
    progressBar(false, off.target)('upload', 1, 100 * MiB);
    expect([...small.writes, ...off.writes]).toEqual([]);
  });
});
