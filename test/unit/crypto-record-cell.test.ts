import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CryptoErrorCode, RecordCellOpenOptions } from '../../shared/core/crypto/index.ts';
import {
  CHUNK_OVERHEAD,
  CryptoError,
  DEFAULT_CHUNK_SIZE,
  decryptRecord,
  decryptRecordStream,
  encryptedChunkLength,
  encryptedRecordLength,
  encryptRecord,
  encryptRecordStream,
  generateContentKey,
  MAX_CHUNK_SIZE,
  recordChunkContext,
  recordChunkCount,
  SEAL_OVERHEAD,
} from '../../shared/core/crypto/index.ts';
import { contentKeyBytes } from '../../shared/core/crypto/keys.ts';
import { themis } from '../../shared/core/crypto/themis.ts';
import { codeOf } from '../helpers/crypto-errors.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

function errorOf(run: () => unknown): CryptoError {
  try {
    run();
  } catch (error) {
    if (error instanceof CryptoError) return error;
    throw error;
  }
  throw new Error('expected a CryptoError');
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const piece of source) out.push(piece);
  return out;
}

async function streamCode(
  chunks: Uint8Array[],
  options: RecordCellOpenOptions,
): Promise<CryptoErrorCode | string> {
  try {
    await collect(decryptRecordStream(chunks, options));
  } catch (error) {
    return error instanceof CryptoError ? error.code : `not a CryptoError: ${String(error)}`;
  }
  return 'no error';
}

/** Splits data into pieces of irregular sizes, as a network stream would. */
function* irregular(data: Uint8Array): Generator<Uint8Array> {
  const sizes = [1, 7, 4096, 3, 65_537, 12_345];
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    const size = sizes[i % sizes.length]!;
    yield data.subarray(offset, offset + size);
    offset += size;
  }
}

const concat = (parts: Uint8Array[]): Buffer => Buffer.concat(parts);

