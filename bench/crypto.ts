// `node bench/crypto.ts` (part of `npm run bench`): bulk sealing and opening, side by side in one
// run, of the project's record path (Themis-compatible Secure Cell over node:crypto, 1 MiB
// chunks bound to their position), against
//   - node:crypto AES-256-GCM with a fresh key schedule per 1 MiB chunk: the practical limit,
//   - wasm-themis Secure Cell Seal: the baseline this replaced (one shot for one chunk; the same
//     chunked record path with the wasm-themis engine for files, since one WebAssembly call
//     fails beyond about 120 MiB),
//   - libsodium-wrappers secretstream (XChaCha20-Poly1305), a WebAssembly peer.
// Cases are interleaved over rounds and the median taken; ratios are to node:crypto.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import sodium from 'libsodium-wrappers';
import {
  decryptRecordStream,
  encryptRecordPieces,
  encryptRecordStream,
  generateContentKey,
  recordChunkContext,
} from '../shared/core/crypto/index.ts';
import { wasmThemisRecords } from '../shared/core/crypto/reference-engine.ts';
import type { RecordCodec } from '../shared/core/crypto/record-cell.ts';
import { openCell, sealCell, sealCellPieces } from '../shared/core/crypto/secure-cell-seal.ts';
import { themis } from '../shared/core/crypto/themis.ts';
import { isMain, mbPerSecond, median, table, writeResults } from './stats.ts';

const MIB = 1024 * 1024;
/** Run with `node --expose-gc` (npm run bench does) for steadier figures. */
const collectGarbage = (globalThis as { gc?: () => void }).gc ?? (() => {});
const CHUNK = MIB;
/** The public record path, which seals with node:crypto. */
const nodeCryptoRecords = { encryptRecordStream, encryptRecordPieces, decryptRecordStream };

type Direction = 'seal' | 'open';
interface Case {
  readonly name: string;
  /** Prepares one sealed copy (untimed); returns the timed seal and open of `plaintext`. */
  prepare(plaintext: Uint8Array): Promise<{ seal: () => unknown; open: () => unknown }>;
}

function chunks(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < data.length; offset += CHUNK) out.push(data.subarray(offset, offset + CHUNK));
  return out;
}

/** The record path as the connector and the device run it: streams in, chunks out. */
const recordCase = (
  name: string,
  codec: Pick<RecordCodec, 'encryptRecordStream' | 'encryptRecordPieces' | 'decryptRecordStream'>,
): Case => ({
  name,
  async prepare(plaintext) {
    const key = generateContentKey();
    const options = { key, recordId: 'benchrecord00000000000', chunkSize: CHUNK };
    const collect = async <T>(source: AsyncIterable<T>) => {
      const out: T[] = [];
      for await (const piece of source) out.push(piece);
      return out;
    };
    const sealed = await collect(codec.encryptRecordStream(chunks(plaintext), options));
    return {
      // As the connector seals into its spool: each chunk in the pieces it was sealed into.
      seal: () => collect(codec.encryptRecordPieces(chunks(plaintext), options)),
      open: () => collect(codec.decryptRecordStream(sealed, options)),
    };
  },
});

/** The least node:crypto can do per chunk: a key schedule, a fresh IV, update, final, tag. */
/** One chunk as the record path seals it: a Themis-compatible Secure Cell bound to its context. */
const projectCell: Case = {
  name: 'project: one Secure Cell over node:crypto',
  async prepare(plaintext) {
    const key = randomBytes(32);
    const context = recordChunkContext('benchrecord00000000000', 0, true);
    const sealed = sealCell(key, plaintext, context);
    return {
      seal: () => sealCellPieces(key, plaintext, context),
      open: () => openCell(key, sealed, context),
    };
  },
};

const nodeGcm: Case = {
  name: 'node:crypto AES-256-GCM (limit)',
  async prepare(plaintext) {
    const key = randomBytes(32);
    const seal = () =>
      chunks(plaintext).map((chunk) => {
        const iv = randomBytes(12);
        const cipher = createCipheriv('aes-256-gcm', key, iv);
        const data = cipher.update(chunk);
        cipher.final();
        return { iv, data, tag: cipher.getAuthTag() };
      });
    const sealed = seal();
    return {
      seal,
      open: () =>
        sealed.map(({ iv, data, tag }) => {
          const decipher = createDecipheriv('aes-256-gcm', key, iv);
          decipher.setAuthTag(tag);
          const opened = decipher.update(data);
          decipher.final();
          return opened;
        }),
    };
  },
};

