// Conformance of the local Cloud Storage emulator (emulator/storage) with the GCS JSON API,
// driven through the official, unmodified @google-cloud/storage client, plus raw HTTP where
// a malformed request or an exact header is the point.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Storage, type Bucket, type GetFilesOptions, type GetFilesResponse } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectDataPath, startStorageEmulator, type StorageEmulator } from '../../emulator/storage/server.ts';
import { crc32c, crc32cBase64 } from '../../shared/core/checksums/crc32c.ts';
import { startEventReceiver, type EventReceiver } from './helpers/storage-receiver.ts';

const PROJECT = 'demo-clinic-bridge';
const BUCKET = 'cb-conformance';
const EVENTS_BUCKET = 'cb-conformance-events';
const MIB = 1024 * 1024;

interface ApiErrorLike {
  code?: number | string;
  errors?: { reason?: string }[];
  message?: string;
  /** Resumable-session creation fails with a GaxiosError that keeps the API's body here. */
  response?: { data?: { error?: { errors?: { reason?: string }[] } } };
}

let dataDir: string;
let emulator: StorageEmulator;
let storage: Storage;
let bucket: Bucket;
let receiver: EventReceiver;
const logLines: Record<string, unknown>[] = [];

async function start(): Promise<StorageEmulator> {
  return startStorageEmulator({
    port: 0,
    dataDir,
    projectId: PROJECT,
    maxObjectSizeBytes: 256 * MIB,
    subscriptions: [{ bucket: EVENTS_BUCKET, targetUrl: receiver.url }],
    eventRetry: { initialDelayMs: 20, maxDelayMs: 100, maxAttempts: 4 },
    log: (entry) => logLines.push(entry),
  });
}

function client(url: string): Storage {
  return new Storage({ apiEndpoint: url, projectId: PROJECT });
}

async function rejection(promise: Promise<unknown>): Promise<ApiErrorLike> {
  try {
    await promise;
  } catch (error) {
    return error as ApiErrorLike;
  }
  throw new Error('expected the call to fail');
}

async function expectApiError(promise: Promise<unknown>, code: number, reason?: string): Promise<void> {
  const error = await rejection(promise);
  expect(Number(error.code), error.message).toBe(code);
  if (reason) expect((error.errors ?? error.response?.data?.error?.errors)?.[0]?.reason).toBe(reason);
}

async function raw(
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> | undefined; text: string }> {
  const res = await fetch(`${emulator.url}${path}`, init);
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

function expectErrorJson(json: Record<string, unknown> | undefined, code: number, reason: string): void {
  expect(json).toMatchObject({ error: { code, errors: [{ domain: 'global', reason }] } });
  const error = (json as { error: { message: unknown; errors: { message: unknown }[] } }).error;
  expect(typeof error.message).toBe('string');
  expect(error.errors[0]!.message).toBe(error.message);
}

const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('base64');

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cb-storage-'));
  receiver = await startEventReceiver();
  emulator = await start();
  storage = client(emulator.url);
  [bucket] = await storage.createBucket(BUCKET);
  await storage.createBucket(EVENTS_BUCKET);
});

