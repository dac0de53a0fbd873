// Streaming encryption keeps memory flat: a 64 MiB record goes through in 1 MiB chunks and
// the memory retained never grows with the record. (WebAssembly memory never shrinks, so a
// one-shot Themis call on the whole record would keep well over 128 MiB for good.)
//
// wasm-themis copies every input through a plain JS array, so each chunk leaves tens of MiB
// of short-lived garbage and raw RSS swings with the garbage collector. To measure what is
// retained rather than when V8 happens to collect, the test forces a collection before each
// sample. No timing is measured.
import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  DEFAULT_CHUNK_SIZE,
  encryptedChunkLength,
  encryptedRecordLength,
  encryptRecord,
  encryptRecordStream,
  generateContentKey,
} from '../../shared/core/crypto/index.ts';

const MiB = 1024 * 1024;
let collectGarbage: () => void;

beforeAll(async () => {
  setFlagsFromString('--expose-gc');
  collectGarbage = runInNewContext('gc') as () => void;
});

async function* plaintext(total: number, pieceSize: number): AsyncGenerator<Uint8Array> {
  const pattern = randomBytes(pieceSize);
  for (let sent = 0; sent < total; sent += pieceSize) {
    // A fresh buffer per piece, as a file or network stream would hand over.
    yield Uint8Array.prototype.slice.call(pattern, 0, Math.min(pieceSize, total - sent));
  }
}

describe('record cell streaming memory', () => {
  it(
    'encrypts 64 MiB as a stream without retaining memory that grows with the record',
    { timeout: 120_000 },
    async () => {
      const key = generateContentKey();
      const total = 64 * MiB;
      // Warm up: let WebAssembly memory and the heap reach their working size for 1 MiB chunks.
      encryptRecord(randomBytes(3 * MiB), { key, recordId: 'warm-up' });
      collectGarbage();
      const baseline = process.memoryUsage.rss();
      let peak = baseline;
      let chunks = 0;
      let bytes = 0;
      for await (const chunk of encryptRecordStream(plaintext(total, 256 * 1024), { key, recordId: 'big' })) {
        expect(chunk.length).toBe(encryptedChunkLength(DEFAULT_CHUNK_SIZE));
        chunks += 1;
        bytes += chunk.length;
        collectGarbage();
        peak = Math.max(peak, process.memoryUsage.rss());
      }
      expect(chunks).toBe(64);
      expect(bytes).toBe(encryptedRecordLength(total));
      const growth = (peak - baseline) / MiB;
      console.info(`streaming 64 MiB through Secure Cell: retained RSS growth ${growth.toFixed(1)} MiB`);
      // Lenient: buffering the record would retain >= 64 MiB; streaming retains about nothing.
      expect(growth).toBeLessThan(24);
    },
  );
});