const wasmOneShot: Case = {
  name: 'wasm-themis Secure Cell, one call',
  async prepare(plaintext) {
    const cell = themis().SecureCellSeal.withKey(randomBytes(32));
    const sealed = cell.encrypt(plaintext);
    return { seal: () => cell.encrypt(plaintext), open: () => cell.decrypt(sealed) };
  },
};

const libsodiumStream: Case = {
  name: 'libsodium secretstream (wasm)',
  async prepare(plaintext) {
    const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
    const seal = () => {
      const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
      const parts = chunks(plaintext);
      return {
        header,
        parts: parts.map((chunk, i) =>
          sodium.crypto_secretstream_xchacha20poly1305_push(
            state,
            chunk,
            null,
            i === parts.length - 1
              ? sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
              : sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
          ),
        ),
      };
    };
    const sealed = seal();
    return {
      seal,
      open: () => {
        const state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(sealed.header, key);
        return sealed.parts.map((part) =>
          sodium.crypto_secretstream_xchacha20poly1305_pull(state, part, null),
        );
      },
    };
  },
};

export async function benchCrypto(options: {
  readonly sizesMiB: readonly number[];
  readonly rounds: number;
}): Promise<{ results: Record<string, unknown>; rows: (string | number)[][] }> {
  await sodium.ready;
  const rows: (string | number)[][] = [];
  const results: Record<string, unknown> = {};
  for (const sizeMiB of options.sizesMiB) {
    const plaintext = new Uint8Array(randomBytes(sizeMiB * MIB));
    const cases = [
      sizeMiB === 1 ? projectCell : recordCase('project: record cells over node:crypto', nodeCryptoRecords),
      nodeGcm,
      // One WebAssembly call cannot take a large file; the chunked path with the wasm engine can.
      sizeMiB <= 16 ? wasmOneShot : recordCase('wasm-themis, same chunked record path', wasmThemisRecords),
      libsodiumStream,
    ];
    const prepared = [];
    for (const c of cases) prepared.push(await c.prepare(plaintext));
    // WebAssembly takes about 40 s per direction on 256 MiB: one round of it is enough there.
    const rounds = sizeMiB >= 256 ? 3 : options.rounds;
    const slow = (i: number, round: number) => sizeMiB >= 256 && i === 2 && round > 0;
    const seconds = cases.map(() => ({ seal: [] as number[], open: [] as number[] }));
    for (let round = 0; round < rounds; round++) {
      for (const [i, run] of prepared.entries()) {
        if (slow(i, round)) continue;
        for (const direction of ['seal', 'open'] as Direction[]) {
          collectGarbage(); // each case starts without the last one's garbage to collect
          const started = performance.now();
          await run[direction]();
          seconds[i]![direction].push((performance.now() - started) / 1000);
        }
      }
    }
    const limit = { seal: median(seconds[1]!.seal), open: median(seconds[1]!.open) };
    const perCase: Record<string, unknown> = {};
    for (const [i, c] of cases.entries()) {
      for (const direction of ['seal', 'open'] as Direction[]) {
        const s = median(seconds[i]![direction]);
        const mbs = mbPerSecond(plaintext.length, s);
        const ratio = limit[direction] / s;
        rows.push([
          `${sizeMiB} MiB ${direction}: ${c.name}`,
          mbs,
          `MB/s  (${ratio.toFixed(2)}x node:crypto)`,
        ]);
        perCase[`${c.name} ${direction}`] = { mbPerSecond: mbs, ratioToNodeCrypto: ratio };
      }
    }
    results[`${sizeMiB}MiB`] = perCase;
  }
  return { results: { crypto: { rounds: options.rounds, ...results } }, rows };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: { sizes: { type: 'string', default: '1,16,256' }, rounds: { type: 'string', default: '5' } },
  });
  const { results, rows } = await benchCrypto({
    sizesMiB: values.sizes.split(',').map(Number),
    rounds: Number(values.rounds),
  });
  console.log(table([['measure', 'value', 'unit'], ...rows]));
  console.log(`\nwritten to ${await writeResults('crypto', { at: new Date().toISOString(), ...results })}`);
}
