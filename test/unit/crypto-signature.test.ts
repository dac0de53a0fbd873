import { beforeAll, describe, expect, it } from 'vitest';
import type { KeyPair } from '../../shared/core/crypto/index.ts';
import {
  createKeyWrapper,
  generateContentKey,
  generateKeyPair,
  MAX_SIGNED_MESSAGE_LENGTH,
  sign,
  verify,
} from '../../shared/core/crypto/index.ts';
import { codeOf } from '../helpers/crypto-errors.ts';

let signer: KeyPair;
let stranger: KeyPair;
const message = new TextEncoder().encode(JSON.stringify({ type: 'manifest', recordId: 'rec-1', chunks: 3 }));

beforeAll(async () => {
  signer = generateKeyPair();
  stranger = generateKeyPair();
});

describe('sign and verify', () => {
  it('returns the original message when the signature verifies', () => {
    const signed = sign(message, signer.privateKey);
    expect(Buffer.from(verify(signed, signer.publicKey))).toEqual(Buffer.from(message));
    // The signed form is header (12) + message + DER signature: it does not hide the message.
    expect(Buffer.from(signed).includes(Buffer.from(message))).toBe(true);
    expect(signed.length - message.length).toBeGreaterThanOrEqual(12 + 8);
    expect(signed.length - message.length).toBeLessThanOrEqual(12 + 72);
    expect(Buffer.from(signed.subarray(12, 12 + message.length))).toEqual(Buffer.from(message));
  });

  it('rejects a flipped byte anywhere: SIGNATURE_INVALID', () => {
    const signed = sign(message, signer.privateKey);
    for (let position = 0; position < signed.length; position++) {
      const tampered = signed.slice();
      tampered[position]! ^= 0x01;
      expect(codeOf(() => verify(tampered, signer.publicKey))).toBe('SIGNATURE_INVALID');
    }
  });

  it('rejects the wrong public key, truncation, extension and garbage: SIGNATURE_INVALID', () => {
    const signed = sign(message, signer.privateKey);
    expect(codeOf(() => verify(signed, stranger.publicKey))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => verify(signed.subarray(0, signed.length - 1), signer.publicKey))).toBe(
      'SIGNATURE_INVALID',
    );
    expect(codeOf(() => verify(new Uint8Array([...signed, 0]), signer.publicKey))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => verify(new Uint8Array(0), signer.publicKey))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => verify(new Uint8Array(100), signer.publicKey))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => verify(new Uint8Array(MAX_SIGNED_MESSAGE_LENGTH + 2048), signer.publicKey))).toBe(
      'SIGNATURE_INVALID',
    );
  });

  it('does not accept a signature over one message for another', () => {
    const a = sign(new TextEncoder().encode('{"type":"receipt","n":1}'), signer.privateKey);
    const b = sign(new TextEncoder().encode('{"type":"receipt","n":2}'), signer.privateKey);
    // a's header and message with b's signature, lengths patched to stay well-formed.
    const bSignature = b.subarray(12 + 24);
    const spliced = new Uint8Array([...a.subarray(0, 12 + 24), ...bSignature]);
    new DataView(spliced.buffer).setUint32(8, bSignature.length, true);
    expect(codeOf(() => verify(spliced, signer.publicKey))).toBe('SIGNATURE_INVALID');
  });

  it('accepts only the canonical form, although Themis itself is more lenient', () => {
    const signed = sign(message, signer.privateKey);
    const view = new DataView(signed.buffer, signed.byteOffset);
    expect(view.getUint32(0, true)).toBe(0x26042620);
    expect(view.getUint32(4, true)).toBe(message.length);
    expect(12 + message.length + view.getUint32(8, true)).toBe(signed.length);
    // Themis ignores the low byte of the type and bytes after the signature; we do not.
    const otherType = signed.slice();
    otherType[0] = 0x21;
    expect(codeOf(() => verify(otherType, signer.publicKey))).toBe('SIGNATURE_INVALID');
    for (const extra of [1, 2, 64]) {
      expect(
        codeOf(() => verify(new Uint8Array([...signed, ...new Uint8Array(extra)]), signer.publicKey)),
      ).toBe('SIGNATURE_INVALID');
    }
    const longerSignature = new Uint8Array([...signed, 0]);
    new DataView(longerSignature.buffer).setUint32(8, view.getUint32(8, true) + 1, true);
    expect(codeOf(() => verify(longerSignature, signer.publicKey))).toBe('SIGNATURE_INVALID');
  });

  it('rejects an encrypted Secure Message (a wrapped key) as a signature', () => {
    const device = generateKeyPair();
    const wrapped = createKeyWrapper().wrap(generateContentKey(), {
      recordId: 'r',
      device: device.publicKey,
    });
    expect(codeOf(() => verify(wrapped, signer.publicKey))).toBe('SIGNATURE_INVALID');
  });

  it('refuses empty and oversized messages and keys of the wrong kind', () => {
    expect(codeOf(() => sign(new Uint8Array(0), signer.privateKey))).toBe('INPUT_INVALID');
    expect(codeOf(() => sign(new Uint8Array(MAX_SIGNED_MESSAGE_LENGTH + 1), signer.privateKey))).toBe(
      'INPUT_TOO_LARGE',
    );
    expect(codeOf(() => sign('text' as never, signer.privateKey))).toBe('INPUT_INVALID');
    const signed = sign(message, signer.privateKey);
    expect(codeOf(() => verify(signed, signer.privateKey as never))).toBe('KEY_INVALID');
  });
});
