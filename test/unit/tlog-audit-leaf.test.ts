// The audit leaf is a salted commitment to one event's exact text, and the log's origin and key
// names are what a phone computes from its QR code's apiBase and hospitalId: both must be exact,
// and a name that signed-note would reject must be refused before anything is signed under it.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AUDIT_LEAF_SALT_SIZE,
  auditLeafData,
  auditLogKeyName,
  auditLogOrigin,
  PLATFORM_LOG,
  witnessKeyName,
} from '../../shared/core/tlog/audit-leaf.ts';
import { parseCheckpoint } from '../../shared/core/tlog/checkpoint.ts';
import { isValidKeyName } from '../../shared/core/tlog/note.ts';

const SALT = new Uint8Array(32).fill(7);
const EVENT = '{"action":"record.downloaded","at":"2026-01-05T10:03:15Z"}';

describe('auditLeafData', () => {
  it('is SHA-256 of the label, a newline, the salt and the UTF-8 event text', () => {
    const expected = createHash('sha256')
      .update('cb/audit-leaf/v1\n')
      .update(SALT)
      .update(Buffer.from(EVENT, 'utf8'))
      .digest();
    expect(Buffer.from(auditLeafData(SALT, EVENT))).toEqual(expected);
    expect(auditLeafData(SALT, EVENT)).toHaveLength(32);
  });

  it('changes with any bit of the salt and any character of the event', () => {
    const base = Buffer.from(auditLeafData(SALT, EVENT)).toString('hex');
    const seen = new Set([base]);
    for (let i = 0; i < AUDIT_LEAF_SALT_SIZE; i++) {
      const salt = SALT.slice();
      salt[i] = (salt[i] as number) ^ 0x80;
      seen.add(Buffer.from(auditLeafData(salt, EVENT)).toString('hex'));
    }
    for (const event of [EVENT.replace('10:03:15', '10:03:16'), `${EVENT} `, EVENT.slice(1), '']) {
      seen.add(Buffer.from(auditLeafData(SALT, event)).toString('hex'));
    }
    expect(seen.size).toBe(1 + AUDIT_LEAF_SALT_SIZE + 4);
  });

  it('hashes the text as given: equal JSON spelled otherwise is another leaf', () => {
    const spaced = '{"action": "record.downloaded","at":"2026-01-05T10:03:15Z"}';
    expect(auditLeafData(SALT, spaced)).not.toEqual(auditLeafData(SALT, EVENT));
    // Non-ASCII is hashed as UTF-8, not as UTF-16 code units or escaped.
    const text = '{"id":"é"}';
    const expected = createHash('sha256')
      .update('cb/audit-leaf/v1\n')
      .update(SALT)
      .update(Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xc3, 0xa9, 0x22, 0x7d]))
      .digest();
    expect(Buffer.from(auditLeafData(SALT, text))).toEqual(expected);
  });

  it('refuses a salt that is not 32 bytes', () => {
    for (const size of [0, 16, 31, 33, 64]) {
      expect(() => auditLeafData(new Uint8Array(size), EVENT)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
  });
});

describe('origin and key names', () => {
  it('drop the scheme and keep host, port and path of the apiBase', () => {
    expect(auditLogKeyName('https://api.clinic-bridge.example')).toBe('api.clinic-bridge.example/audit');
    expect(auditLogOrigin('https://api.clinic-bridge.example', 'st-example-zh')).toBe(
      'api.clinic-bridge.example/audit/st-example-zh',
    );
    expect(auditLogKeyName('https://api.clinic-bridge.example/cb/v2')).toBe(
      'api.clinic-bridge.example/cb/v2/audit',
    );
    expect(auditLogOrigin('https://api.clinic-bridge.example:8443/cb', PLATFORM_LOG)).toBe(
      'api.clinic-bridge.example:8443/cb/audit/platform',
    );
    expect(auditLogOrigin('http://127.0.0.1:5001/demo-project/europe-west4', 'st-example-zh')).toBe(
      '127.0.0.1:5001/demo-project/europe-west4/audit/st-example-zh',
    );
  });

  it('give an origin that is a valid checkpoint first line and a key name signed-note accepts', () => {
    const origin = auditLogOrigin('https://api.clinic-bridge.example/cb', 'st-example-zh');
    const root = Buffer.alloc(32).toString('base64');
    expect(parseCheckpoint(`${origin}\n0\n${root}\n`).origin).toBe(origin);
    expect(isValidKeyName(auditLogKeyName('https://api.clinic-bridge.example/cb'))).toBe(true);
    expect(isValidKeyName(origin)).toBe(true);
  });

  it('name the witness after the hospital', () => {
    expect(witnessKeyName('st-example-zh')).toBe('st-example-zh.witness.clinic-bridge');
    expect(isValidKeyName(witnessKeyName('st-example-zh'))).toBe(true);
  });

  it('refuse an apiBase or log id that would make an invalid key name', () => {
    for (const apiBase of [
      'https://api example',
      'https://api.example/a+b',
      'https://api.example/\tx',
      '',
      'https://api.example/',
      'ftp://api.example',
      'https://api.example?x=1',
    ]) {
      expect(() => auditLogKeyName(apiBase)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    for (const logId of ['st example', 'a+b', 'x\ny']) {
      expect(() => auditLogOrigin('https://api.clinic-bridge.example', logId)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
  });
});
