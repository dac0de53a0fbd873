// EC_SIGN_* keys. KMS signs a digest the caller computed, but node:crypto can only sign a
// message it hashes itself. So the ECDSA arithmetic is done here over bigints, with
// node:crypto's ECDH supplying the curve multiplication k*G. Signatures are DER
// (ECDSA-Sig-Value), as real KMS returns them, and verify with crypto.verify('sha256', ...).
import { createECDH, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';

export const EC_ALGORITHMS = {
  EC_SIGN_P256_SHA256: {
    namedCurve: 'P-256',
    ecdhCurve: 'prime256v1',
    bytes: 32,
    digest: 'sha256',
    order: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  },
  EC_SIGN_P384_SHA384: {
    namedCurve: 'P-384',
    ecdhCurve: 'secp384r1',
    bytes: 48,
    digest: 'sha384',
    order:
      0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  },
} as const;

export type EcAlgorithm = keyof typeof EC_ALGORITHMS;

/** The private key as PKCS#8 DER. */
export function generateEcKey(algorithm: EcAlgorithm): Buffer {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: EC_ALGORITHMS[algorithm].namedCurve });
  return privateKey.export({ type: 'pkcs8', format: 'der' });
}

export function ecPublicKey(pkcs8: Buffer): { pem: string; der: Buffer } {
  const publicKey = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
  return {
    pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    der: publicKey.export({ type: 'spki', format: 'der' }),
  };
}

/** Signs a digest of exactly the curve's size (checked by the caller). */
export function ecSignDigest(algorithm: EcAlgorithm, pkcs8: Buffer, digest: Buffer): Buffer {
  const { ecdhCurve, bytes, order: n } = EC_ALGORITHMS[algorithm];
  const jwk = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
  const d = toBigInt(Buffer.from(jwk.d ?? '', 'base64url'));
  const e = toBigInt(digest) % n;
  for (;;) {
    const k = toBigInt(randomBytes(bytes));
    if (k === 0n || k >= n) continue;
    const ecdh = createECDH(ecdhCurve);
    ecdh.setPrivateKey(toBytes(k, bytes));
    const point = ecdh.getPublicKey(); // 0x04 | x | y
    const r = toBigInt(point.subarray(1, 1 + bytes)) % n;
    if (r === 0n) continue;
    const s = (modPow(k, n - 2n, n) * ((e + r * d) % n)) % n;
    if (s === 0n) continue;
    return derSequence([derInteger(r), derInteger(s)]);
  }
}

function toBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

function toBytes(value: bigint, length: number): Buffer {
  return Buffer.from(value.toString(16).padStart(length * 2, '0'), 'hex');
}

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
  }
  return result;
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes = Buffer.from(length.toString(16).padStart(length > 0xff ? 4 : 2, '0'), 'hex');
  return Buffer.concat([Buffer.from([0x80 | bytes.length]), bytes]);
}

function derInteger(value: bigint): Buffer {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let body = Buffer.from(hex, 'hex');
  if (body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02]), derLength(body.length), body]);
}

function derSequence(parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}
