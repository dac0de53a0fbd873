import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ContentKey, KeyPair } from '../../shared/core/crypto/index.ts';
import {
  decryptRecord,
  encryptRecord,
  generateContentKey,
  generateKeyPair,
  MAX_WRAPPED_KEY_LENGTH,
  SECURE_MESSAGE_OVERHEAD,
  sign,
  unwrapContentKey,
  wrapContentKey,
  wrappedKeyLength,
} from '../../shared/core/crypto/index.ts';
import { contentKeyBytes, privateThemisKey, publicThemisKey } from '../../shared/core/crypto/keys.ts';
import { themis } from '../../shared/core/crypto/themis.ts';
import { codeOf } from '../helpers/crypto-errors.ts';

let hospital: KeyPair;
let otherHospital: KeyPair;
let device: KeyPair;
let otherDevice: KeyPair;
let contentKey: ContentKey;
const recordId = 'rec-2024-0001';

beforeAll(async () => {
  hospital = generateKeyPair();
  otherHospital = generateKeyPair();
  device = generateKeyPair();
  otherDevice = generateKeyPair();
  contentKey = generateContentKey();
});

const sameKey = (a: ContentKey, b: ContentKey): boolean =>
  Buffer.from(contentKeyBytes(a)).equals(Buffer.from(contentKeyBytes(b)));

/** Seals an arbitrary payload the way wrapContentKey does, to test what unwrap checks. */
function sealRaw(payload: Uint8Array, from: KeyPair, to: KeyPair): Uint8Array {
  const T = themis();
  return new T.SecureMessage(
    new T.KeyPair(privateThemisKey(from.privateKey), publicThemisKey(to.publicKey)),
  ).encrypt(payload);
}

function payload(fields: {
  hospital: KeyPair;
  device: KeyPair;
  recordId: string;
  key: Uint8Array;
}): Uint8Array {
  const id = Buffer.from(fields.recordId, 'utf8');
  return Buffer.concat([
    Buffer.from('CBKW', 'ascii'),
    Buffer.from([0x01]),
    Buffer.from(fields.hospital.publicKey.fingerprint, 'base64url'),
    Buffer.from(fields.device.publicKey.fingerprint, 'base64url'),
    Buffer.from([id.length >> 8, id.length & 0xff]),
    id,
    fields.key,
  ]);
}

