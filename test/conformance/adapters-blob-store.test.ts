// The BlobStore adapter (shared/adapters/blob-store.ts) against the local Storage emulator,
// through the official @google-cloud/storage client: create-only streaming that finalizes
// only after beforeCommit, generation-pinned reads, idempotent deletes, typed errors.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStorageEmulator, type StorageEmulator } from '../../emulator/storage/server.ts';
import { createBlobStore } from '../../shared/adapters/blob-store.ts';
import { createStorage } from '../../shared/adapters/google-clients.ts';
import { crc32c, crc32cBase64 } from '../../shared/core/checksums/crc32c.ts';
import {
  BlobStoreError,
  isBlobStoreError,
  MAX_SMALL_BLOB_BYTES,
  type BlobStore,
  type BlobStoreErrorCode,
} from '../../shared/ports/blob-store.ts';

const PROJECT = 'cb-adapters-blob';
const BUCKET = 'cb-adapters-blob-records';
const KIB = 1024;
const MIB = 1024 * KIB;

let dataDir: string;
let emulator: StorageEmulator;
/** Small chunks, so a few MiB already span several resumable requests. */
let store: BlobStore;
/** The production chunk size (8 MiB). */
let defaultStore: BlobStore;

async function* chunksOf(data: Uint8Array, size = 100 * KIB): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < data.length; offset += size) {
    yield data.subarray(offset, Math.min(offset + size, data.length));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function readAll(iterable: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of iterable) parts.push(chunk);
  return Buffer.concat(parts);
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

async function expectCode(promise: Promise<unknown>, code: BlobStoreErrorCode): Promise<BlobStoreError> {
  const error = await failure(promise);
  expect(error).toBeInstanceOf(BlobStoreError);
  expect((error as BlobStoreError).code, (error as Error).message).toBe(code);
  return error as BlobStoreError;
}

class DigestMismatch extends Error {
  readonly code = 'DIGEST_MISMATCH';
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cb-adapters-blob-'));
  emulator = await startStorageEmulator({ port: 0, dataDir, projectId: PROJECT });
  const storage = createStorage(PROJECT, { STORAGE_EMULATOR_HOST: emulator.url });
  await storage.createBucket(BUCKET);
  store = createBlobStore(storage, { uploadChunkBytes: 256 * KIB });
  defaultStore = createBlobStore(storage);
});