describe('record cell round trips', () => {
  const key = generateContentKeyLater();

  const cases: Array<{ name: string; length: number; chunkSize?: number; chunks: number }> = [
    { name: 'empty', length: 0, chunks: 1 },
    { name: '1 byte', length: 1, chunks: 1 },
    { name: 'exactly one chunk', length: 4 * KiB, chunkSize: 4 * KiB, chunks: 1 },
    { name: 'one chunk plus one byte', length: 4 * KiB + 1, chunkSize: 4 * KiB, chunks: 2 },
    { name: 'exactly one default chunk', length: DEFAULT_CHUNK_SIZE, chunks: 1 },
    { name: 'several MiB in small chunks', length: 3 * MiB + 17, chunkSize: 64 * KiB, chunks: 49 },
  ];

  for (const { name, length, chunkSize, chunks } of cases) {
    it(`${name}: buffer and stream APIs agree and restore the plaintext`, async () => {
      const plaintext = randomBytes(length);
      const options = { key: key(), recordId: `record-${name}`, ...(chunkSize ? { chunkSize } : {}) };
      const size = chunkSize ?? DEFAULT_CHUNK_SIZE;

      const sealed = encryptRecord(plaintext, options);
      expect(sealed.length).toBe(chunks);
      expect(recordChunkCount(length, size)).toBe(chunks);
      sealed.forEach((chunk, index) => {
        const dataLength = index < chunks - 1 ? size : length - size * (chunks - 1);
        expect(chunk.length).toBe(encryptedChunkLength(dataLength));
      });
      expect(sealed.reduce((sum, chunk) => sum + chunk.length, 0)).toBe(encryptedRecordLength(length, size));

      const streamed = await collect(encryptRecordStream(irregular(plaintext), options));
      expect(streamed.map((chunk) => chunk.length)).toEqual(sealed.map((chunk) => chunk.length));

      // Each API opens what the other sealed.
      expect(concat([decryptRecord(streamed, options)])).toEqual(plaintext);
      expect(concat(await collect(decryptRecordStream(Readable.from(sealed), options)))).toEqual(plaintext);
    });
  }

  it('takes a Node Readable as input and refuses text pieces', async () => {
    const plaintext = randomBytes(100 * KiB);
    const options = { key: key(), recordId: 'from-readable', chunkSize: 16 * KiB };
    const sealed = await collect(encryptRecordStream(Readable.from(irregular(plaintext)), options));
    expect(concat([decryptRecord(sealed, options)])).toEqual(plaintext);

    const text = Readable.from(['some', 'text']);
    await expect(collect(encryptRecordStream(text, options))).rejects.toMatchObject({
      code: 'INPUT_INVALID',
    });
  });

  it('has a fixed overhead of 45 bytes per chunk: one header byte and Seal’s 44', () => {
    expect(SEAL_OVERHEAD).toBe(44);
    expect(CHUNK_OVERHEAD).toBe(45);
    expect(encryptedRecordLength(0)).toBe(45);
    expect(encryptedRecordLength(3 * MiB + 1)).toBe(3 * MiB + 1 + 4 * 45);
    const [only] = encryptRecord(new Uint8Array(0), { key: key(), recordId: 'empty' });
    expect(only!.length).toBe(45);
  });

  it('refuses bad options', () => {
    const plaintext = new Uint8Array(10);
    const base = { key: key(), recordId: 'r' };
    expect(codeOf(() => encryptRecord(plaintext, { ...base, chunkSize: 0 }))).toBe('INPUT_INVALID');
    expect(codeOf(() => encryptRecord(plaintext, { ...base, chunkSize: MAX_CHUNK_SIZE + 1 }))).toBe(
      'INPUT_INVALID',
    );
    expect(codeOf(() => encryptRecord(plaintext, { ...base, chunkSize: 1.5 }))).toBe('INPUT_INVALID');
    expect(codeOf(() => encryptRecord(plaintext, { ...base, recordId: '' }))).toBe('INPUT_INVALID');
    expect(codeOf(() => encryptRecord(plaintext, { ...base, recordId: 'x'.repeat(256) }))).toBe(
      'INPUT_INVALID',
    );
    expect(codeOf(() => encryptRecord(plaintext, { ...base, recordId: 'bad\uD800' }))).toBe('INPUT_INVALID');
    expect(codeOf(() => encryptRecord('text' as unknown as Uint8Array, base))).toBe('INPUT_INVALID');
    expect(codeOf(() => encryptRecord(plaintext, { ...base, key: new Uint8Array(32) as never }))).toBe(
      'KEY_INVALID',
    );
  });
});

