// The platform on Node: OpenSSL through node:crypto, at native speed for the functions'
// hashing of whole containers and the connector's sealing.
import {
  createECDH,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  ECDH,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import type { Platform } from './types.ts';

const CURVE = 'prime256v1';
const P256_SCALAR_LENGTH = 32;
// Fixed DER headers around the raw key: RFC 8410 PKCS#8 and SPKI for id-Ed25519 (1.3.101.112).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function view(bytes: Buffer): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function ed25519PrivateKey(seed: Uint8Array) {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

export const platform: Platform = {
  name: 'node',
  createSha256() {
    const hash = createHash('sha256');
    const wrapper = {
      update(data: Uint8Array) {
        hash.update(data);
        return wrapper;
      },
      digest: () => view(hash.digest()),
    };
    return wrapper;
  },
  hmacSha256(key, parts) {
    const hmac = createHmac('sha256', key);
    for (const part of parts) hmac.update(part);
    return view(hmac.digest());
  },
  randomBytes: (length) => view(randomBytes(length)),
  encodeBase64: (bytes, url) =>
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(url ? 'base64url' : 'base64'),
  decodeBase64: (text, url) => view(Buffer.from(text, url ? 'base64url' : 'base64')),
  p256Compress(point) {
    try {
      return view(ECDH.convertKey(point, CURVE, undefined, undefined, 'compressed') as Buffer);
    } catch {
      return undefined;
    }
  },
  p256PublicOf(scalar) {
    // Node accepts a short scalar as if zero-padded; the contract (and the web platform) does not.
    if (scalar.length !== P256_SCALAR_LENGTH) return undefined;
    try {
      const ecdh = createECDH(CURVE);
      ecdh.setPrivateKey(scalar);
      return view(ecdh.getPublicKey(null, 'compressed'));
    } catch {
      return undefined;
    }
  },
  ed25519PublicOf(seed) {
    const spki = createPublicKey(ed25519PrivateKey(seed)).export({ format: 'der', type: 'spki' });
    return new Uint8Array(spki.subarray(SPKI_PREFIX.length));
  },
  ed25519Signer(seed) {
    const key = ed25519PrivateKey(seed);
    return (message) => view(sign(null, message, key));
  },
  ed25519Verifier(publicKey) {
    let key;
    try {
      key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    } catch {
      return undefined;
    }
    return (message, signature) => {
      try {
        return verify(null, message, key, signature);
      } catch {
        return false;
      }
    };
  },
};
