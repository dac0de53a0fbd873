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

describe('a session that already holds every byte', () => {
  it('is completed by one empty request that carries the digest, with nothing sent again', async () => {
    const total = 512 * 1024;
    const seen: { range: string | undefined; hash: string | undefined; bytes: number }[] = [];
    let reads = 0;
    const server = createServer((req, res) => {
      let bytes = 0;
      req.on('data', (piece: Buffer) => (bytes += piece.length));
      req.on('end', () => {
        const range = req.headers['content-range'];
        const hash = req.headers['x-goog-hash'];
        seen.push({ range, hash: typeof hash === 'string' ? hash : undefined, bytes });
        // Like a session whose last answer was lost: all bytes persisted, no object made yet.
        if (seen.length === 1) {
          res.writeHead(308, { range: `bytes=0-${total - 1}` });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bucket: 'ingest', name: 'x.cbr', generation: '7', size: String(total) }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (server.address() as { port: number }).port;
      const object = await uploadToSession({
        sessionUri: `http://127.0.0.1:${port}/upload?upload_id=s1`,
        source: {
          size: total,
          md5: 'AAAAAAAAAAAAAAAAAAAAAA==',
          async *range(start, end) {
            reads++;
            yield new Uint8Array(end - start);
          },
        },
      });
      expect(object).toEqual({ bucket: 'ingest', name: 'x.cbr', generation: '7', size: total });
      expect(reads).toBe(0); // nothing read, nothing sent again
      expect(seen).toEqual([
        { range: `bytes */${total}`, hash: 'md5=AAAAAAAAAAAAAAAAAAAAAA==', bytes: 0 },
        { range: `bytes */${total}`, hash: 'md5=AAAAAAAAAAAAAAAAAAAAAA==', bytes: 0 },
      ]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