describe('key wrap', () => {
  it('wraps for one device and unwraps there with the hospital’s public key', () => {
    const wrapped = wrapContentKey(contentKey, { recordId, hospital, device: device.publicKey });
    expect(wrapped.length).toBe(wrappedKeyLength(Buffer.byteLength(recordId)));
    expect(wrapped.length).toBe(103 + 13 + 52);
    const unwrapped = unwrapContentKey(wrapped, { recordId, device, hospital: hospital.publicKey });
    expect(sameKey(unwrapped, contentKey)).toBe(true);

    // The unwrapped key opens the record.
    const plaintext = randomBytes(5000);
    const chunks = encryptRecord(plaintext, { key: contentKey, recordId, chunkSize: 2048 });
    expect(Buffer.from(decryptRecord(chunks, { key: unwrapped, recordId }))).toEqual(plaintext);
  });

  it('wraps differently every time (fresh randomness in Secure Message)', () => {
    const a = wrapContentKey(contentKey, { recordId, hospital, device: device.publicKey });
    const b = wrapContentKey(contentKey, { recordId, hospital, device: device.publicKey });
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it('rejects another device, another hospital and a tampered wrap: KEY_UNWRAP_FAILED', () => {
    const wrapped = wrapContentKey(contentKey, { recordId, hospital, device: device.publicKey });
    expect(
      codeOf(() =>
        unwrapContentKey(wrapped, { recordId, device: otherDevice, hospital: hospital.publicKey }),
      ),
    ).toBe('KEY_UNWRAP_FAILED');
    expect(
      codeOf(() => unwrapContentKey(wrapped, { recordId, device, hospital: otherHospital.publicKey })),
    ).toBe('KEY_UNWRAP_FAILED');
    for (let position = 0; position < wrapped.length; position++) {
      const tampered = wrapped.slice();
      tampered[position]! ^= 0x01;
      expect(
        codeOf(() => unwrapContentKey(tampered, { recordId, device, hospital: hospital.publicKey })),
      ).toBe('KEY_UNWRAP_FAILED');
    }
    for (const bad of [new Uint8Array(0), wrapped.subarray(0, 52), wrapped.subarray(0, wrapped.length - 1)]) {
      expect(codeOf(() => unwrapContentKey(bad, { recordId, device, hospital: hospital.publicKey }))).toBe(
        'KEY_UNWRAP_FAILED',
      );
    }
    const oversized = new Uint8Array(MAX_WRAPPED_KEY_LENGTH + 1);
    expect(
      codeOf(() => unwrapContentKey(oversized, { recordId, device, hospital: hospital.publicKey })),
    ).toBe('KEY_UNWRAP_FAILED');
  });

  it('cannot be used for another record id: KEY_BINDING_MISMATCH', () => {
    const wrapped = wrapContentKey(contentKey, { recordId, hospital, device: device.publicKey });
    for (const other of ['rec-2024-0002', 'rec-2024-000', 'rec-2024-00011', 'REC-2024-0001']) {
      expect(
        codeOf(() => unwrapContentKey(wrapped, { recordId: other, device, hospital: hospital.publicKey })),
      ).toBe('KEY_BINDING_MISMATCH');
    }
  });

  it('checks the device and hospital named inside, not only the keys that open it', () => {
    const key = contentKeyBytes(contentKey);
    // Sealed between the right keys, but naming another device: refused.
    const forDevice = sealRaw(payload({ hospital, device: otherDevice, recordId, key }), hospital, device);
    expect(
      codeOf(() => unwrapContentKey(forDevice, { recordId, device, hospital: hospital.publicKey })),
    ).toBe('KEY_BINDING_MISMATCH');
    // Naming another hospital: refused.
    const forHospital = sealRaw(
      payload({ hospital: otherHospital, device, recordId, key }),
      hospital,
      device,
    );
    expect(
      codeOf(() => unwrapContentKey(forHospital, { recordId, device, hospital: hospital.publicKey })),
    ).toBe('KEY_BINDING_MISMATCH');
    // A message the device sealed towards the hospital, reflected back: names the wrong parties.
    const reflected = sealRaw(
      payload({ hospital: device, device: hospital, recordId, key }),
      device,
      hospital,
    );
    expect(
      codeOf(() => unwrapContentKey(reflected, { recordId, device, hospital: hospital.publicKey })),
    ).toBe('KEY_BINDING_MISMATCH');
    // Exactly the documented layout: accepted.
    const documented = sealRaw(payload({ hospital, device, recordId, key }), hospital, device);
    expect(
      sameKey(unwrapContentKey(documented, { recordId, device, hospital: hospital.publicKey }), contentKey),
    ).toBe(true);
    // Wrong magic, version, length or key size: refused as malformed.
    const good = payload({ hospital, device, recordId, key });
    const variants = [
      Buffer.concat([Buffer.from('XBKW'), good.subarray(4)]),
      Buffer.concat([good.subarray(0, 4), Buffer.from([0x02]), good.subarray(5)]),
      good.subarray(0, good.length - 1),
      Buffer.concat([good, Buffer.from([0])]),
    ];
    for (const variant of variants) {
      expect(
        codeOf(() =>
          unwrapContentKey(sealRaw(variant, hospital, device), {
            recordId,
            device,
            hospital: hospital.publicKey,
          }),
        ),
      ).toBe('KEY_UNWRAP_FAILED');
    }
  });

  it('matches the documented payload layout, opened with plain Themis Secure Message', () => {
    const wrapped = wrapContentKey(contentKey, { recordId, hospital, device: device.publicKey });
    const T = themis();
    const opened = new T.SecureMessage(
      new T.KeyPair(privateThemisKey(device.privateKey), publicThemisKey(hospital.publicKey)),
    ).decrypt(wrapped);
    expect(Buffer.from(opened)).toEqual(
      payload({ hospital, device, recordId, key: contentKeyBytes(contentKey) }),
    );
    expect(wrapped.length - opened.length).toBe(SECURE_MESSAGE_OVERHEAD);
  });

  it('is not a signature, and a signature is not a wrapped key', () => {
    const signed = sign(new Uint8Array(120).fill(7), hospital.privateKey);
    expect(codeOf(() => unwrapContentKey(signed, { recordId, device, hospital: hospital.publicKey }))).toBe(
      'KEY_UNWRAP_FAILED',
    );
  });

  it('never carries the content key or record id in the clear', () => {
    const wrapped = Buffer.from(wrapContentKey(contentKey, { recordId, hospital, device: device.publicKey }));
    const key = Buffer.from(contentKeyBytes(contentKey));
    expect(wrapped.includes(key)).toBe(false);
    expect(wrapped.includes(key.subarray(0, 8))).toBe(false);
    expect(wrapped.includes(Buffer.from(recordId))).toBe(false);
  });

  it('refuses keys of the wrong kind from untyped callers', () => {
    expect(
      codeOf(() => wrapContentKey(contentKey, { recordId, hospital, device: device.privateKey as never })),
    ).toBe('KEY_INVALID');
    expect(
      codeOf(() =>
        wrapContentKey(contentKey, {
          recordId,
          hospital: hospital.privateKey as never,
          device: device.publicKey,
        }),
      ),
    ).toBe('KEY_INVALID');
    expect(
      codeOf(() =>
        wrapContentKey(new Uint8Array(32) as never, { recordId, hospital, device: device.publicKey }),
      ),
    ).toBe('KEY_INVALID');
  });
});