afterAll(async () => {
  await emulator?.close();
  await receiver?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('buckets', () => {
  it('inserts, gets, lists and deletes (empty only), with the API error shapes', async () => {
    const [created] = await storage.createBucket('cb-conformance-tmp', {
      location: 'EU',
      labels: { team: 'x' },
    });
    expect(created.metadata).toMatchObject({
      kind: 'storage#bucket',
      name: 'cb-conformance-tmp',
      location: 'EU',
    });
    const [metadata] = await storage.bucket('cb-conformance-tmp').getMetadata();
    expect(metadata).toMatchObject({
      name: 'cb-conformance-tmp',
      labels: { team: 'x' },
      metageneration: '1',
    });
    const [buckets] = await storage.getBuckets();
    expect(buckets.map((b) => b.name)).toEqual(expect.arrayContaining([BUCKET, 'cb-conformance-tmp']));
    expect((await storage.bucket('cb-conformance-tmp').exists())[0]).toBe(true);

    await expectApiError(storage.createBucket('cb-conformance-tmp'), 409, 'conflict');
    await storage.bucket('cb-conformance-tmp').file('keep').save('x', { resumable: false });
    await expectApiError(storage.bucket('cb-conformance-tmp').delete(), 409, 'conflict');
    await storage.bucket('cb-conformance-tmp').file('keep').delete();
    await storage.bucket('cb-conformance-tmp').delete();
    expect((await storage.bucket('cb-conformance-tmp').exists())[0]).toBe(false);
    await expectApiError(storage.bucket('cb-conformance-tmp').getMetadata(), 404, 'notFound');
    await expectApiError(storage.createBucket('Not_A_Valid_Bucket'), 400, 'invalid');
  });
});

describe('objects', () => {
  it('multipart upload returns the GCS object resource with matching hashes', async () => {
    const data = randomBytes(300_000);
    const file = bucket.file('multipart/one.bin');
    await file.save(data, {
      resumable: false,
      contentType: 'application/x-test',
      metadata: { metadata: { a: '1' } },
    });
    const [metadata] = await file.getMetadata();
    expect(metadata).toMatchObject({
      kind: 'storage#object',
      bucket: BUCKET,
      name: 'multipart/one.bin',
      size: String(data.length),
      contentType: 'application/x-test',
      md5Hash: md5(data),
      crc32c: crc32cBase64(crc32c(data)),
      metageneration: '1',
      storageClass: 'STANDARD',
      metadata: { a: '1' },
    });
    expect(metadata.generation).toMatch(/^\d+$/);
    expect(typeof metadata.etag).toBe('string');
    expect(Date.parse(String(metadata.timeCreated))).not.toBeNaN();
    expect(metadata.id).toBe(`${BUCKET}/multipart/one.bin/${metadata.generation}`);
    const [back] = await file.download();
    expect(back.equals(data)).toBe(true);
  });

  it('resumable upload in one request, and generations increase on overwrite', async () => {
    const file = bucket.file('resumable/single.bin');
    const first = randomBytes(700_000);
    await file.save(first, { resumable: true });
    const [m1] = await file.getMetadata();
    const second = randomBytes(1000);
    await file.save(second, { resumable: true, contentType: 'text/plain' });
    const [m2] = await file.getMetadata();
    expect(BigInt(String(m2.generation))).toBeGreaterThan(BigInt(String(m1.generation)));
    expect(m2).toMatchObject({ size: '1000', contentType: 'text/plain', md5Hash: md5(second) });
    expect((await file.download())[0].equals(second)).toBe(true);
  });

  it('resumable chunked upload of a few MiB with a small chunkSize', async () => {
    const data = randomBytes(3 * MIB + 12_345);
    const file = bucket.file('resumable/chunked.bin');
    await file.save(data, { resumable: true, chunkSize: 512 * 1024, validation: 'crc32c' });
    const [metadata] = await file.getMetadata();
    expect(metadata.size).toBe(String(data.length));
    expect(metadata.crc32c).toBe(crc32cBase64(crc32c(data)));
    const [back] = await file.download({ validation: 'crc32c' });
    expect(back.equals(data)).toBe(true);
  });

  it('resumable sessions answer 308 with Range, status queries and a final PUT (raw protocol)', async () => {
    const [uri] = await bucket
      .file('resumable/raw.bin')
      .createResumableUpload({ metadata: { contentType: 'x/y' } });
    const data = randomBytes(600 * 1024);
    const part1 = data.subarray(0, 256 * 1024);
    const put1 = await fetch(uri, {
      method: 'PUT',
      headers: { 'Content-Range': `bytes 0-${part1.length - 1}/*` },
      body: part1,
    });
    expect(put1.status).toBe(308);
    expect(put1.headers.get('range')).toBe(`bytes=0-${part1.length - 1}`);
    const status = await fetch(uri, { method: 'PUT', headers: { 'Content-Range': 'bytes */*' } });
    expect(status.status).toBe(308);
    expect(status.headers.get('range')).toBe(`bytes=0-${part1.length - 1}`);
    // Re-sending bytes the server has is harmless: they are skipped.
    const put2 = await fetch(uri, {
      method: 'PUT',
      headers: { 'Content-Range': `bytes 0-${data.length - 1}/${data.length}` },
      body: data,
    });
    expect(put2.status).toBe(200);
    const resource = (await put2.json()) as Record<string, unknown>;
    expect(resource).toMatchObject({
      name: 'resumable/raw.bin',
      size: String(data.length),
      contentType: 'x/y',
    });
    // The finished session keeps answering with the object.
    const again = await fetch(uri, { method: 'PUT', headers: { 'Content-Range': `bytes */${data.length}` } });
    expect(again.status).toBe(200);
    expect((await bucket.file('resumable/raw.bin').download())[0].equals(data)).toBe(true);
  });

  it('media upload (uploadType=media) over raw HTTP', async () => {
    const data = Buffer.from('media upload body');
    const { status, json } = await raw(
      `/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=media%2Fa.txt`,
      {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: data,
      },
    );
    expect(status).toBe(200);
    expect(json).toMatchObject({ name: 'media/a.txt', size: String(data.length), contentType: 'text/plain' });
  });

  it('downloads with Range (206) and sends x-goog-hash and x-goog-stored-content-encoding', async () => {
    const data = randomBytes(100_000);
    const file = bucket.file('range/data.bin');
    await file.save(data, { resumable: false });
    const [slice] = await file.download({ start: 1000, end: 1999 });
    expect(slice.equals(data.subarray(1000, 2000))).toBe(true);

    const path = `/storage/v1/b/${BUCKET}/o/${encodeURIComponent('range/data.bin')}?alt=media`;
    const full = await raw(path);
    expect(full.status).toBe(200);
    expect(full.headers.get('x-goog-hash')).toBe(`crc32c=${crc32cBase64(crc32c(data))},md5=${md5(data)}`);
    expect(full.headers.get('x-goog-stored-content-encoding')).toBe('identity');
    expect(full.headers.get('x-goog-generation')).toMatch(/^\d+$/);
    expect(full.headers.get('x-goog-metageneration')).toBe('1');

    const partial = await fetch(`${emulator.url}${path}`, { headers: { Range: 'bytes=-10' } });
    expect(partial.status).toBe(206);
    expect(partial.headers.get('content-range')).toBe(
      `bytes ${data.length - 10}-${data.length - 1}/${data.length}`,
    );
    expect(Buffer.from(await partial.arrayBuffer()).equals(data.subarray(-10))).toBe(true);
  });

  it('validation crc32c and md5 succeed on upload and download', async () => {
    const data = randomBytes(2 * MIB + 7);
    for (const validation of ['crc32c', 'md5'] as const) {
      const file = bucket.file(`validated/${validation}.bin`);
      await file.save(data, { resumable: false, validation });
      await file.save(data, { resumable: true, validation });
      const [back] = await file.download({ validation });
      expect(back.equals(data)).toBe(true);
    }
  });

  it("the client's download validation really checks: bytes corrupted on disk are detected", async () => {
    const data = randomBytes(64 * 1024);
    const file = bucket.file('validated/corrupt-me.bin');
    await file.save(data, { resumable: false });
    const [metadata] = await file.getMetadata();
    const handle = await open(objectDataPath(dataDir, BUCKET, file.name, Number(metadata.generation)), 'r+');
    await handle.write(Buffer.from([data[100]! ^ 0xff]), 0, 1, 100);
    await handle.close();

    for (const validation of ['crc32c', 'md5'] as const) {
      const error = await rejection(file.download({ validation }));
      expect(error.code).toBe('CONTENT_DOWNLOAD_MISMATCH');
    }
    const [unchecked] = await file.download({ validation: false });
    expect(unchecked.equals(data)).toBe(false);
    expect(unchecked.length).toBe(data.length);
  });

  it('refuses an upload whose declared crc32c or md5Hash does not match the bytes (400)', async () => {
    const data = Buffer.from('the real bytes');
    const file = bucket.file('validated/declared.bin');
    const wrongMd5 = md5(Buffer.from('other bytes'));
    await expectApiError(
      file.save(data, { resumable: false, metadata: { md5Hash: wrongMd5 } }),
      400,
      'invalid',
    );
    await expectApiError(
      file.save(data, { resumable: false, metadata: { crc32c: 'AAAAAA==' } }),
      400,
      'invalid',
    );
    expect((await file.exists())[0]).toBe(false);
    // The right values are accepted.
    await file.save(data, {
      resumable: false,
      metadata: { md5Hash: md5(data), crc32c: crc32cBase64(crc32c(data)) },
    });
    expect((await file.exists())[0]).toBe(true);
  });

  it('stores object names with "/" and any Unicode', async () => {
    const names = ['dir/sub dir/file #1?.txt', 'ünïcødé/日本語/🙂.bin', '100%/a+b=c&d', 'trailing/'];
    for (const name of names) await bucket.file(name).save(Buffer.from(name), { resumable: false });
    for (const name of names) expect((await bucket.file(name).download())[0].toString()).toBe(name);
    const [files] = await bucket.getFiles({ prefix: 'ünïcødé/' });
    expect(files.map((f) => f.name)).toEqual(['ünïcødé/日本語/🙂.bin']);
  });

  it('patches metadata: a null key is deleted, metageneration increments', async () => {
    const file = bucket.file('patch/me.txt');
    await file.save('x', { resumable: false, metadata: { metadata: { keep: '1', drop: '2' } } });
    const [patched] = await file.setMetadata({
      contentType: 'text/markdown',
      metadata: { drop: null, add: '3' },
    });
    expect(patched).toMatchObject({ contentType: 'text/markdown', metageneration: '2' });
    expect(patched.metadata).toEqual({ keep: '1', add: '3' });
    const [again] = await file.getMetadata();
    expect(again.metadata).toEqual({ keep: '1', add: '3' });
    expect(again.metageneration).toBe('2');
  });

  it('deletes objects; a missing object is 404 notFound', async () => {
    const file = bucket.file('delete/me.txt');
    await file.save('x', { resumable: false });
    await file.delete();
    await expectApiError(file.getMetadata(), 404, 'notFound');
    await expectApiError(file.download(), 404);
    await expectApiError(file.delete(), 404, 'notFound');
    await expectApiError(storage.bucket('cb-no-such-bucket').file('x').getMetadata(), 404, 'notFound');
  });
});

describe('preconditions', () => {
  it('ifGenerationMatch: 0 on an existing object is 412 conditionNotMet (multipart and resumable)', async () => {
    const file = bucket.file('pre/create-only.txt');
    await file.save('first', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    await expectApiError(
      file.save('second', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }),
      412,
      'conditionNotMet',
    );
    await expectApiError(
      file.save('second', { resumable: true, preconditionOpts: { ifGenerationMatch: 0 } }),
      412,
      'conditionNotMet',
    );
    expect((await file.download())[0].toString()).toBe('first');
  });

  it('checks generation and metageneration on write, patch, delete and read', async () => {
    const file = bucket.file('pre/versioned.txt');
    await file.save('v1', { resumable: false });
    const [m] = await file.getMetadata();
    const generation = Number(m.generation);
    await file.save('v2', { resumable: false, preconditionOpts: { ifGenerationMatch: generation } });
    const [m2] = await file.getMetadata();
    await expectApiError(
      file.save('v3', { resumable: false, preconditionOpts: { ifGenerationMatch: generation } }),
      412,
      'conditionNotMet',
    );
    await expectApiError(
      file.setMetadata({ contentType: 'a/b' }, { ifMetagenerationMatch: 7 }),
      412,
      'conditionNotMet',
    );
    await file.setMetadata({ contentType: 'a/b' }, { ifMetagenerationMatch: 1 });
    await expectApiError(file.setMetadata({ contentType: 'a/c' }, { ifMetagenerationNotMatch: 2 }), 412);
    await expectApiError(file.delete({ ifGenerationMatch: generation }), 412, 'conditionNotMet');
    await expectApiError(file.getMetadata({ ifGenerationMatch: generation }), 412, 'conditionNotMet');

    const path = `/b/${BUCKET}/o/${encodeURIComponent(file.name)}`;
    expect((await raw(`${path}?alt=media&ifGenerationNotMatch=${m2.generation}`)).status).toBe(304);
    expectErrorJson((await raw(`${path}?alt=media&ifMetagenerationMatch=9`)).json, 412, 'conditionNotMet');
    expect((await raw(`${path}?alt=media&ifGenerationMatch=${m2.generation}`)).text).toBe('v2');
    await file.delete({ ifGenerationMatch: Number(m2.generation) });
  });

  it('is atomic against concurrent create-only writers: exactly one wins', async () => {
    const file = bucket.file('pre/race.txt');
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) =>
        file.save(`writer ${i}`.repeat(5000), {
          resumable: i % 2 === 0,
          preconditionOpts: { ifGenerationMatch: 0 },
        }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect(Number((r.reason as ApiErrorLike).code)).toBe(412);
    }
  });
});

describe('listing', () => {
  it('lists with prefix, delimiter (prefixes[]) and pages', async () => {
    const names = ['list/a/1', 'list/a/2', 'list/a/deep/3', 'list/b/4', 'list/c', 'list/d', 'list/e'];
    for (const name of names) await bucket.file(name).save(name, { resumable: false });

    const [files, , response] = await bucket.getFiles({
      prefix: 'list/',
      delimiter: '/',
      autoPaginate: false,
    });
    expect(files.map((f) => f.name)).toEqual(['list/c', 'list/d', 'list/e']);
    expect((response as { prefixes?: string[] }).prefixes).toEqual(['list/a/', 'list/b/']);

    const [nested, , nestedResponse] = await bucket.getFiles({
      prefix: 'list/a/',
      delimiter: '/',
      autoPaginate: false,
    });
    expect(nested.map((f) => f.name)).toEqual(['list/a/1', 'list/a/2']);
    expect((nestedResponse as { prefixes?: string[] }).prefixes).toEqual(['list/a/deep/']);

    const seen: string[] = [];
    let query: GetFilesOptions | null = { prefix: 'list/', maxResults: 3, autoPaginate: false };
    let pages = 0;
    while (query) {
      const response: GetFilesResponse = await bucket.getFiles(query);
      seen.push(...response[0].map((f) => f.name));
      query = response[1] ?? null;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(names);
    const [all] = await bucket.getFiles({ prefix: 'list/' });
    expect(all.map((f) => f.name)).toEqual(names);
    await expectApiError(
      bucket.getFiles({ pageToken: '%%%not-a-token', autoPaginate: false }),
      400,
      'invalid',
    );
  });
});

describe('copy, rewrite, compose', () => {
  it('copies (rewriteTo through the client) keeping content and metadata, with preconditions', async () => {
    const data = randomBytes(200_000);
    const source = bucket.file('copy/source.bin');
    await source.save(data, {
      resumable: false,
      metadata: { contentType: 'x/source', metadata: { k: 'v' } },
    });
    const [copied] = await source.copy(bucket.file('copy/dest.bin'));
    const [metadata] = await copied.getMetadata();
    expect(metadata).toMatchObject({ contentType: 'x/source', metadata: { k: 'v' }, md5Hash: md5(data) });
    expect((await copied.download({ validation: 'md5' }))[0].equals(data)).toBe(true);
    await expectApiError(
      source.copy(bucket.file('copy/dest.bin'), { preconditionOpts: { ifGenerationMatch: 0 } }),
      412,
      'conditionNotMet',
    );
    await expectApiError(bucket.file('copy/missing').copy('copy/x'), 404, 'notFound');
  });

  it('rewrite in several calls with rewriteToken, copyTo, and ifSourceGenerationMatch (raw)', async () => {
    const data = randomBytes(2 * MIB + 5000);
    await bucket.file('copy/big.bin').save(data, { resumable: false });
    const base = `/storage/v1/b/${BUCKET}/o/${encodeURIComponent('copy/big.bin')}`;
    const target = `/b/${BUCKET}/o/${encodeURIComponent('copy/big-copy.bin')}`;
    let token: string | undefined;
    let calls = 0;
    let body: Record<string, unknown>;
    do {
      const query = `maxBytesRewrittenPerCall=${MIB}${token ? `&rewriteToken=${encodeURIComponent(token)}` : ''}`;
      const res = await raw(`${base}/rewriteTo${target}?${query}`, { method: 'POST' });
      expect(res.status).toBe(200);
      body = res.json!;
      token = body.rewriteToken as string | undefined;
      calls++;
    } while (!body.done);
    expect(calls).toBe(3);
    expect(body).toMatchObject({ kind: 'storage#rewriteResponse', totalBytesRewritten: String(data.length) });
    expect((await bucket.file('copy/big-copy.bin').download())[0].equals(data)).toBe(true);

    const copyTo = await raw(`${base}/copyTo/b/${BUCKET}/o/${encodeURIComponent('copy/copied-to.bin')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ contentType: 'x/override' }),
    });
    expect(copyTo.json).toMatchObject({
      name: 'copy/copied-to.bin',
      contentType: 'x/override',
      size: String(data.length),
    });
    const refused = await raw(`${base}/copyTo${target}?ifSourceGenerationMatch=1`, { method: 'POST' });
    expectErrorJson(refused.json, 412, 'conditionNotMet');
    const badToken = await raw(`${base}/rewriteTo${target}?rewriteToken=nope`, { method: 'POST' });
    expectErrorJson(badToken.json, 400, 'invalid');
  });

  it('composes objects into one without an MD5', async () => {
    const parts = ['one-', 'two-', 'three'];
    for (const [i, part] of parts.entries())
      await bucket.file(`compose/${i}`).save(part, { resumable: false });
    const [combined] = await bucket.combine(
      parts.map((_, i) => `compose/${i}`),
      'compose/all.txt',
    );
    const [metadata] = await combined.getMetadata();
    expect(metadata.componentCount).toBe(3);
    expect(metadata.md5Hash).toBeUndefined();
    expect((await combined.download())[0].toString()).toBe('one-two-three');
  });
});

describe('path forms and restart', () => {
  it('works through STORAGE_EMULATOR_HOST (JSON calls without /storage/v1)', async () => {
    const previous = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = emulator.url;
    try {
      const viaEnv = new Storage({ projectId: PROJECT });
      const file = viaEnv.bucket(BUCKET).file('paths/env.txt');
      await file.save('via env', { resumable: false });
      await file.save('via env, resumable', { resumable: true });
      expect((await file.download())[0].toString()).toBe('via env, resumable');
      const [files] = await viaEnv.bucket(BUCKET).getFiles({ prefix: 'paths/' });
      expect(files.map((f) => f.name)).toEqual(['paths/env.txt']);
      await file.setMetadata({ metadata: { via: 'env' } });
      await file.delete();
    } finally {
      if (previous === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = previous;
    }
    // Both raw forms reach the same object.
    await bucket.file('paths/both.txt').save('both', { resumable: false });
    const name = encodeURIComponent('paths/both.txt');
    expect((await raw(`/b/${BUCKET}/o/${name}?alt=media`)).text).toBe('both');
    expect((await raw(`/storage/v1/b/${BUCKET}/o/${name}?alt=media`)).text).toBe('both');
    expect((await raw(`/download/storage/v1/b/${BUCKET}/o/${name}?alt=media`)).text).toBe('both');
  });

  it('keeps buckets, objects and open resumable sessions across a restart on the same dataDir', async () => {
    const data = randomBytes(512 * 1024);
    await bucket.file('restart/kept.bin').save(data, { resumable: false });
    const [uri] = await bucket.file('restart/session.bin').createResumableUpload();
    const half = 256 * 1024;
    const first = await fetch(uri, {
      method: 'PUT',
      headers: { 'Content-Range': `bytes 0-${half - 1}/*` },
      body: data.subarray(0, half),
    });
    expect(first.status).toBe(308);

    await emulator.close();
    emulator = await start();
    storage = client(emulator.url);
    bucket = storage.bucket(BUCKET);

    expect((await bucket.file('restart/kept.bin').download({ validation: 'md5' }))[0].equals(data)).toBe(
      true,
    );
    const moved = new URL(uri);
    moved.port = String(emulator.port);
    const status = await fetch(moved, { method: 'PUT', headers: { 'Content-Range': 'bytes */*' } });
    expect(status.status).toBe(308);
    expect(status.headers.get('range')).toBe(`bytes=0-${half - 1}`);
    const rest = await fetch(moved, {
      method: 'PUT',
      headers: { 'Content-Range': `bytes ${half}-${data.length - 1}/${data.length}` },
      body: data.subarray(half),
    });
    expect(rest.status).toBe(200);
    expect(((await rest.json()) as { md5Hash: string }).md5Hash).toBe(md5(data));
    const [metadata] = await bucket.file('restart/session.bin').getMetadata();
    expect(metadata.crc32c).toBe(crc32cBase64(crc32c(data)));
  });
});

describe('CloudEvents', () => {
  it('POSTs a binary-mode finalized CloudEvent with the object as body', async () => {
    const data = Buffer.from('event payload');
    const file = storage.bucket(EVENTS_BUCKET).file('inbox/ü doc.bin');
    await file.save(data, { resumable: false, metadata: { metadata: { hospital: 'h1' } } });
    // Header values are percent-encoded outside printable ASCII (CloudEvents HTTP binding).
    const [event] = await receiver.waitFor('objects/inbox/%C3%BC%20doc.bin', 1);
    expect(event!.headers).toMatchObject({
      'ce-specversion': '1.0',
      'ce-type': 'google.cloud.storage.object.v1.finalized',
      'ce-source': `//storage.googleapis.com/projects/_/buckets/${EVENTS_BUCKET}`,
      'content-type': 'application/json',
    });
    expect(event!.headers['ce-id']).toEqual(expect.any(String));
    expect(Date.parse(String(event!.headers['ce-time']))).not.toBeNaN();
    const [metadata] = await file.getMetadata();
    expect(event!.body).toMatchObject({
      kind: 'storage#object',
      name: 'inbox/ü doc.bin',
      bucket: EVENTS_BUCKET,
      generation: metadata.generation,
      metageneration: '1',
      size: String(data.length),
      md5Hash: md5(data),
      crc32c: crc32cBase64(crc32c(data)),
      contentType: 'application/octet-stream',
      storageClass: 'STANDARD',
      metadata: { hospital: 'h1' },
    });
    expect(event!.body.timeCreated).toBe(metadata.timeCreated);
    await emulator.idle();
  });

  it('does not hold the upload response while a delivery is pending', async () => {
    const release = receiver.hold('objects/slow/one.bin');
    await storage.bucket(EVENTS_BUCKET).file('slow/one.bin').save('x', { resumable: false });
    expect(receiver.received.filter((e) => e.headers['ce-subject'] === 'objects/slow/one.bin')).toHaveLength(
      0,
    );
    release();
    await receiver.waitFor('objects/slow/one.bin', 1);
    await emulator.idle();
  });

  it('retries after the receiver answers 500, with the same ce-id', async () => {
    receiver.failNext('objects/retry/one.bin', 500, 2);
    await storage.bucket(EVENTS_BUCKET).file('retry/one.bin').save('x', { resumable: true });
    const events = await receiver.waitFor('objects/retry/one.bin', 3);
    expect(events.map((e) => e.status)).toEqual([500, 500, 204]);
    expect(new Set(events.map((e) => e.headers['ce-id'])).size).toBe(1);
    await emulator.idle();
    expect(logLines.some((l) => l.message === 'storage event delivery failed; will retry')).toBe(true);
  });

  it('dead-letters an event after maxAttempts and logs it', async () => {
    receiver.failNext('objects/retry/never.bin', 503, 100);
    await storage.bucket(EVENTS_BUCKET).file('retry/never.bin').save('x', { resumable: false });
    await receiver.waitFor('objects/retry/never.bin', 4);
    await emulator.idle();
    expect(
      receiver.received.filter((e) => e.headers['ce-subject'] === 'objects/retry/never.bin'),
    ).toHaveLength(4);
    expect(logLines).toContainEqual(
      expect.objectContaining({ severity: 'ERROR', message: 'storage event dead-lettered', attempts: 4 }),
    );
  });

  it('copies and composes finalize objects too, and so emit events', async () => {
    const events = storage.bucket(EVENTS_BUCKET);
    await events.file('derived/src').save('abc', { resumable: false });
    await events.file('derived/src').copy(events.file('derived/copy'));
    await events.combine(['derived/src', 'derived/copy'], 'derived/composed');
    const [copied] = await receiver.waitFor('objects/derived/copy', 1);
    const [composed] = await receiver.waitFor('objects/derived/composed', 1);
    expect(copied!.body).toMatchObject({ name: 'derived/copy', size: '3' });
    expect(composed!.body).toMatchObject({ name: 'derived/composed', size: '6', componentCount: 2 });
    await emulator.idle();
  });
  it('keeps undelivered events in an outbox and delivers them after a restart', async () => {
    const outboxDir = await mkdtemp(join(tmpdir(), 'cb-storage-outbox-'));
    const options = {
      port: 0,
      dataDir: outboxDir,
      projectId: PROJECT,
      subscriptions: [{ bucket: 'cb-outbox', targetUrl: receiver.url }],
      eventRetry: { initialDelayMs: 60_000, maxDelayMs: 60_000, maxAttempts: 5 },
    };
    let first: StorageEmulator | undefined = await startStorageEmulator(options);
    try {
      await client(first.url).createBucket('cb-outbox');
      receiver.failNext('objects/outbox/pending.bin', 500, 1);
      await client(first.url).bucket('cb-outbox').file('outbox/pending.bin').save('x', { resumable: false });
      const [failed] = await receiver.waitFor('objects/outbox/pending.bin', 1);
      expect(failed!.status).toBe(500);
      // The retry is a minute away: stop now, with the event still owed.
      await first.close();
      first = await startStorageEmulator(options);
      const events = await receiver.waitFor('objects/outbox/pending.bin', 2);
      expect(events[1]!.status).toBe(204);
      expect(events[1]!.headers['ce-id']).toBe(failed!.headers['ce-id']);
      await first.idle();
    } finally {
      await first?.close();
      await rm(outboxDir, { recursive: true, force: true });
    }
  });
});

describe('gzip content encoding', () => {
  it('stores gzip as uploaded, serves it as stored to gzip clients and transcodes for others', async () => {
    const text = 'compress me '.repeat(2000);
    const file = bucket.file('gzip/text.txt');
    await file.save(text, { resumable: false, gzip: true, contentType: 'text/plain' });
    const [metadata] = await file.getMetadata();
    expect(metadata.contentEncoding).toBe('gzip');
    expect(Number(metadata.size)).toBeLessThan(text.length);
    expect((await file.download({ validation: 'crc32c' }))[0].toString()).toBe(text);
    const path = `/b/${BUCKET}/o/${encodeURIComponent(file.name)}?alt=media`;
    const plain = await fetch(`${emulator.url}${path}`, { headers: { 'Accept-Encoding': 'identity' } });
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(plain.headers.get('x-goog-stored-content-encoding')).toBe('gzip');
    expect(await plain.text()).toBe(text);
  });
});

describe('disconnects', () => {
  it('survives clients that vanish mid-upload and mid-download, leaving no temporary files', async () => {
    const big = randomBytes(4 * MIB);
    await bucket.file('disconnect/big.bin').save(big, { resumable: false });
    const { port } = new URL(emulator.url);
    const cut = (path: string, headers: Record<string, string>, chunk: Buffer) =>
      new Promise<void>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers });
        req.on('error', () => resolve());
        req.write(chunk, () => setTimeout(() => (req.destroy(), resolve()), 50));
      });
    await cut(
      `/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=disconnect%2Fmedia`,
      { 'content-length': String(MIB) },
      big.subarray(0, 1000),
    );
    await cut(
      `/upload/storage/v1/b/${BUCKET}/o?uploadType=multipart&name=disconnect%2Fmultipart`,
      { 'content-type': 'multipart/related; boundary=b1', 'transfer-encoding': 'chunked' },
      Buffer.concat([
        Buffer.from('--b1\r\nContent-Type: application/json\r\n\r\n{}\r\n--b1\r\n\r\n'),
        big.subarray(0, 5000),
      ]),
    );
    const [uri] = await bucket.file('disconnect/resumable').createResumableUpload();
    const session = new URL(uri);
    await new Promise<void>((resolve) => {
      const req = request(session, {
        method: 'PUT',
        headers: { 'content-range': `bytes 0-${MIB - 1}/${MIB}` },
      });
      req.on('error', () => resolve());
      req.write(big.subarray(0, 300_000), () => setTimeout(() => (req.destroy(), resolve()), 50));
    });
    const download = new AbortController();
    const res = await fetch(
      `${emulator.url}/b/${BUCKET}/o/${encodeURIComponent('disconnect/big.bin')}?alt=media`,
      {
        signal: download.signal,
      },
    );
    const reader = res.body!.getReader();
    await reader.read();
    download.abort();
    await reader.read().catch(() => undefined);

    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await readdir(join(dataDir, 'tmp'))).toEqual([]);
    for (const name of ['disconnect/media', 'disconnect/multipart', 'disconnect/resumable']) {
      expect((await bucket.file(name).exists())[0]).toBe(false);
    }
    // The resumable session kept what arrived and can be resumed.
    const status = await fetch(uri, { method: 'PUT', headers: { 'Content-Range': 'bytes */*' } });
    expect(status.status).toBe(308);
    expect((await bucket.file('disconnect/big.bin').download())[0].equals(big)).toBe(true);
  });
});

