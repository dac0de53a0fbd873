// MAC keys (HMAC_*). Keys are as long as the hash's block output, as KMS generates them.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const MAC_ALGORITHMS = {
  HMAC_SHA256: { hash: 'sha256', keyBytes: 32 },
  HMAC_SHA1: { hash: 'sha1', keyBytes: 20 },
  HMAC_SHA384: { hash: 'sha384', keyBytes: 48 },
  HMAC_SHA512: { hash: 'sha512', keyBytes: 64 },
  HMAC_SHA224: { hash: 'sha224', keyBytes: 28 },
} as const;

export type MacAlgorithm = keyof typeof MAC_ALGORITHMS;

export function generateMacKey(algorithm: MacAlgorithm): Buffer {
  return randomBytes(MAC_ALGORITHMS[algorithm].keyBytes);
}

export function macSign(algorithm: MacAlgorithm, key: Buffer, data: Buffer): Buffer {
  return createHmac(MAC_ALGORITHMS[algorithm].hash, key).update(data).digest();
}

export function macVerify(algorithm: MacAlgorithm, key: Buffer, data: Buffer, mac: Buffer): boolean {
  const expected = macSign(algorithm, key, data);
  return expected.length === mac.length && timingSafeEqual(expected, mac);
}
