// The connector's retry schedule for resumable uploads: capped exponential ceilings, full
// jitter under them, and a bounded number of failures in a row before a stable error that names
// the URL (never the session's credential). The bounded case runs against a real HTTP server on
// loopback that answers every request 503.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backoffMs,
  isResumableUploadError,
  uploadToSession,
  type UploadSource,
} from '../../clients/connector/resumable-upload.ts';
import { seededRandom } from '../helpers/fault-proxy.ts';

const policy = { baseMs: 500, capMs: 32_000 };

describe('backoff schedule', () => {
  it('doubles the ceiling per failure up to the cap', () => {
    const top = (failure: number) => backoffMs(failure, { ...policy, random: () => 0.999999 });
    expect([1, 2, 3, 4, 5, 6, 7].map(top)).toEqual([499, 999, 1999, 3999, 7999, 15_999, 31_999]);
    expect(top(8)).toBe(31_999);
    expect(top(1000)).toBe(31_999);
  });

  it('draws each delay uniformly below the ceiling (full jitter), reproducibly from a seed', () => {
    const draw = (seed: number) => {
      const random = seededRandom(seed);
      return Array.from({ length: 200 }, (_, i) => backoffMs((i % 10) + 1, { ...policy, random }));
    };
    const delays = draw(18);
    expect(draw(18)).toEqual(delays);
    expect(draw(19)).not.toEqual(delays);
    delays.forEach((delay, i) => {
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(Math.min(policy.capMs, policy.baseMs * 2 ** (i % 10)));
    });
    // Spread, not a fixed schedule: at the cap, delays cover most of [0, cap).
    const capped = delays.filter((_, i) => i % 10 >= 6);
    expect(Math.min(...capped)).toBeLessThan(policy.capMs / 4);
    expect(Math.max(...capped)).toBeGreaterThan((policy.capMs * 3) / 4);
  });

  it('refuses a failure count that is not a positive whole number', () => {
    expect(() => backoffMs(0, { ...policy, random: Math.random })).toThrow(RangeError);
    expect(() => backoffMs(1.5, { ...policy, random: Math.random })).toThrow(RangeError);
  });
});

describe('bounded retries against a failing session', () => {
  let server: Server;
  let requests = 0;
  let base: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests++;
      req.resume();
      req.on('end', () => {
        res.writeHead(503);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('gives up after maxAttempts failures with UPLOAD_RETRIES_EXHAUSTED, naming the URL but not the session', async () => {
    const source: UploadSource = {
      size: 1024,
      async *range(start, end) {
        yield new Uint8Array(end - start);
      },
    };
    const slept: number[] = [];
    const retried: string[] = [];
    const sessionUri = `${base}/upload/storage/v1/b/ingest/o?uploadType=resumable&name=x.cbr&upload_id=SECRET-session-1234`;
    const error = await uploadToSession({
      sessionUri,
      source,
      retry: { maxAttempts: 5, baseMs: 10, capMs: 40, random: seededRandom(3) },
      sleep: async (ms) => {
        slept.push(ms);
      },
      onRetry: (_failure, _delay, reason) => retried.push(reason),
    }).catch((caught: unknown) => caught);
    expect(isResumableUploadError(error)).toBe(true);
    if (!isResumableUploadError(error)) return;
    expect(error.code).toBe('UPLOAD_RETRIES_EXHAUSTED');
    expect(error.url).toBe(`${base}/upload/storage/v1/b/ingest/o?uploadType=resumable&name=x.cbr`);
    expect(error.message).toContain(error.url);
    expect(error.message).not.toContain('SECRET');
    expect(requests).toBe(5);
    expect(retried).toEqual(['HTTP 503', 'HTTP 503', 'HTTP 503', 'HTTP 503']);
    expect(slept).toHaveLength(4);
    slept.forEach((ms, i) => expect(ms).toBeLessThan(Math.min(40, 10 * 2 ** i)));
  });
});