describe('malformed requests', () => {
  it('answers with error JSON and the server stays up', async () => {
    const cases: [string, RequestInit, number, string][] = [
      [
        '/storage/v1/b?project=p',
        { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json' } },
        400,
        'parseError',
      ],
      [
        '/storage/v1/b?project=p',
        { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } },
        400,
        'required',
      ],
      ['/storage/v1/b/cb-unknown-bucket/o', {}, 404, 'notFound'],
      [
        `/storage/v1/b/${BUCKET}/o/${encodeURIComponent('range/data.bin')}?alt=media`,
        { headers: { Range: 'bytes=999999999-' } },
        416,
        'requestedRangeNotSatisfiable',
      ],
      [
        `/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&upload_id=bogus-upload-id-0000`,
        { method: 'PUT', body: 'x' },
        404,
        'notFound',
      ],
      [`/upload/storage/v1/b/${BUCKET}/o?uploadType=media`, { method: 'POST', body: 'x' }, 400, 'required'],
      [
        `/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=x&ifGenerationMatch=abc`,
        { method: 'POST', body: 'x' },
        400,
        'invalid',
      ],
      [
        `/upload/storage/v1/b/${BUCKET}/o?uploadType=bogus&name=x`,
        { method: 'POST', body: 'x' },
        400,
        'invalid',
      ],
      [
        `/upload/storage/v1/b/${BUCKET}/o?uploadType=multipart&name=x`,
        { method: 'POST', body: 'x', headers: { 'content-type': 'multipart/related; boundary=zz' } },
        400,
        'invalid',
      ],
      [
        `/upload/storage/v1/b/${BUCKET}/o?uploadType=multipart`,
        { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } },
        400,
        'invalid',
      ],
      [`/storage/v1/b/${BUCKET}/o/x?alt=nonsense`, {}, 400, 'invalid'],
      [`/storage/v1/b/${BUCKET}/o/%E0%A4%A`, {}, 400, 'invalid'],
      [
        `/storage/v1/b/${BUCKET}/o/patch%2Fme.txt`,
        { method: 'PATCH', body: '{"metadata": 5}', headers: { 'content-type': 'application/json' } },
        400,
        'invalid',
      ],
      ['/nowhere', {}, 404, 'notFound'],
    ];
    for (const [path, init, code, reason] of cases) {
      const { status, json } = await raw(path, init);
      expect(status, path).toBe(code);
      expectErrorJson(json, code, reason);
    }
    const [uri] = await bucket.file('malformed/session').createResumableUpload();
    const badRange = await fetch(uri, {
      method: 'PUT',
      headers: { 'Content-Range': 'bytes 9-1/5' },
      body: 'x',
    });
    expect(badRange.status).toBe(400);
    const ahead = await fetch(uri, {
      method: 'PUT',
      headers: { 'Content-Range': 'bytes 10-11/*' },
      body: 'xx',
    });
    expect(ahead.status).toBe(400);
    expect((await raw(`/storage/v1/b/${BUCKET}`)).status).toBe(200);
  });

  it('refuses an upload over maxObjectSizeBytes with 413 uploadTooLarge', async () => {
    const smallDir = await mkdtemp(join(tmpdir(), 'cb-storage-small-'));
    const small = await startStorageEmulator({
      port: 0,
      dataDir: smallDir,
      projectId: PROJECT,
      maxObjectSizeBytes: MIB,
    });
    try {
      const smallBucket = (await client(small.url).createBucket('cb-small'))[0];
      const data = randomBytes(2 * MIB);
      await expectApiError(smallBucket.file('big').save(data, { resumable: false }), 413, 'uploadTooLarge');
      await expectApiError(smallBucket.file('big').save(data, { resumable: true }), 413, 'uploadTooLarge');
      await expectApiError(
        smallBucket.file('big').save(data, { resumable: true, chunkSize: 256 * 1024 }),
        413,
        'uploadTooLarge',
      );
      await expectApiError(smallBucket.file('big').getMetadata(), 404);
      await smallBucket.file('fits').save(randomBytes(MIB), { resumable: false });
      expect((await smallBucket.file('fits').exists())[0]).toBe(true);
    } finally {
      await small.close();
      await rm(smallDir, { recursive: true, force: true });
    }
  });
});

