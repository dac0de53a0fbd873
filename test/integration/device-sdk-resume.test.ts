// A download that breaks off resumes where it stopped: the SDK asks for the rest with
// `Range: bytes=<next>-`, the records function answers 206 with exactly those bytes, and the
// container reader (digest, chunk decryption) carries on as if the connection had never
// dropped. The connection is cut on the device's side, twice, by a fetch that ends the body
// with the network error a dropped connection gives; the stack is the real one.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localPushToken } from '../../clients/device/local-push.ts';
import { readQrPng } from '../../clients/lib/qr.ts';
import {
  createApiClient,
  DeviceHome,
  pairFromQr,
  syncRecords,
  type ApiClientOptions,
} from '../../sdk/index.ts';
import { FileDeviceStore, fileRecordSink } from '../../sdk/node.ts';
import { jsonOutput } from '../helpers/bins.ts';
import { onboardConnector, type OnboardedConnector } from '../helpers/onboarded-connector.ts';

const HOSPITAL = 'st-resume';
const PATIENT = 'resume-patient-1';
const RECORD_BYTES = 3 * 1024 * 1024 + 999;

interface Download {
  readonly range: string | null;
  readonly status: number;
  readonly contentRange: string | null;
  received: number;
}

/** A fetch whose record downloads break off after the given byte counts, one per download. */
function breakingFetch(cuts: number[], downloads: Download[]): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    const url = String(input);
    if (!url.endsWith('/content') || !response.body) return response;
    const download: Download = {
      range: new Headers(init?.headers).get('range'),
      status: response.status,
      contentRange: response.headers.get('content-range'),
      received: 0,
    };
    downloads.push(download);
    const limit = cuts.shift() ?? Infinity;
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (download.received >= limit) {
          await reader.cancel();
          controller.error(new TypeError('terminated', { cause: new Error('other side closed') }));
          return;
        }
        const { done, value } = await reader.read();
        if (done) return controller.close();
        const piece = value.subarray(0, Math.min(value.length, limit - download.received));
        download.received += piece.length;
        controller.enqueue(piece);
      },
      cancel: () => reader.cancel(),
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
}

describe('a record download that breaks off', { timeout: 180_000 }, () => {
  let onboarded: OnboardedConnector;

  beforeAll(async () => {
    onboarded = await onboardConnector({ hospitalId: HOSPITAL });
  });

  afterAll(async () => {
    await onboarded?.close();
  });

  it('resumes from the next byte, twice, and stores the record exactly once, verified', async () => {
    const downloads: Download[] = [];
    const cuts = [1_500_000, 700_000];
    const clients = (options: ApiClientOptions) =>
      createApiClient({ ...options, fetch: breakingFetch(cuts, downloads) });
    const home = new DeviceHome(new FileDeviceStore(join(onboarded.dir, 'phone')), clients);
    const png = join(onboarded.dir, 'invite.png');
    jsonOutput(await onboarded.connector('invite', PATIENT, '--out', png, '--json'));
    await pairFromQr(home, await readQrPng(png), { platform: 'android', fcmToken: localPushToken() });
    const content = randomBytes(RECORD_BYTES);
    const file = join(onboarded.dir, 'scan.pdf');
    await writeFile(file, content);
    const sent = await onboarded.connector('send', file, '--patient', PATIENT, '--wait', '--quiet');
    expect(sent.code, sent.stderr).toBe(0);

    const progress: [number, number][] = [];
    const out = join(onboarded.dir, 'received');
    const results = await syncRecords(home, await home.open(), fileRecordSink(out), {
      onProgress: (_stage, done, total) => progress.push([done, total]),
    });
    expect(results).toEqual([{ recordId: expect.any(String), outcome: 'stored', file: 'scan.pdf' }]);
    expect(
      createHash('sha256')
        .update(await readFile(join(out, 'scan.pdf')))
        .digest('hex'),
    ).toBe(createHash('sha256').update(content).digest('hex'));
    // Three requests: the whole (cut), then the rest from where each cut left off.
    expect(downloads.map(({ range, status }) => [range, status])).toEqual([
      [null, 200],
      ['bytes=1500000-', 206],
      ['bytes=2200000-', 206],
    ]);
    const size = progress.at(-1)![1];
    expect(downloads[1]!.contentRange).toBe(`bytes 1500000-${size - 1}/${size}`);
    expect(downloads.reduce((sum, d) => sum + d.received, 0)).toBe(size); // no byte twice
    expect(progress.at(-1)).toEqual([size, size]);
  });

  it('gives up after three breaks in a row without a byte, and the record is tried again next sync', async () => {
    const downloads: Download[] = [];
    const cuts = [100_000, 0, 0];
    const clients = (options: ApiClientOptions) =>
      createApiClient({ ...options, fetch: breakingFetch(cuts, downloads) });
    const home = new DeviceHome(new FileDeviceStore(join(onboarded.dir, 'phone')), clients);
    const file = join(onboarded.dir, 'second.pdf');
    await writeFile(file, randomBytes(200_000));
    const sent = await onboarded.connector('send', file, '--patient', PATIENT, '--wait', '--quiet');
    expect(sent.code, sent.stderr).toBe(0);
    const failed = await syncRecords(home, await home.open(), fileRecordSink(join(onboarded.dir, 'again')));
    expect(failed).toEqual([
      { recordId: expect.any(String), outcome: 'failed', errorCode: 'UPLOAD_TRUNCATED' },
    ]);
    expect(downloads).toHaveLength(3);
    const retried = await syncRecords(home, await home.open(), fileRecordSink(join(onboarded.dir, 'again')));
    expect(retried).toEqual([{ recordId: failed[0]!.recordId, outcome: 'stored', file: 'second.pdf' }]);
  });
});
