// The node:crypto Secure Cell (shared/core/crypto/secure-cell-seal.ts) against wasm-themis, the
// reference: cells sealed by either open with the other, over random keys, contexts and sizes
// (1 byte, around AES and chunk boundaries, the largest record chunk); published vectors from
// other Themis platforms open (none needs the pre-0.13 uint64-length KDF); every tampered byte,
// wrong key or wrong context fails in both; and so does a cell made with that old KDF.
import { createCipheriv, createHmac, randomBytes, randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { themis } from '../../shared/core/crypto/themis.ts';
import { CryptoError } from '../../shared/core/crypto/errors.ts';
import { contentKeyBytes, generateContentKey } from '../../shared/core/crypto/keys.ts';
import { decryptRecord, MAX_CHUNK_SIZE, recordChunkContext } from '../../shared/core/crypto/record-cell.ts';
import { wasmThemisRecords } from '../../shared/core/crypto/reference-engine.ts';
import {
  openCell,
  SEAL_ALGORITHM,
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

/**
 * A Seal-mode cell as Themis before 0.13 made it on 64-bit platforms: the same token, but the
 * message key derived with the length as uint64 LE instead of uint32 LE.
 */
function legacyWideLengthCell(key: Uint8Array, message: Uint8Array, context: Uint8Array): Uint8Array {
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(message.length));
  const messageKey = createHmac('sha256', key)
    .update(Buffer.from([0, 0, 0, 1]))
    .update('Themis secure cell message key', 'latin1')
    .update(Buffer.from([0]))
    .update(length)
    .update(context)
    .digest();
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', messageKey, iv, { authTagLength: 16 });
  if (context.length > 0) cipher.setAAD(context);
  const ciphertext = Buffer.concat([cipher.update(message), cipher.final()]);
  const token = Buffer.alloc(SEAL_TOKEN_LENGTH);
  token.writeUInt32LE(SEAL_ALGORITHM, 0);
  token.writeUInt32LE(12, 4);
  token.writeUInt32LE(16, 8);
  token.writeUInt32LE(message.length, 12);
  iv.copy(token, 16);
  cipher.getAuthTag().copy(token, 28);
  return new Uint8Array(Buffer.concat([token, ciphertext]));
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

  it('refuses a cell whose message key took the length as uint64 (Themis < 0.13 on 64-bit), in both engines', () => {
    // Such cells are what Themis before 0.13 made on 64-bit platforms. wasm-themis 0.15 does not
    // open them; if node:crypto did, the engines would accept different inputs and the
    // differential tests above would no longer say that they agree. So both must refuse.
    const key = randomBytes(32);
    for (const context of [new Uint8Array(), randomBytes(40)]) {
      const message = randomBytes(100);
      const sealed = legacyWideLengthCell(key, message, context);
      // A well-formed token: only the message key tells it from a cell of today's Themis.
      expect(sealed.length).toBe(SEAL_TOKEN_LENGTH + message.length);
      expect(openCell(key, sealed, context)).toBeUndefined();
      expect(wasmOpen(key, sealed, context)).toBeUndefined();
    }
    // As a record chunk, the two record paths name the refusal alike.
    const contentKey = generateContentKey();
    const recordId = 'record-sealed-by-old-themis';
    const chunk = legacyWideLengthCell(
      contentKeyBytes(contentKey),
      new Uint8Array([0x00, ...randomBytes(50)]),
      recordChunkContext(recordId, 0, true),
    );
    const outcome = (decrypt: typeof decryptRecord) => {
      try {
        decrypt([chunk], { key: contentKey, recordId });
        return 'opened';
      } catch (error) {
        return error instanceof CryptoError ? `${error.code} at ${error.details.chunkIndex}` : error;
      }
    };
    expect(outcome(decryptRecord)).toBe('CHUNK_INVALID at 0');
    expect(outcome(wasmThemisRecords.decryptRecord)).toBe('CHUNK_INVALID at 0');
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
