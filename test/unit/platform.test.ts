// The two platforms shared/core runs on must agree byte for byte: node.ts (node:crypto) on the
// functions, the connector and cb-device; web.ts (WebCrypto randomness, noble) in the device SDK
// in browsers. Every primitive is run on both with the same inputs, valid and invalid.
import { createECDH, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { platform as node } from '../../shared/core/platform/node.ts';
import { platform as web } from '../../shared/core/platform/web.ts';
import * as nodeSeal from '../../shared/core/crypto/secure-cell-seal.ts';
import * as wasmSeal from '../../shared/core/crypto/secure-cell-seal-wasm.ts';

const P256_ORDER = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');

function randomLengths(count: number, max: number): number[] {
  return Array.from({ length: count }, (_, i) => (i < 8 ? i : Math.floor(Math.random() * max)));
}

describe('the node and web platforms', () => {
  it('hash and HMAC the same, whole or in pieces of any size', () => {
    for (const length of randomLengths(40, 5000)) {
      const data = new Uint8Array(randomBytes(length));
      const cut = Math.floor(length / 3);
      const digest = (p: typeof node) =>
        p.createSha256().update(data.subarray(0, cut)).update(data.subarray(cut)).digest();
      expect(digest(web)).toEqual(digest(node));
      const key = new Uint8Array(randomBytes(1 + (length % 100)));
      expect(web.hmacSha256(key, [data.subarray(0, cut), data.subarray(cut)])).toEqual(
        node.hmacSha256(key, [data]),
      );
    }
    expect(Buffer.from(web.createSha256().digest()).toString('hex')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('encode base64 and base64url alike, and a text round-trips on one exactly when on the other', () => {
    for (const length of randomLengths(60, 100)) {
      const data = new Uint8Array(randomBytes(length));
      for (const url of [true, false]) {
        const text = node.encodeBase64(data, url);
        expect(web.encodeBase64(data, url)).toBe(text);
        expect(web.decodeBase64(text, url)).toEqual(node.decodeBase64(text, url));
      }
    }
    // Canonical-form checks in shared/core re-encode what they decode; both platforms must
    // accept exactly the same texts, including near misses.
    const alphabet = 'AQgw_-+/=Zz09 ';
    for (let i = 0; i < 3000; i++) {
      const text = Array.from({ length: Math.floor(Math.random() * 9) }, () =>
        alphabet.charAt(Math.floor(Math.random() * alphabet.length)),
      ).join('');
      for (const url of [true, false]) {
        const roundTrips = (p: typeof node) => p.encodeBase64(p.decodeBase64(text, url), url) === text;
        expect(roundTrips(web), `${JSON.stringify(text)} url=${url}`).toBe(roundTrips(node));
      }
    }
  });

  it('compress P-256 points and derive public points alike, and both refuse what is not on the curve', () => {
    for (let i = 0; i < 20; i++) {
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      const uncompressed = new Uint8Array(ecdh.getPublicKey());
      const compressed = new Uint8Array(ecdh.getPublicKey(null, 'compressed'));
      expect(web.p256Compress(uncompressed)).toEqual(compressed);
      expect(node.p256Compress(uncompressed)).toEqual(compressed);
      expect(web.p256Compress(compressed)).toEqual(compressed);
      // Node drops the scalar's leading zero bytes (1 run in 256 has one); the contract takes 32.
      const scalar = new Uint8Array(32);
      const shortScalar = new Uint8Array(ecdh.getPrivateKey());
      scalar.set(shortScalar, 32 - shortScalar.length);
      expect(web.p256PublicOf(scalar)).toEqual(compressed);
      expect(node.p256PublicOf(scalar)).toEqual(compressed);
      const offCurve = uncompressed.slice();
      offCurve[64] = offCurve[64]! ^ 1;
      expect(web.p256Compress(offCurve)).toBeUndefined();
      expect(node.p256Compress(offCurve)).toBeUndefined();
    }
    const leadingZero = new Uint8Array(32).fill(7);
    leadingZero[0] = 0;
    expect(web.p256PublicOf(leadingZero)).toEqual(node.p256PublicOf(leadingZero));
    expect(web.p256PublicOf(leadingZero)).toHaveLength(33);
    const shortButValid = new Uint8Array(31).fill(1);
    for (const scalar of [
      new Uint8Array(32),
      new Uint8Array(P256_ORDER),
      new Uint8Array(32).fill(0xff),
      shortButValid,
    ]) {
      expect(web.p256PublicOf(scalar)).toBeUndefined();
      expect(node.p256PublicOf(scalar)).toBeUndefined();
    }
    expect(web.p256Compress(new Uint8Array(33))).toBeUndefined();
    expect(node.p256Compress(new Uint8Array(33))).toBeUndefined();
  });

  it('sign Ed25519 identically (RFC 8032 is deterministic) and verify each other, refusing tampering', () => {
    for (let i = 0; i < 20; i++) {
      const seed = new Uint8Array(randomBytes(32));
      const message = new Uint8Array(randomBytes(i * 7));
      const publicKey = node.ed25519PublicOf(seed);
      expect(web.ed25519PublicOf(seed)).toEqual(publicKey);
      const signature = node.ed25519Signer(seed)(message);
      expect(web.ed25519Signer(seed)(message)).toEqual(signature);
      for (const verifier of [node.ed25519Verifier(publicKey)!, web.ed25519Verifier(publicKey)!]) {
        expect(verifier(message, signature)).toBe(true);
        const tampered = signature.slice();
        tampered[i % 64] = tampered[i % 64]! ^ 0x40;
        expect(verifier(message, tampered)).toBe(false);
        expect(verifier(new Uint8Array([...message, 0]), signature)).toBe(false);
      }
    }
  });

  it('draw random bytes of any length on the web platform, beyond getRandomValues limit of 65536', () => {
    const bytes = web.randomBytes(200_000);
    expect(bytes.length).toBe(200_000);
    expect(bytes.subarray(150_000).some((b) => b !== 0)).toBe(true);
    expect(web.randomBytes(32)).not.toEqual(web.randomBytes(32));
  });

  it('seal Secure Cells that the other engine opens (#seal-engine: node:crypto on Node, Themis elsewhere)', () => {
    const key = new Uint8Array(randomBytes(32));
    const context = new Uint8Array(randomBytes(40));
    for (const length of [1, 100, 70_000]) {
      const message = new Uint8Array(randomBytes(length));
      const fromWasm = Buffer.concat(
        wasmSeal.sealCellPieces(key, [message.subarray(0, 1), message.subarray(1)], context),
      );
      const fromNode = nodeSeal.sealCell(key, message, context);
      expect(nodeSeal.openCell(key, fromWasm, context)).toEqual(message);
      expect(wasmSeal.openCell(key, fromNode, context)).toEqual(message);
      expect(wasmSeal.openCell(key, fromNode, new Uint8Array(1))).toBeUndefined();
      expect(wasmSeal.openCell(new Uint8Array(0), fromNode, context)).toBeUndefined();
    }
    expect(() => wasmSeal.sealCellPieces(key, new Uint8Array(0), context)).toThrow(/seals 1 byte/);
  });
});