describe('record cell tampering', () => {
  const key = generateContentKeyLater();
  const recordId = 'rec-0001';
  const chunkSize = 1 * KiB;
  let plaintext: Uint8Array;
  let chunks: Uint8Array[];
  const options = (): RecordCellOpenOptions => ({ key: key(), recordId });

  beforeAll(() => {
    plaintext = randomBytes(4 * chunkSize + 100);
    chunks = encryptRecord(plaintext, { key: key(), recordId, chunkSize });
    expect(chunks.length).toBe(5);
  });

  const expectBoth = async (sequence: Uint8Array[], code: CryptoErrorCode, chunkIndex?: number) => {
    const error = errorOf(() => decryptRecord(sequence, options()));
    expect(error.code).toBe(code);
    if (chunkIndex !== undefined) expect(error.details.chunkIndex).toBe(chunkIndex);
    expect(await streamCode(sequence, options())).toBe(code);
  };

  it('rejects a flipped byte anywhere in any chunk: CHUNK_INVALID', async () => {
    for (const [index, chunk] of chunks.entries()) {
      for (const position of [0, 1, 20, 43, 44, 45, Math.floor(chunk.length / 2), chunk.length - 1]) {
        const tampered = chunks.slice();
        const copy = chunk.slice();
        copy[position]! ^= 0x01;
        tampered[index] = copy;
        expect(codeOf(() => decryptRecord(tampered, options()))).toBe('CHUNK_INVALID');
      }
      await expectBoth(
        chunks.map((c, i) => (i === index ? flip(c, 50) : c)),
        'CHUNK_INVALID',
        index,
      );
    }
  });

  it('rejects reordered chunks: CHUNK_INVALID', async () => {
    await expectBoth([chunks[1]!, chunks[0]!, ...chunks.slice(2)], 'CHUNK_INVALID', 0);
    await expectBoth([...chunks.slice(0, 2), chunks[3]!, chunks[2]!, chunks[4]!], 'CHUNK_INVALID', 2);
    await expectBoth([...chunks.slice(0, 3), chunks[4]!, chunks[3]!], 'CHUNK_INVALID', 3);
  });

  it('rejects a dropped middle chunk: CHUNK_INVALID', async () => {
    await expectBoth([chunks[0]!, ...chunks.slice(2)], 'CHUNK_INVALID', 1);
  });

  it('rejects a chunk from another record, even under the same key: CHUNK_INVALID', async () => {
    const other = encryptRecord(randomBytes(plaintext.length), {
      key: key(),
      recordId: 'rec-0002',
      chunkSize,
    });
    await expectBoth([chunks[0]!, other[1]!, ...chunks.slice(2)], 'CHUNK_INVALID', 1);
    await expectBoth(other, 'CHUNK_INVALID', 0);
    const foreign = encryptRecord(randomBytes(plaintext.length), {
      key: generateContentKey(),
      recordId,
      chunkSize,
    });
    await expectBoth([chunks[0]!, foreign[1]!, ...chunks.slice(2)], 'CHUNK_INVALID', 1);
  });

  it('rejects the wrong key or the wrong record id: CHUNK_INVALID', async () => {
    expect(codeOf(() => decryptRecord(chunks, { key: generateContentKey(), recordId }))).toBe(
      'CHUNK_INVALID',
    );
    expect(codeOf(() => decryptRecord(chunks, { key: key(), recordId: 'rec-0002' }))).toBe('CHUNK_INVALID');
  });

  it('rejects a dropped last chunk, or any cut at a chunk boundary: RECORD_TRUNCATED', async () => {
    for (let keep = 1; keep < chunks.length; keep++) {
      await expectBoth(chunks.slice(0, keep), 'RECORD_TRUNCATED', keep - 1);
    }
    await expectBoth([], 'RECORD_TRUNCATED', 0);
  });

  it('rejects a chunk cut short: CHUNK_INVALID', async () => {
    const last = chunks[4]!;
    await expectBoth([...chunks.slice(0, 4), last.subarray(0, last.length - 1)], 'CHUNK_INVALID', 4);
    await expectBoth([...chunks.slice(0, 4), last.subarray(0, 10)], 'CHUNK_INVALID', 4);
  });

  it('rejects anything after the last chunk: TRAILING_DATA', async () => {
    await expectBoth([...chunks, chunks[4]!], 'TRAILING_DATA', 4);
    await expectBoth([...chunks, randomBytes(100)], 'TRAILING_DATA', 4);
    await expectBoth([...chunks, new Uint8Array(0)], 'TRAILING_DATA', 4);
    const second = encryptRecord(randomBytes(10), { key: key(), recordId });
    await expectBoth([...chunks, ...second], 'TRAILING_DATA', 4);
    const empty = encryptRecord(new Uint8Array(0), { key: key(), recordId });
    await expectBoth([...empty, ...empty], 'TRAILING_DATA', 0);
  });

  it('refuses an oversized chunk before Themis sees it', async () => {
    const huge = new Uint8Array(encryptedChunkLength(MAX_CHUNK_SIZE) + 1);
    await expectBoth([huge], 'CHUNK_INVALID', 0);
    expect(codeOf(() => decryptRecord(chunks, { ...options(), maxChunkSize: 512 }))).toBe('CHUNK_INVALID');
  });

  it('yields verified chunks as it goes, then fails at the end of a truncated stream', async () => {
    const seen: Uint8Array[] = [];
    let failure: unknown;
    try {
      for await (const piece of decryptRecordStream(chunks.slice(0, 3), options())) seen.push(piece);
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(CryptoError);
    expect((failure as CryptoError).code).toBe('RECORD_TRUNCATED');
    expect(concat(seen)).toEqual(Buffer.from(plaintext.subarray(0, 2 * chunkSize)));
  });

  it('keeps the record id out of error messages', () => {
    const error = errorOf(() =>
      decryptRecord(chunks, { key: generateContentKey(), recordId: 'patient-jansen-42' }),
    );
    expect(error.message).not.toContain('patient-jansen-42');
    expect(error.message).not.toContain(recordId);
  });
});

describe('record cell format (what other Themis platforms implement)', () => {
  it('matches the documented context layout and chunk plaintext, opened with plain Themis', () => {
    const key = generateContentKey();
    const recordId = 'rëc-1';
    const plaintext = randomBytes(2500);
    const chunks = encryptRecord(plaintext, { key, recordId, chunkSize: 1000 });
    const id = Buffer.from(recordId, 'utf8');
    const cell = themis().SecureCellSeal.withKey(contentKeyBytes(key));
    const opened = chunks.map((chunk, index) => {
      const last = index === chunks.length - 1;
      const context = Buffer.concat([
        Buffer.from('CBRC', 'ascii'),
        Buffer.from([0x01]),
        Buffer.from([id.length >> 8, id.length & 0xff]),
        id,
        Buffer.from([0, 0, 0, index]),
        Buffer.from([last ? 1 : 0]),
      ]);
      expect(Buffer.from(recordChunkContext(recordId, index, last))).toEqual(context);
      const inner = cell.decrypt(chunk, context);
      expect(inner[0]).toBe(0x00);
      return inner.subarray(1);
    });
    expect(concat(opened)).toEqual(Buffer.from(plaintext));
  });

  it('rejects a chunk whose reserved header byte is not zero', () => {
    const key = generateContentKey();
    const cell = themis().SecureCellSeal.withKey(contentKeyBytes(key));
    const forged = cell.encrypt(new Uint8Array([0x01, 0x41]), recordChunkContext('r', 0, true));
    expect(codeOf(() => decryptRecord([forged], { key, recordId: 'r' }))).toBe('CHUNK_INVALID');
  });
});

describe('plaintext never leaks', () => {
  it('a canary string in the plaintext appears in no ciphertext chunk', async () => {
    const canary = Buffer.from('CANARY-patient-Jansen-BSN-123456782');
    const plaintext = Buffer.concat(Array.from({ length: 400 }, () => canary));
    const key = generateContentKey();
    const options = { key, recordId: 'canary', chunkSize: 4 * KiB };
    const chunks = [
      ...encryptRecord(plaintext, options),
      ...(await collect(encryptRecordStream(irregular(plaintext), options))),
    ];
    const keyBytes = Buffer.from(contentKeyBytes(key));
    for (const chunk of chunks) {
      const bytes = Buffer.from(chunk);
      expect(bytes.includes(canary)).toBe(false);
      expect(bytes.includes(canary.subarray(0, 12))).toBe(false);
      expect(bytes.includes(keyBytes)).toBe(false);
    }
  });
});

function flip(chunk: Uint8Array, position: number): Uint8Array {
  const copy = chunk.slice();
  copy[position]! ^= 0x80;
  return copy;
}

/** One content key per describe block, generated after Themis has loaded. */
function generateContentKeyLater(): () => ReturnType<typeof generateContentKey> {
  let key: ReturnType<typeof generateContentKey> | undefined;
  return () => (key ??= generateContentKey());
}
