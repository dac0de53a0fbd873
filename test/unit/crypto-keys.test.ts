import { createHash, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../shared/core/checksums/crc32c.ts';
import {
  CONTENT_KEY_LENGTH,
  CryptoError,
  EC_KEY_LENGTH,
  exportPrivateKey,
  generateContentKey,
  generateKeyPair,
  importKeyPair,
  importPrivateKey,
  importPublicKey,
  PrivateKey,
  PublicKey,
  sign,
} from '../../shared/core/crypto/index.ts';
import { contentKeyBytes } from '../../shared/core/crypto/keys.ts';
import { codeOf } from '../helpers/crypto-errors.ts';

const ascii = (bytes: Uint8Array, from: number, to: number): string =>
  String.fromCharCode(...bytes.subarray(from, to));

/** Rewrites the checksum Themis keeps in bytes 8..11 (CRC32C of the key with that field zeroed). */
function withChecksum(key: Uint8Array): Uint8Array {
  const out = key.slice();
  out.fill(0, 8, 12);
  new DataView(out.buffer).setUint32(8, crc32c(out), true);
  return out;
}

describe('key pairs', () => {
  it('generates Themis EC P-256 keys of 45 bytes with the documented layout', () => {
    const { privateKey, publicKey } = generateKeyPair();
    const pub = publicKey.toBytes();
    const priv = exportPrivateKey(privateKey);
    expect(pub.length).toBe(EC_KEY_LENGTH);
    expect(priv.length).toBe(EC_KEY_LENGTH);
    expect(ascii(pub, 0, 4)).toBe('UEC2');
    expect(ascii(priv, 0, 4)).toBe('REC2');
    expect(new DataView(pub.buffer).getUint32(4, false)).toBe(45);
    expect([0x02, 0x03]).toContain(pub[12]);
    expect(priv[12]).toBe(0);
    // The checksum layout documented in keys.ts (our test helper recomputes it exactly).
    expect(withChecksum(pub)).toEqual(pub);
    expect(withChecksum(priv)).toEqual(priv);
  });

  it('round-trips through bytes and base64url', () => {
    const pair = generateKeyPair();
    const fromBytes = importKeyPair(exportPrivateKey(pair.privateKey), pair.publicKey.toBytes());
    const fromText = importPublicKey(pair.publicKey.toBase64Url());
    expect(fromBytes.publicKey.equals(pair.publicKey)).toBe(true);
    expect(fromText.equals(pair.publicKey)).toBe(true);
    expect(exportPrivateKey(fromBytes.privateKey)).toEqual(exportPrivateKey(pair.privateKey));
    expect(
      exportPrivateKey(
        importPrivateKey(Buffer.from(exportPrivateKey(pair.privateKey)).toString('base64url')),
      ),
    ).toEqual(exportPrivateKey(pair.privateKey));
    expect(pair.publicKey.equals(generateKeyPair().publicKey)).toBe(false);
  });

  it('fingerprints a public key as base64url SHA-256 of its 45 bytes', () => {
    const { publicKey } = generateKeyPair();
    const expected = createHash('sha256').update(publicKey.toBytes()).digest('base64url');
    expect(publicKey.fingerprint).toBe(expected);
    expect(publicKey.fingerprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(String(publicKey)).toBe(`PublicKey(${expected})`);
    expect(JSON.stringify({ publicKey })).toBe(JSON.stringify({ publicKey: publicKey.toBase64Url() }));
  });

  it('hands out copies, so callers cannot change a key', () => {
    const pair = generateKeyPair();
    const bytes = pair.publicKey.toBytes();
    bytes.fill(0);
    expect(pair.publicKey.toBytes()).not.toEqual(bytes);
    const priv = exportPrivateKey(pair.privateKey);
    priv.fill(0);
    expect(exportPrivateKey(pair.privateKey)).not.toEqual(priv);
  });

  it('never shows private or content key bytes when printed or serialised', () => {
    const { privateKey } = generateKeyPair();
    const contentKey = generateContentKey();
    const secrets = [exportPrivateKey(privateKey), contentKeyBytes(contentKey)];
    const shown = [
      inspect({ privateKey, contentKey }, { depth: 5 }),
      JSON.stringify({ privateKey, contentKey }),
      `${String(privateKey)} ${String(contentKey)}`,
    ].join('\n');
    for (const secret of secrets) {
      const encodings = ['hex', 'base64', 'base64url'] as const;
      for (const encoding of encodings) {
        expect(shown).not.toContain(Buffer.from(secret).toString(encoding).slice(12, 40));
      }
    }
    expect(shown).toContain('[PrivateKey]');
    expect(shown).toContain('[ContentKey]');
  });

  it('cannot be constructed around arbitrary bytes', () => {
    const make = (Kind: unknown) => () =>
      new (Kind as new (token: symbol, key: Uint8Array) => unknown)(Symbol('forged'), new Uint8Array(45));
    expect(make(PublicKey)).toThrow(TypeError);
    expect(make(PrivateKey)).toThrow(TypeError);
  });
});

describe('key import rejects what is not a Themis EC P-256 key', () => {
  it('rejects garbage with KEY_INVALID', () => {
    const { publicKey, privateKey } = generateKeyPair();
    const garbage: unknown[] = [
      new Uint8Array(0),
      new Uint8Array(45),
      randomBytes(45),
      randomBytes(44),
      randomBytes(1000),
      publicKey.toBytes().subarray(0, 44),
      new Uint8Array([...publicKey.toBytes(), 0]),
      '',
      'not base64url!',
      publicKey.toBytes().toString(),
      `${publicKey.toBase64Url()}=`, // padding is refused
      publicKey.toBase64Url().replace(/^./, '+'), // so is the standard base64 alphabet
      'A'.repeat(10_000),
      42,
      null,
      { bytes: publicKey.toBytes() },
    ];
    for (const input of garbage) {
      expect(codeOf(() => importPublicKey(input as Uint8Array))).toBe('KEY_INVALID');
      expect(codeOf(() => importPrivateKey(input as Uint8Array))).toBe('KEY_INVALID');
    }
    expect(codeOf(() => importPrivateKey(exportPrivateKey(privateKey).subarray(1)))).toBe('KEY_INVALID');
  });

  it('rejects a key of the wrong type', () => {
    const pair = generateKeyPair();
    expect(codeOf(() => importPublicKey(exportPrivateKey(pair.privateKey)))).toBe('KEY_INVALID');
    expect(codeOf(() => importPrivateKey(pair.publicKey.toBytes()))).toBe('KEY_INVALID');
    expect(codeOf(() => importPublicKey(contentKeyBytes(generateContentKey())))).toBe('KEY_INVALID');
    // An RSA public key tag, a P-384 tag and a public tag on a private body are all refused.
    for (const tag of ['URA2', 'UEC3', 'REC2']) {
      const forged = pair.publicKey.toBytes();
      forged.set(Buffer.from(tag, 'ascii'), 0);
      expect(codeOf(() => importPublicKey(withChecksum(forged)))).toBe('KEY_INVALID');
    }
  });

  it('rejects a corrupted key (Themis checksum) and an off-curve point with a valid checksum', () => {
    const pair = generateKeyPair();
    const flipped = pair.publicKey.toBytes();
    flipped[30]! ^= 0x01;
    expect(codeOf(() => importPublicKey(flipped))).toBe('KEY_INVALID');

    // Find an X with no point on P-256 (about half of all X values), give it a valid checksum.
    let offCurve: Uint8Array | undefined;
    for (let attempt = 0; attempt < 64 && !offCurve; attempt++) {
      const candidate = pair.publicKey.toBytes();
      candidate.set(randomBytes(32), 13);
      try {
        importPublicKey(withChecksum(candidate));
      } catch (error) {
        if (error instanceof CryptoError && error.message.includes('not a point')) offCurve = candidate;
      }
    }
    expect(offCurve).toBeDefined();
    expect(codeOf(() => importPublicKey(withChecksum(offCurve!)))).toBe('KEY_INVALID');

    const zeroScalar = exportPrivateKey(pair.privateKey);
    zeroScalar.fill(0, 13);
    expect(codeOf(() => importPrivateKey(withChecksum(zeroScalar)))).toBe('KEY_INVALID');
  });

  it('rejects a private key paired with someone else’s public key', () => {
    const mine = generateKeyPair();
    const theirs = generateKeyPair();
    expect(codeOf(() => importKeyPair(exportPrivateKey(mine.privateKey), theirs.publicKey.toBytes()))).toBe(
      'KEY_PAIR_MISMATCH',
    );
  });

  it('refuses, at run time, a key of the wrong kind passed from untyped code', () => {
    const { publicKey } = generateKeyPair();
    const message = new TextEncoder().encode('manifest');
    expect(codeOf(() => sign(message, publicKey as unknown as PrivateKey))).toBe('KEY_INVALID');
    expect(
      codeOf(() => sign(message, exportPrivateKey(generateKeyPair().privateKey) as unknown as PrivateKey)),
    ).toBe('KEY_INVALID');
  });
});

describe('content keys', () => {
  it('are 32 random bytes from Themis', () => {
    const keys = Array.from({ length: 8 }, () =>
      Buffer.from(contentKeyBytes(generateContentKey())).toString('hex'),
    );
    expect(new Set(keys).size).toBe(8);
    for (const key of keys) expect(key.length).toBe(CONTENT_KEY_LENGTH * 2);
  });
});
