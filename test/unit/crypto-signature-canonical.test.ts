// One signature, one encoding: sign() always returns low-s minimal DER, verify() refuses the
// high-s twin of a valid signature (which plain ECDSA and Themis accept), and a raw r ‖ s
// signature from a hardware token becomes the same canonical form that Themis verifies.
import { createECDH, createPrivateKey, createSign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  exportPrivateKey,
  generateKeyPair,
  isCryptoError,
  keyPairSigner,
  publicKeyFromPoint,
  signedFormFromRaw,
  verify,
} from '../../shared/core/crypto/index.ts';

const ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HEADER = 12;

function derParts(signed: Uint8Array, messageLength: number): { r: bigint; s: bigint; der: Uint8Array } {
  const der = signed.subarray(HEADER + messageLength);
  const rLength = der[3]!;
  const r = BigInt(`0x${Buffer.from(der.subarray(4, 4 + rLength)).toString('hex')}`);
  const sLength = der[5 + rLength]!;
  const s = BigInt(`0x${Buffer.from(der.subarray(6 + rLength, 6 + rLength + sLength)).toString('hex')}`);
  return { r, s, der };
}

function withS(signed: Uint8Array, messageLength: number, s: bigint): Uint8Array {
  const { r } = derParts(signed, messageLength);
  const raw = Buffer.concat([
    Buffer.from(r.toString(16).padStart(64, '0'), 'hex'),
    Buffer.from(s.toString(16).padStart(64, '0'), 'hex'),
  ]);
  // Build a high-s form by hand: signedFormFromRaw would normalise it.
  const int = (value: bigint) => {
    let hex = value.toString(16);
    if (hex.length % 2) hex = `0${hex}`;
    let bytes = Buffer.from(hex, 'hex');
    if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
    return Buffer.concat([Buffer.from([2, bytes.length]), bytes]);
  };
  const body = Buffer.concat([int(BigInt(`0x${raw.subarray(0, 32).toString('hex')}`)), int(s)]);
  const der = Buffer.concat([Buffer.from([0x30, body.length]), body]);
  const out = Buffer.alloc(HEADER + messageLength + der.length);
  Buffer.from(signed.subarray(0, HEADER)).copy(out);
  out.writeUInt32LE(der.length, 8);
  Buffer.from(signed.subarray(HEADER, HEADER + messageLength)).copy(out, HEADER);
  der.copy(out, HEADER + messageLength);
  return out;
}

describe('canonical ECDSA signatures', () => {
  const message = new TextEncoder().encode('cb/test: one signature, one encoding');

  it('sign() always gives s ≤ n/2, over many signatures', () => {
    const signer = keyPairSigner(generateKeyPair());
    for (let i = 0; i < 64; i += 1) {
      const { s } = derParts(signer.sign(message), message.length);
      expect(s <= ORDER >> 1n).toBe(true);
    }
  });

  it('verify() refuses the high-s twin of a valid signature', () => {
    const keys = generateKeyPair();
    const signed = keyPairSigner(keys).sign(message);
    expect(verify(signed, keys.publicKey)).toEqual(message);
    const { s } = derParts(signed, message.length);
    const twin = withS(signed, message.length, ORDER - s);
    expect(() => verify(twin, keys.publicKey)).toThrow(
      expect.objectContaining({ code: 'SIGNATURE_INVALID' }),
    );
  });

  it('a raw r ‖ s signature from outside Themis (a token) becomes a form Themis verifies', () => {
    const keys = generateKeyPair();
    const scalar = exportPrivateKey(keys.privateKey).subarray(13);
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(scalar);
    const point = ecdh.getPublicKey();
    expect(publicKeyFromPoint(point).equals(keys.publicKey)).toBe(true);
    const jwk = {
      kty: 'EC',
      crv: 'P-256',
      d: Buffer.from(scalar).toString('base64url'),
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33).toString('base64url'),
    };
    const raw = createSign('sha256')
      .update(message)
      .sign({ key: createPrivateKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' });
    const signed = signedFormFromRaw(message, raw);
    expect(verify(signed, keys.publicKey)).toEqual(message);
    expect(derParts(signed, message.length).s <= ORDER >> 1n).toBe(true);
    const error = (() => {
      try {
        signedFormFromRaw(message, new Uint8Array(63));
      } catch (caught) {
        return caught;
      }
    })();
    expect(isCryptoError(error, 'INPUT_INVALID')).toBe(true);
  });

  it('refuses a point that is not on the curve', () => {
    const bad = new Uint8Array(33).fill(7);
    bad[0] = 2;
    expect(() => publicKeyFromPoint(bad)).toThrow();
  });
});
