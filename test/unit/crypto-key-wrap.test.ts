import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ContentKey, KeyPair } from '../../shared/core/crypto/index.ts';
import {
  createKeyWrapper,
  decryptRecord,
  encryptRecord,
  generateContentKey,
  generateKeyPair,
  MAX_WRAPPED_KEY_LENGTH,
  sign,
  unwrapContentKey,
  wrappedKeyLength,
  type KeyWrapper,
} from '../../shared/core/crypto/index.ts';
import { contentKeyBytes, privateThemisKey, publicThemisKey } from '../../shared/core/crypto/keys.ts';
import { themis } from '../../shared/core/crypto/themis.ts';
import { codeOf } from '../helpers/crypto-errors.ts';

// "wrapKey" stands for an upload's wrap key pair where a test seals payloads by hand; `wrapper`
// is the real thing, whose private half no test can reach.
let hospital: KeyPair;
let wrapKey: KeyPair;
let otherWrapKey: KeyPair;
let wrapper: KeyWrapper;
let device: KeyPair;
let otherDevice: KeyPair;
let contentKey: ContentKey;
const recordId = 'rec-2024-0001';

beforeAll(async () => {
  hospital = generateKeyPair();
  wrapKey = generateKeyPair();
  otherWrapKey = generateKeyPair();
  wrapper = createKeyWrapper();
  device = generateKeyPair();
  otherDevice = generateKeyPair();
  contentKey = generateContentKey();
});

const sameKey = (a: ContentKey, b: ContentKey): boolean =>
  Buffer.from(contentKeyBytes(a)).equals(Buffer.from(contentKeyBytes(b)));

/** Seals an arbitrary payload the way a KeyWrapper does, to test what unwrap checks. */
function sealRaw(payload: Uint8Array, from: KeyPair, to: KeyPair): Uint8Array {
  const T = themis();
  return new T.SecureMessage(
    new T.KeyPair(privateThemisKey(from.privateKey), publicThemisKey(to.publicKey)),
  ).encrypt(payload);
}

function payload(fields: {
  wrapKey: KeyPair;
  device: KeyPair;
  recordId: string;
  key: Uint8Array;
}): Uint8Array {
  const id = Buffer.from(fields.recordId, 'utf8');
  return Buffer.concat([
    Buffer.from('CBKW', 'ascii'),
    Buffer.from([0x02]),
    Buffer.from(fields.wrapKey.publicKey.fingerprint, 'base64url'),
    Buffer.from(fields.device.publicKey.fingerprint, 'base64url'),
    Buffer.from([id.length >> 8, id.length & 0xff]),
    id,
    fields.key,
  ]);
}

const wrap = (target = device) => wrapper.wrap(contentKey, { recordId, device: target.publicKey });
const unwrapWith = (
  wrapped: Uint8Array,
  options: { recordId?: string; device?: KeyPair; wrapKey?: KeyPair },
) =>
  unwrapContentKey(wrapped, {
    recordId: options.recordId ?? recordId,
    device: options.device ?? device,
    wrapKey: (options.wrapKey ?? { publicKey: wrapper.publicKey }).publicKey,
  } as Parameters<typeof unwrapContentKey>[1]);

