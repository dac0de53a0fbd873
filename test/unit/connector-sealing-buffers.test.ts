// The connector seals from reused read buffers and frees what it has written
// (clients/connector/sealing-buffers.ts): a buffer reused too early would seal other bytes than
// the file's, so every case here opens what was written and compares it with the file.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CHUNK_OVERHEAD,
  decryptRecordStream,
  encryptRecordPieces,
  generateContentKey,
} from '../../shared/core/crypto/index.ts';
import { ChunkSectionWriter } from '../../shared/core/protocol/index.ts';
import { createChunkFile } from '../../clients/connector/pending-uploads.ts';
import {
  recycledReads,
  releasingSpool,
  SealedPayloadMeter,
} from '../../clients/connector/sealing-buffers.ts';

const KiB = 1024;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-sealing-buffers-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The chunks of a written chunk section, by their 4-byte big-endian frame lengths. */
function* frames(section: Uint8Array): Generator<Uint8Array> {
  let offset = 0;
  while (offset < section.length) {
    const length = new DataView(section.buffer, section.byteOffset + offset, 4).getUint32(0, false);
    yield section.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
  }
}

async function sealFile(options: {
  readonly size: number;
  readonly chunkSize: number;
  readonly head: Uint8Array;
  readonly firstBytes: number;
  readonly pieceBytes: number;
}): Promise<{ readonly file: Buffer; readonly opened: Buffer; readonly buffers: number }> {
  const file = randomBytes(options.size);
  const path = join(dir, 'file.bin');
  await writeFile(path, file);
  const chunks = await createChunkFile(dir);
  const meter = new SealedPayloadMeter();
  const spool = releasingSpool(chunks, meter);
  const key = generateContentKey();
  const section = new ChunkSectionWriter();
  const seen = new Set<ArrayBufferLike>();
  async function* payload(): AsyncGenerator<Uint8Array> {
    yield options.head; // stands for the record payload's own header, as in sealUpload
    const pieces = recycledReads(path, {
      firstBytes: options.firstBytes,
      pieceBytes: options.pieceBytes,
      sealedThrough: () => meter.sealed - options.head.length,
    });
    for await (const piece of pieces) {
      seen.add(piece.buffer);
      yield piece;
    }
  }
  const sealed = encryptRecordPieces(payload(), { key, recordId: 'r', chunkSize: options.chunkSize });
  for await (const chunk of sealed) for (const piece of section.frame(chunk)) await spool.write(piece);
  await spool.flush();
  await chunks.finish();
  const written = await readFile(join(dir, 'chunks.bin'));
  const opened: Buffer[] = [];
  for await (const piece of decryptRecordStream(frames(written), { key, recordId: 'r' })) {
    opened.push(Buffer.from(piece));
  }
  const whole = Buffer.concat(opened);
  return { file, opened: whole.subarray(options.head.length), buffers: seen.size };
}

describe('sealing from reused buffers', () => {
  it('seals exactly the file when the reads are cut at chunk boundaries, with a few buffers', async () => {
    const chunkSize = 64 * KiB;
    const head = randomBytes(100);
    const { file, opened, buffers } = await sealFile({
      size: 20 * chunkSize + 123,
      chunkSize,
      head,
      firstBytes: chunkSize - head.length,
      pieceBytes: chunkSize,
    });
    expect(opened.equals(file)).toBe(true);
    expect(buffers).toBeLessThanOrEqual(4);
  });

  it('seals exactly the file when reads and chunks do not line up (more buffers, never a reused one too early)', async () => {
    const { file, opened } = await sealFile({
      size: 300 * KiB + 7,
      chunkSize: 64 * KiB,
      head: randomBytes(33),
      firstBytes: 10 * KiB,
      pieceBytes: 24 * KiB,
    });
    expect(opened.equals(file)).toBe(true);
  });

  it('seals an empty file', async () => {
    const { file, opened } = await sealFile({
      size: 0,
      chunkSize: 64 * KiB,
      head: randomBytes(20),
      firstBytes: 64 * KiB - 20,
      pieceBytes: 64 * KiB,
    });
    expect(opened.equals(file)).toBe(true);
  });
});

describe('the payload meter', () => {
  it('counts the data of complete frames, however the writes split them', () => {
    const meter = new SealedPayloadMeter();
    const frame = (data: number) => {
      const bytes = new Uint8Array(4 + data + CHUNK_OVERHEAD);
      new DataView(bytes.buffer).setUint32(0, data + CHUNK_OVERHEAD, false);
      return bytes;
    };
    const stream = Buffer.concat([frame(10), frame(0), frame(1000)]);
    for (const cut of [1, 3, 5, 60, 1100]) {
      const m = new SealedPayloadMeter();
      for (let at = 0; at < stream.length; at += cut) m.observe(stream.subarray(at, at + cut));
      expect(m.sealed).toBe(1010);
    }
    meter.observe(frame(10).subarray(0, 20));
    expect(meter.sealed).toBe(0); // a frame counts only once all of it is written
  });
});

describe('the releasing spool', () => {
  it('frees a large piece it was given whole once written, and nothing it was given part of', async () => {
    const chunks = await createChunkFile(dir);
    const spool = releasingSpool(chunks, new SealedPayloadMeter());
    const whole = new Uint8Array(128 * KiB);
    const shared = new Uint8Array(256 * KiB);
    const part = shared.subarray(0, 128 * KiB);
    const small = new Uint8Array(4);
    await spool.write(small);
    await spool.write(part);
    await spool.write(whole);
    await spool.flush();
    await chunks.finish();
    expect(whole.buffer.detached).toBe(true);
    expect(shared.buffer.detached).toBe(false);
    expect(small.buffer.detached).toBe(false);
    expect((await readFile(join(dir, 'chunks.bin'))).length).toBe(4 + 256 * KiB);
  });
});
