// The node:crypto Secure Cell (shared/core/crypto/secure-cell-seal.ts) against wasm-themis, the
// reference: cells sealed by either open with the other, over random keys, contexts and sizes
// (1 byte, around AES and chunk boundaries, the largest record chunk); published vectors from
// other Themis platforms open; and every tampered byte, wrong key or wrong context fails in both.
import { randomBytes, randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { themis } from '../../shared/core/crypto/themis.ts';
import { MAX_CHUNK_SIZE } from '../../shared/core/crypto/record-cell.ts';
import {
  openCell,
  SEAL_TOKEN_LENGTH,
  sealCell,
  sealCellPieces,
} from '../../shared/core/crypto/secure-cell-seal.ts';

const MIB = 1024 * 1024;

function wasmSeal(key: Uint8Array, message: Uint8Array, context: Uint8Array): Uint8Array {
  const cell = themis().SecureCellSeal.withKey(key);
  return context.length > 0 ? cell.encrypt(message, context) : cell.encrypt(message);
}

function wasmOpen(key: Uint8Array, sealed: Uint8Array, context: Uint8Array): Uint8Array | undefined {
  try {
    const cell = themis().SecureCellSeal.withKey(key);
    return context.length > 0 ? cell.decrypt(sealed, context) : cell.decrypt(sealed);
  } catch {
    return undefined;
  }
}

function same(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && Buffer.from(a).equals(Buffer.from(b));
}

describe('Secure Cell Seal over node:crypto, held to wasm-themis', () => {
  it('opens vectors published for other Themis platforms', () => {
    // Themis' own examples (docs/examples/react-native …/04_decryptWithKey.js; js and python
    // secure_cell examples, made with the Data Cell simulator): key, no context, message.
    const vectors = [
      {
        key: 'CiHPUks38qU5BYoiQY+tNWX+EcExjG8ckySRvsGPDf0=',
        sealed: 'AAEBQAwAAAAQAAAADgAAAIe+NTvInzZLUobUZR1bxh23A+Jd5Hxdv0OkwJxVplXnsGMxR0EdCTATew==',
        message: 'Hello, Themis!',
      },
      {
        key: 'bm8sIHRoaXMgaXMgbm90IGEgdmFsaWQgbWFzdGVyIGtleQ==',
        sealed: 'AAEBQAwAAAAQAAAAEQAAAC0fCd2mOIxlDUORXz8+qCKuHCXcDii4bMF8OjOCOqsKEdV4+Ga2xTHPMupFvg==',
        message: 'encrypted message',
      },
    ];
    for (const vector of vectors) {
      const key = Buffer.from(vector.key, 'base64');
      const sealed = Buffer.from(vector.sealed, 'base64');
      expect(Buffer.from(openCell(key, sealed, new Uint8Array())!).toString()).toBe(vector.message);
      expect(Buffer.from(wasmOpen(key, sealed, new Uint8Array())!).toString()).toBe(vector.message);
    }
  });

  it('agrees with wasm-themis both ways over random keys, contexts and sizes', () => {
    const sizes = [1, 2, 15, 16, 17, 255, 4096, 65_535, 65_536, 65_537];
    for (let i = 0; i < 60; i++) sizes.push(randomInt(1, 200_000));
    for (const [i, size] of sizes.entries()) {
      const key = randomBytes([32, 32, 32, 1, 16, 64][i % 6]!);
      const context = randomBytes([0, 1, 32, 300][i % 4]!);
      const message = randomBytes(size);
      // Half the time the message goes in as two parts and comes out as pieces, as chunks do.
      const split = randomInt(0, size);
      const ours =
        i % 2 === 0
          ? sealCell(key, message, context)
          : new Uint8Array(
              Buffer.concat(
                sealCellPieces(key, [message.subarray(0, split), message.subarray(split)], context),
              ),
            );
      const theirs = wasmSeal(key, message, context);
      expect(ours.length).toBe(theirs.length);
      expect(Buffer.from(ours.subarray(0, 16)).equals(Buffer.from(theirs.subarray(0, 16)))).toBe(true);
      expect(same(wasmOpen(key, ours, context), message)).toBe(true);
      expect(same(openCell(key, theirs, context), message)).toBe(true);
    }
  });

  it('agrees at the record chunk boundaries and at the largest chunk', () => {
    const key = randomBytes(32);
    for (const size of [MIB - 1, MIB, MIB + 1, MAX_CHUNK_SIZE + 1]) {
      const context = randomBytes(40);
      const message = randomBytes(size);
      expect(same(wasmOpen(key, sealCell(key, message, context), context), message)).toBe(true);
      expect(same(openCell(key, wasmSeal(key, message, context), context), message)).toBe(true);
    }
  });

  it('refuses every tampered byte, a wrong key or context, and cut or padded cells, as wasm-themis does', () => {
    const key = randomBytes(32);
    const context = randomBytes(24);
    const message = randomBytes(100);
    const sealed = sealCell(key, message, context);
    const positions = [0, 3, 4, 8, 12, 15, 16, 27, 28, 43, SEAL_TOKEN_LENGTH, sealed.length - 1];
    for (const position of positions) {
      const tampered = new Uint8Array(sealed);
      tampered[position]! ^= 0x01;
      expect(openCell(key, tampered, context), `byte ${position}`).toBeUndefined();
      expect(wasmOpen(key, tampered, context), `byte ${position}`).toBeUndefined();
    }
    const otherContext = new Uint8Array(context);
    otherContext[0]! ^= 0x80;
    for (const [k, s, c] of [
      [randomBytes(32), sealed, context],
      [key, sealed, otherContext],
      [key, sealed, new Uint8Array()],
      [key, sealed.subarray(0, sealed.length - 1), context],
      [key, Buffer.concat([sealed, Buffer.from([0])]), context],
      [key, sealed.subarray(0, SEAL_TOKEN_LENGTH), context],
      [new Uint8Array(), sealed, context],
    ] as const) {
      expect(openCell(k, s, c)).toBeUndefined();
      expect(wasmOpen(k, s, c)).toBeUndefined();
    }
    // A fresh IV each time: the same message never seals to the same bytes.
    expect(Buffer.from(sealCell(key, message, context)).equals(Buffer.from(sealed))).toBe(false);
  });

  it('refuses what Themis refuses to seal', () => {
    expect(() => sealCell(randomBytes(32), new Uint8Array(), new Uint8Array())).toThrow(
      expect.objectContaining({ code: 'INPUT_INVALID' }),
    );
    expect(() => sealCell(new Uint8Array(), randomBytes(4), new Uint8Array())).toThrow(
      expect.objectContaining({ code: 'KEY_INVALID' }),
    );
  });
});