describe('key wrap', () => {
  it('wraps for one device under the upload’s wrap key, and unwraps there with its public half', () => {
    const wrapped = wrap();
    expect(wrapped.length).toBe(wrappedKeyLength(Buffer.byteLength(recordId)));
    expect(wrapped.length).toBe(103 + 13 + 52);
    const unwrapped = unwrapWith(wrapped, {});
    expect(sameKey(unwrapped, contentKey)).toBe(true);

    // The unwrapped key opens the record.
    const plaintext = randomBytes(5000);
    const chunks = encryptRecord(plaintext, { key: contentKey, recordId, chunkSize: 2048 });
    expect(Buffer.from(decryptRecord(chunks, { key: unwrapped, recordId }))).toEqual(plaintext);
  });

  it('forward secrecy: the hospital key opens nothing, and a destroyed wrap key wraps nothing more', () => {
    const wrapped = wrap();
    const T = themis();
    // Neither side of Secure Message with the hospital's long-term key opens it.
    for (const pair of [
      [privateThemisKey(hospital.privateKey), publicThemisKey(device.publicKey)],
      [privateThemisKey(device.privateKey), publicThemisKey(hospital.publicKey)],
    ] as const) {
      expect(() => new T.SecureMessage(new T.KeyPair(pair[0], pair[1])).decrypt(wrapped)).toThrow();
    }
    expect(codeOf(() => unwrapWith(wrapped, { wrapKey: hospital }))).toBe('KEY_UNWRAP_FAILED');
    const once = createKeyWrapper();
    const before = once.wrap(contentKey, { recordId, device: device.publicKey });
    once.destroy();
    expect(codeOf(() => once.wrap(contentKey, { recordId, device: device.publicKey }))).toBe('INPUT_INVALID');
    // What it wrapped before still opens on the device: only the private half is gone.
    expect(
      sameKey(unwrapWith(before, { wrapKey: { publicKey: once.publicKey } as KeyPair }), contentKey),
    ).toBe(true);
  });

  it('gives every upload its own wrap key, and wraps differently every time', () => {
    expect(createKeyWrapper().publicKey.equals(createKeyWrapper().publicKey)).toBe(false);
    expect(Buffer.from(wrap()).equals(Buffer.from(wrap()))).toBe(false);
  });

  it('rejects another device, another wrap key and a tampered wrap: KEY_UNWRAP_FAILED', () => {
    const wrapped = wrap();
    expect(codeOf(() => unwrapWith(wrapped, { device: otherDevice }))).toBe('KEY_UNWRAP_FAILED');
    expect(codeOf(() => unwrapWith(wrapped, { wrapKey: otherWrapKey }))).toBe('KEY_UNWRAP_FAILED');
    for (let position = 0; position < wrapped.length; position++) {
      const tampered = wrapped.slice();
      tampered[position]! ^= 0x01;
      expect(codeOf(() => unwrapWith(tampered, {}))).toBe('KEY_UNWRAP_FAILED');
    }
    for (const bad of [new Uint8Array(0), wrapped.subarray(0, 52), wrapped.subarray(0, wrapped.length - 1)]) {
      expect(codeOf(() => unwrapWith(bad, {}))).toBe('KEY_UNWRAP_FAILED');
    }
    expect(codeOf(() => unwrapWith(new Uint8Array(MAX_WRAPPED_KEY_LENGTH + 1), {}))).toBe(
      'KEY_UNWRAP_FAILED',
    );
  });

  it('cannot be used for another record id: KEY_BINDING_MISMATCH', () => {
    const wrapped = wrap();
    for (const other of ['rec-2024-0002', 'rec-2024-000', 'rec-2024-00011', 'REC-2024-0001']) {
      expect(codeOf(() => unwrapWith(wrapped, { recordId: other }))).toBe('KEY_BINDING_MISMATCH');
    }
  });

  it('checks the device and wrap key named inside, not only the keys that open it', () => {
    const key = contentKeyBytes(contentKey);
    // Sealed between the right keys, but naming another device: refused.
    const forDevice = sealRaw(payload({ wrapKey, device: otherDevice, recordId, key }), wrapKey, device);
    expect(codeOf(() => unwrapWith(forDevice, { wrapKey }))).toBe('KEY_BINDING_MISMATCH');
    // Naming another wrap key (a wrapped key moved into another upload's manifest): refused.
    const forOther = sealRaw(payload({ wrapKey: otherWrapKey, device, recordId, key }), wrapKey, device);
    expect(codeOf(() => unwrapWith(forOther, { wrapKey }))).toBe('KEY_BINDING_MISMATCH');
    // A message the device sealed towards the wrap key, reflected back: names the wrong parties.
    const reflected = sealRaw(payload({ wrapKey: device, device: wrapKey, recordId, key }), device, wrapKey);
    expect(codeOf(() => unwrapWith(reflected, { wrapKey }))).toBe('KEY_BINDING_MISMATCH');
    // Exactly the documented layout: accepted.
    const documented = sealRaw(payload({ wrapKey, device, recordId, key }), wrapKey, device);
    expect(sameKey(unwrapWith(documented, { wrapKey }), contentKey)).toBe(true);
    // Wrong magic, version (v1's 0x01 included), length or key size: refused as malformed.
    const good = payload({ wrapKey, device, recordId, key });
    const variants = [
      Buffer.concat([Buffer.from('XBKW'), good.subarray(4)]),
      Buffer.concat([good.subarray(0, 4), Buffer.from([0x01]), good.subarray(5)]),
      Buffer.concat([good.subarray(0, 4), Buffer.from([0x03]), good.subarray(5)]),
      good.subarray(0, good.length - 1),
      Buffer.concat([good, Buffer.from([0])]),
    ];
    for (const variant of variants) {
      expect(codeOf(() => unwrapWith(sealRaw(variant, wrapKey, device), { wrapKey }))).toBe(
        'KEY_UNWRAP_FAILED',
      );
    }
  });

  it('is not a signature, and a signature is not a wrapped key', () => {
    const signed = sign(new Uint8Array(120).fill(7), hospital.privateKey);
    expect(codeOf(() => unwrapWith(signed, {}))).toBe('KEY_UNWRAP_FAILED');
  });

  it('never carries the content key or record id in the clear', () => {
    const wrapped = Buffer.from(wrap());
    const key = Buffer.from(contentKeyBytes(contentKey));
    expect(wrapped.includes(key)).toBe(false);
    expect(wrapped.includes(key.subarray(0, 8))).toBe(false);
    expect(wrapped.includes(Buffer.from(recordId))).toBe(false);
  });

  it('refuses keys of the wrong kind from untyped callers', () => {
    expect(codeOf(() => wrapper.wrap(contentKey, { recordId, device: device.privateKey as never }))).toBe(
      'KEY_INVALID',
    );
    expect(
      codeOf(() => wrapper.wrap(new Uint8Array(32) as never, { recordId, device: device.publicKey })),
    ).toBe('KEY_INVALID');
  });
});
