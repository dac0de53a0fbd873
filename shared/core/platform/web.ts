// The platform in browsers and React Native: randomness from WebCrypto's getRandomValues, and
// SHA-256, HMAC, P-256 point arithmetic and Ed25519 from the audited noble libraries. WebCrypto's
// subtle API cannot stand in for them: it is asynchronous, and it has no incremental hash, which
// a device needs to check a 1 GiB container while streaming it to storage. Themis' own
// AES-GCM, ECDH and ECDSA run in wasm-themis here as on Node (shared/core/crypto).
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Platform } from './types.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
// getRandomValues refuses more than 65536 bytes per call.
const RANDOM_BLOCK = 65_536;

function encodeBase64(bytes: Uint8Array, url: boolean): string {
  const alphabet = url ? URL_ALPHABET : ALPHABET;
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += alphabet[(n >> 18) & 63]! + alphabet[(n >> 12) & 63]!;
    if (i + 1 < bytes.length) out += alphabet[(n >> 6) & 63]!;
    else if (!url) out += '=';
    if (i + 2 < bytes.length) out += alphabet[n & 63]!;
    else if (!url) out += '=';
  }
  return out;
}

const DECODE = new Map<string, number>();
for (let i = 0; i < 64; i += 1) {
  DECODE.set(ALPHABET[i]!, i);
  DECODE.set(URL_ALPHABET[i]!, i);
}

/** Lenient like Buffer: skips characters outside both alphabets and stops at padding. */
function decodeBase64(text: string): Uint8Array {
  const values: number[] = [];
  for (const char of text) {
    if (char === '=') break;
    const value = DECODE.get(char);
    if (value !== undefined) values.push(value);
  }
  const out = new Uint8Array(Math.floor((values.length * 6) / 8));
  let bits = 0;
  let buffer = 0;
  let index = 0;
  for (const value of values) {
    buffer = (buffer << 6) | value;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (index < out.length) out[index++] = (buffer >> bits) & 0xff;
    }
  }
  return out;
}

export const platform: Platform = {
  name: 'web',
  createSha256() {
    const hash = sha256.create();
    const wrapper = {
      update(data: Uint8Array) {
        hash.update(data);
        return wrapper;
      },
      digest: () => hash.digest(),
    };
    return wrapper;
  },
  hmacSha256(key, parts) {
    const mac = hmac.create(sha256, key);
    for (const part of parts) mac.update(part);
    return mac.digest();
  },
  randomBytes(length) {
    const out = new Uint8Array(length);
    for (let offset = 0; offset < length; offset += RANDOM_BLOCK) {
      globalThis.crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + RANDOM_BLOCK)));
    }
    return out;
  },
  encodeBase64,
  decodeBase64: (text) => decodeBase64(text),
  p256Compress(point) {
    try {
      return p256.Point.fromBytes(point).toBytes(true);
    } catch {
      return undefined;
    }
  },
  p256PublicOf(scalar) {
    try {
      return p256.getPublicKey(scalar, true);
    } catch {
      return undefined;
    }
  },
  ed25519PublicOf: (seed) => ed25519.getPublicKey(seed),
  ed25519Signer: (seed) => (message) => ed25519.sign(message, seed),
  ed25519Verifier(publicKey) {
    try {
      ed25519.Point.fromBytes(publicKey);
    } catch {
      return undefined;
    }
    return (message, signature) => {
      try {
        return ed25519.verify(signature, message, publicKey, { zip215: false });
      } catch {
        return false;
      }
    };
  },
};
