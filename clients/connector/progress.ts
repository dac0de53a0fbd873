// Progress of a large send or download on stderr (stdout stays for results): the stage, how far, the rate and
// the time left. On a terminal one line redraws in place, at most ten times a second; into a
// pipe or a log file it writes a plain line every tenth of the way, so a log is readable and short.

export type ProgressStage = 'seal' | 'upload' | 'download';

/** Files smaller than this finish before a bar would say anything useful. */
export const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;

const MiB = 1024 * 1024;

// One width, so that successive lines of a send line up.
const STAGE_LABELS: Record<ProgressStage, string> = {
  seal: 'encrypting ',
  upload: 'uploading  ',
  download: 'downloading',
};

/** `m:ss` (or `h:mm:ss`) for a number of seconds. */
export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/**
 * One progress line: stage, bar, percentage of the total, rate since the stage began and the
 * estimated time left (unknown until a little has been done, since a first chunk's rate lies).
 */
export function formatProgress(progress: {
  readonly stage: ProgressStage;
  readonly done: number;
  readonly total: number;
  readonly elapsedMs: number;
  readonly bar?: boolean;
}): string {
  const { done, total, elapsedMs } = progress;
  const fraction = total <= 0 ? 1 : Math.min(1, Math.max(0, done / total));
  const percent = Math.floor(fraction * 100);
  const rate = elapsedMs > 0 ? done / (elapsedMs / 1000) : 0;
  const finished = done >= total;
  const eta = finished
    ? `done in ${formatDuration(elapsedMs / 1000)}`
    : rate > 0 && elapsedMs >= 500
      ? `ETA ${formatDuration((total - done) / rate)}`
      : 'ETA --:--';
  const stage = STAGE_LABELS[progress.stage];
  const bar = progress.bar === false ? '' : ` [${'#'.repeat(Math.floor(percent / 4)).padEnd(25)}]`;
  return `${stage}${bar} ${String(percent).padStart(3)}% of ${(total / MiB).toFixed(0)} MiB, ${(rate / MiB).toFixed(1)} MiB/s, ${eta}`;
}

export interface ProgressTarget {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

/** The onProgress callback sendFile takes (and a download may); does nothing unless `enabled`. */
export function progressBar(
  enabled: boolean,
  target: ProgressTarget = process.stderr,
  clock: () => number = () => performance.now(),
): (stage: ProgressStage, done: number, total: number) => void {
  const started = new Map<ProgressStage, number>();
  let lastDrawn = -Infinity;
  let lastTenth = -1;
  return (stage, done, total) => {
    if (!enabled || total < PROGRESS_MIN_BYTES) return;
    const now = clock();
    if (!started.has(stage)) {
      started.set(stage, now);
      lastDrawn = -Infinity;
      lastTenth = -1;
    }
    const elapsedMs = now - started.get(stage)!;
    const finished = done >= total;
    if (target.isTTY) {
      if (!finished && now - lastDrawn < 100) return;
      lastDrawn = now;
      target.write(`\r${formatProgress({ stage, done, total, elapsedMs })}\x1b[K${finished ? '\n' : ''}`);
      return;
    }
    const tenth = Math.floor((10 * done) / total);
    if (tenth === lastTenth) return;
    lastTenth = tenth;
    target.write(`${formatProgress({ stage, done, total, elapsedMs, bar: false })}\n`);
  };
}