afterAll(async () => {
  await emulator?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('BlobStore over Cloud Storage: createOnly', () => {
  it('streams a multi-chunk object, runs beforeCommit after the last byte, and reports what stat reports', async () => {
    const data = randomBytes(1536 * KIB + 123);
    let consumed = 0;
    let consumedAtCommit = -1;
    async function* counted() {
      for await (const chunk of chunksOf(data)) {
        consumed += chunk.length;
        yield chunk;
      }
    }
    const info = await store.createOnly(BUCKET, 'create/ok.bin', counted(), {
      contentType: 'application/vnd.clinic-bridge.record',
      metadata: { uploadId: 'u1' },
      beforeCommit: () => {
        consumedAtCommit = consumed;
      },
    });
    expect(consumedAtCommit).toBe(data.length);
    expect(info).toMatchObject({
      bucket: BUCKET,
      name: 'create/ok.bin',
      size: data.length,
      crc32c: crc32cBase64(crc32c(data)),
      contentType: 'application/vnd.clinic-bridge.record',
      metadata: { uploadId: 'u1' },
    });
    expect(info.generation).toMatch(/^[1-9]\d*$/);
    expect(await store.stat(BUCKET, 'create/ok.bin')).toEqual(info);
    expect((await readAll(store.read(BUCKET, 'create/ok.bin'))).equals(data)).toBe(true);
  });

  it('a failing beforeCommit (digest mismatch) rethrows that error and leaves no object', async () => {
    const data = randomBytes(1280 * KIB);
    const mismatch = new DigestMismatch('digest does not match the manifest');
    const error = await failure(
      store.createOnly(BUCKET, 'create/mismatch.bin', chunksOf(data), {
        beforeCommit: async () => {
          await new Promise((resolve) => setTimeout(resolve, 20)); // let chunk requests land first
          throw mismatch;
        },
      }),
    );
    expect(error).toBe(mismatch);
    expect(await store.stat(BUCKET, 'create/mismatch.bin')).toBeUndefined();
    expect((await store.list(BUCKET, 'create/mismatch')).items).toEqual([]);
    // Nothing holds the name: a correct upload can still take it.
    const info = await store.createOnly(BUCKET, 'create/mismatch.bin', chunksOf(data));
    expect(info.size).toBe(data.length);
  });

  it('a source that fails part-way leaves no object, and its error comes back unchanged', async () => {
    const broken = new Error('the connector went away');
    async function* source() {
      yield randomBytes(600 * KIB);
      yield randomBytes(600 * KIB);
      throw broken;
    }
    expect(await failure(store.createOnly(BUCKET, 'create/broken.bin', source()))).toBe(broken);
    expect(await store.stat(BUCKET, 'create/broken.bin')).toBeUndefined();
  });

  it('refuses a source over maxBytes with TOO_LARGE and leaves no object', async () => {
    await expectCode(
      store.createOnly(BUCKET, 'create/too-large.bin', chunksOf(randomBytes(700 * KIB)), {
        maxBytes: 512 * KIB,
      }),
      'TOO_LARGE',
    );
    expect(await store.stat(BUCKET, 'create/too-large.bin')).toBeUndefined();
  });

  it('a second createOnly of the same name fails with ALREADY_EXISTS and changes nothing', async () => {
    const first = randomBytes(300 * KIB);
    const original = await store.createOnly(BUCKET, 'create/once.bin', chunksOf(first));
    let committed = false;
    const error = await expectCode(
      store.createOnly(BUCKET, 'create/once.bin', chunksOf(randomBytes(300 * KIB)), {
        beforeCommit: () => {
          committed = true;
        },
      }),
      'ALREADY_EXISTS',
    );
    expect(error.status).toBe(412);
    expect(isBlobStoreError(error, 'ALREADY_EXISTS')).toBe(true);
    expect(committed).toBe(false);
    expect(await store.stat(BUCKET, 'create/once.bin')).toEqual(original);
    expect((await readAll(store.read(BUCKET, 'create/once.bin'))).equals(first)).toBe(true);
  });

  it('concurrent createOnly of one name: exactly one wins', async () => {
    const candidates = Array.from({ length: 4 }, () => randomBytes(400 * KIB));
    const results = await Promise.allSettled(
      candidates.map((data) => store.createOnly(BUCKET, 'create/race.bin', chunksOf(data))),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    for (const r of lost) expect((r.reason as BlobStoreError).code).toBe('ALREADY_EXISTS');
    const winner = candidates[results.findIndex((r) => r.status === 'fulfilled')]!;
    expect((await readAll(store.read(BUCKET, 'create/race.bin'))).equals(winner)).toBe(true);
  });

  it('creates an empty object from an empty source', async () => {
    const info = await store.createOnly(BUCKET, 'create/empty.bin', chunksOf(new Uint8Array(0)));
    expect(info.size).toBe(0);
    expect((await readAll(store.read(BUCKET, 'create/empty.bin'))).length).toBe(0);
  });

  it('streams 64 MiB through createOnly and read without holding it in memory', async () => {
    const size = 64 * MIB;
    async function* generated(total: number): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < total / MIB; i++) {
        const chunk = Buffer.alloc(MIB, i & 0xff);
        chunk.writeUInt32BE(i, 0);
        yield chunk;
      }
    }
    const digestOf = async (source: AsyncIterable<Uint8Array>) => {
      const hash = createHash('sha256');
      for await (const chunk of source) hash.update(chunk);
      return hash.digest('hex');
    };
    const expected = await digestOf(generated(size));
    // A warm-up round trip lets buffer pools and the GC settle.
    await defaultStore.createOnly(BUCKET, 'big/warm-up.bin', generated(16 * MIB));
    await digestOf(defaultStore.read(BUCKET, 'big/warm-up.bin'));

    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    let readBack: string;
    try {
      const hash = createHash('sha256');
      async function* hashing() {
        for await (const chunk of generated(size)) {
          hash.update(chunk);
          yield chunk;
        }
      }
      const info = await defaultStore.createOnly(BUCKET, 'big/64.bin', hashing(), {
        beforeCommit: () => {
          if (hash.digest('hex') !== expected) throw new DigestMismatch('digest');
        },
      });
      expect(info.size).toBe(size);
      readBack = await digestOf(defaultStore.read(BUCKET, 'big/64.bin'));
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(readBack).toBe(expected);
    const growth = peak - before;
    expect(growth, `RSS grew by ${(growth / MIB).toFixed(1)} MiB`).toBeLessThan(48 * MIB);
  });
});

describe('BlobStore over Cloud Storage: read, stat, list, delete, writeSmall', () => {
  it('reads inclusive byte ranges', async () => {
    const data = randomBytes(64 * KIB);
    await store.writeSmall(BUCKET, 'read/range.bin', data);
    expect(
      (await readAll(store.read(BUCKET, 'read/range.bin', { start: 10, end: 19 }))).equals(
        data.subarray(10, 20),
      ),
    ).toBe(true);
    expect(
      (await readAll(store.read(BUCKET, 'read/range.bin', { start: 60 * KIB }))).equals(
        data.subarray(60 * KIB),
      ),
    ).toBe(true);
    await expectCode(readAll(store.read(BUCKET, 'read/range.bin', { start: 5, end: 4 })), 'INVALID_ARGUMENT');
  });

  it('pins a generation: an overwritten generation reads as NOT_FOUND, never as the new bytes', async () => {
    const old = await store.writeSmall(BUCKET, 'read/pinned.bin', Buffer.from('first version'));
    const current = await store.writeSmall(BUCKET, 'read/pinned.bin', Buffer.from('second version'));
    expect(current.generation).not.toBe(old.generation);
    await expectCode(
      readAll(store.read(BUCKET, 'read/pinned.bin', { generation: old.generation })),
      'NOT_FOUND',
    );
    expect(
      (await readAll(store.read(BUCKET, 'read/pinned.bin', { generation: current.generation }))).toString(),
    ).toBe('second version');
  });

  it('a read started before an overwrite yields one version only', async () => {
    const first = Buffer.alloc(4 * MIB, 0x11);
    await store.writeSmall(BUCKET, 'read/overwrite.bin', first);
    const iterator = store.read(BUCKET, 'read/overwrite.bin')[Symbol.asyncIterator]();
    const head = await iterator.next();
    await store.writeSmall(BUCKET, 'read/overwrite.bin', Buffer.alloc(4 * MIB, 0x22));
    const parts = [head.value as Uint8Array];
    try {
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) parts.push(next.value);
      expect(Buffer.concat(parts).equals(first)).toBe(true);
    } catch (error) {
      expect(error).toBeInstanceOf(BlobStoreError); // failing is fine; mixing is not
    }
  });

  it('stat and read of a missing object: undefined and NOT_FOUND', async () => {
    expect(await store.stat(BUCKET, 'missing/nothing.bin')).toBeUndefined();
    await expectCode(readAll(store.read(BUCKET, 'missing/nothing.bin')), 'NOT_FOUND');
    await expectCode(store.list('cb-adapters-no-such-bucket', ''), 'NOT_FOUND');
  });

  it('lists by prefix in pages', async () => {
    for (const n of [1, 2, 3, 4, 5]) await store.writeSmall(BUCKET, `list/a/${n}`, Buffer.from(String(n)));
    await store.writeSmall(BUCKET, 'list/b/1', Buffer.from('b'));
    const names: string[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const page = await store.list(BUCKET, 'list/a/', {
        maxResults: 2,
        ...(pageToken ? { pageToken } : {}),
      });
      names.push(...page.items.map((item) => item.name));
      expect(page.items.length).toBeLessThanOrEqual(2);
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    expect(names).toEqual(['list/a/1', 'list/a/2', 'list/a/3', 'list/a/4', 'list/a/5']);
    expect(pages).toBe(3);
    const [item] = (await store.list(BUCKET, 'list/b/')).items;
    expect(item).toMatchObject({ name: 'list/b/1', size: 1, crc32c: crc32cBase64(crc32c(Buffer.from('b'))) });
  });

  it('deletes idempotently, and honours ifGenerationMatch', async () => {
    const info = await store.writeSmall(BUCKET, 'delete/me.bin', Buffer.from('x'));
    await expectCode(
      store.delete(BUCKET, 'delete/me.bin', { ifGenerationMatch: String(BigInt(info.generation) + 1n) }),
      'PRECONDITION_FAILED',
    );
    expect(await store.stat(BUCKET, 'delete/me.bin')).toBeDefined();
    expect(await store.delete(BUCKET, 'delete/me.bin', { ifGenerationMatch: info.generation })).toBe(true);
    expect(await store.delete(BUCKET, 'delete/me.bin')).toBe(false);
    expect(await store.delete(BUCKET, 'delete/me.bin', { ifGenerationMatch: info.generation })).toBe(false);
    expect(await store.stat(BUCKET, 'delete/me.bin')).toBeUndefined();
  });

  it('writeSmall createOnly: identical bytes count as done, different bytes are ALREADY_EXISTS', async () => {
    const receipt = Buffer.from('{"receipt":1}');
    const first = await store.writeSmall(BUCKET, 'outbox/r1.json', receipt, {
      createOnly: true,
      contentType: 'application/json',
    });
    expect(first).toMatchObject({ size: receipt.length, contentType: 'application/json' });
    const again = await store.writeSmall(BUCKET, 'outbox/r1.json', receipt, { createOnly: true });
    expect(again.generation).toBe(first.generation);
    await expectCode(
      store.writeSmall(BUCKET, 'outbox/r1.json', Buffer.from('{"receipt":2}'), { createOnly: true }),
      'ALREADY_EXISTS',
    );
    expect((await readAll(store.read(BUCKET, 'outbox/r1.json'))).equals(receipt)).toBe(true);
    await expectCode(
      store.writeSmall(BUCKET, 'outbox/huge.bin', new Uint8Array(MAX_SMALL_BLOB_BYTES + 1)),
      'TOO_LARGE',
    );
  });
});
