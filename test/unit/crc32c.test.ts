import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Crc32c, crc32c, crc32cBase64 } from '../../shared/core/checksums/crc32c.ts';

describe('crc32c', () => {
  it('matches the published check value and RFC 3720 vectors', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('gives the same value however the input is split', () => {
    const data = randomBytes(10_007);
    const whole = crc32c(data);
    for (const cut of [0, 1, 7, 8, 9, 4096, 10_006]) {
      expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(whole);
    }
    const streamed = new Crc32c();
    for (let i = 0; i < data.length; i += 333) streamed.update(data.subarray(i, i + 333));
    expect(streamed.value).toBe(whole);
  });

  it('encodes big-endian base64 as x-goog-hash does', () => {
    expect(crc32cBase64(0xe3069283)).toBe('4waSgw==');
    expect(new Crc32c().update(Buffer.from('123456789')).base64()).toBe('4waSgw==');
  });
});
