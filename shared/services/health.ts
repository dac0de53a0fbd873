import type { Probe } from '../ports/probe.ts';

export interface ProbeResult {
  readonly ok: boolean;
  readonly elapsedMs: number;
  /** A stable code, never the dependency's raw error text (which can carry resource names). */
  readonly error?: 'TIMEOUT' | 'UNAVAILABLE';
}

export interface HealthReport {
  readonly status: 'ok' | 'degraded';
  readonly checks: Readonly<Record<string, ProbeResult>>;
}

/** Runs every probe at once, each bounded by the timeout, so one hung dependency cannot hang the check. */
export async function checkHealth(probes: readonly Probe[], timeoutMs = 3_000): Promise<HealthReport> {
  const results = await Promise.all(
    probes.map(async (probe): Promise<[string, ProbeResult]> => {
      const started = performance.now();
      const signal = AbortSignal.timeout(timeoutMs);
      const elapsed = () => Math.round(performance.now() - started);
      try {
        await Promise.race([
          probe.check(signal),
          new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
        ]);
        return [probe.name, { ok: true, elapsedMs: elapsed() }];
      } catch {
        return [
          probe.name,
          { ok: false, elapsedMs: elapsed(), error: signal.aborted ? 'TIMEOUT' : 'UNAVAILABLE' },
        ];
      }
    }),
  );
  const checks = Object.fromEntries(results);
  return { status: results.every(([, result]) => result.ok) ? 'ok' : 'degraded', checks };
}