describe('streaming', () => {
  async function writeSource(path: string, mib: number): Promise<string> {
    const handle = await open(path, 'w');
    const block = randomBytes(MIB);
    const hash = createHash('md5');
    for (let i = 0; i < mib; i++) {
      block[0] = i;
      await handle.write(block);
      hash.update(block);
    }
    await handle.close();
    return hash.digest('base64');
  }

  async function roundTrip(path: string, name: string): Promise<string> {
    await bucket.upload(path, { destination: name, resumable: true, validation: 'crc32c' });
    const downloaded = createHash('md5');
    await pipeline(
      bucket.file(name).createReadStream({ validation: 'crc32c' }),
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          downloaded.update(chunk);
          done();
        },
      }),
    );
    return downloaded.digest('base64');
  }

  it('streams a 64 MiB object to and from disk without holding it in memory', async () => {
    // A warm-up round trip lets buffer pools and the GC reach their steady state, so what
    // is measured next is what grows with the object's size.
    const warmUp = join(dataDir, 'warm-up.bin');
    await writeSource(warmUp, 8);
    await roundTrip(warmUp, 'stream/warm-up.bin');
    await rm(warmUp);

    const size = 64 * MIB;
    const source = join(dataDir, 'big-source.bin');
    const expectedMd5 = await writeSource(source, size / MIB);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      expect(await roundTrip(source, 'stream/big.bin')).toBe(expectedMd5);
    } finally {
      clearInterval(sampler);
      await rm(source);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    const [metadata] = await bucket.file('stream/big.bin').getMetadata();
    expect(metadata).toMatchObject({ size: String(size), md5Hash: expectedMd5 });
    const growth = peak - before;
    expect(growth, `RSS grew by ${(growth / MIB).toFixed(1)} MiB`).toBeLessThan(48 * MIB);
  });
});
