// Wrapping a record's content key for one device with Themis Secure Message (encrypt mode),
// forward-secret against the hospital's own key.
//
// Each upload gets a fresh wrap key pair. The connector wraps the content key for each device
// with the wrap key's private half and the device's public key, puts the wrap key's public half
// in the manifest it signs, and destroys the private half when the upload is sealed. The device
// unwraps with its private key and that public key, after verifying the manifest signature with
// the hospital key it pinned at pairing. So the hospital key only signs: whoever later holds the
// hospital's private key and every stored byte still cannot open a wrapped key, because the
// private half that could is gone (PROTOCOL.md §2.4).
//
// The sealed payload also names the record and both keys, and unwrapping checks them, so a
// wrapped key cannot be replayed for another record, device or upload, nor reflected:
//   "CBKW"             4  ASCII magic: Clinic Bridge Key Wrap
//   version            1  0x02
//   wrap key hash     32  SHA-256 of the upload's 45-byte wrap public key
//   device key hash   32  SHA-256 of the device's 45-byte public key
//   record id length   2  uint16 big-endian, 1..255
//   record id          n  UTF-8
//   content key       32
// Payload = 103 + n bytes; the wrapped key is payload + 52 (Secure Message encryption).
import { assertBytes, equalBytes, MAX_RECORD_ID_BYTES, recordIdBytes, sha256 } from './bytes.ts';
import { CryptoError } from './errors.ts';
import type { ContentKey, KeyPair, PublicKey } from './keys.ts';
import {
  assertKeyPair,
  CONTENT_KEY_LENGTH,
  contentKeyBytes,
  contentKeyFromBytes,
  generateKeyPair,
  privateThemisKey,
  publicThemisKey,
} from './keys.ts';
import { callThemis, themis, tryThemis } from './themis.ts';

export const KEY_WRAP_VERSION = 2;
/** Bytes Themis Secure Message encryption adds to its payload. */
export const SECURE_MESSAGE_OVERHEAD = 52;

const MAGIC = [0x43, 0x42, 0x4b, 0x57]; // "CBKW"
const HASH_LENGTH = 32;
const FIXED_PAYLOAD_LENGTH = MAGIC.length + 1 + HASH_LENGTH * 2 + 2 + CONTENT_KEY_LENGTH;
/** Upper bound of a wrapped key's length; longer input is refused before Themis sees it. */
export const MAX_WRAPPED_KEY_LENGTH = FIXED_PAYLOAD_LENGTH + MAX_RECORD_ID_BYTES + SECURE_MESSAGE_OVERHEAD;

/** Length of the wrapped key for a record id of `recordIdLength` UTF-8 bytes. */
export function wrappedKeyLength(recordIdLength: number): number {
  return FIXED_PAYLOAD_LENGTH + recordIdLength + SECURE_MESSAGE_OVERHEAD;
}

export interface WrapTarget {
  readonly recordId: string;
  /** The device's public key, from a certificate the caller has already verified. */
  readonly device: PublicKey;
}

export interface UnwrapOptions {
  readonly recordId: string;
  /** The device's own key pair. */
  readonly device: KeyPair;
  /** The upload's wrap public key, from a manifest whose hospital signature has been verified. */
  readonly wrapKey: PublicKey;
}

/** One upload's wrap key: wraps content keys for its devices until destroy() erases it. */
export interface KeyWrapper {
  /** Goes into the signed manifest; devices unwrap with it. */
  readonly publicKey: PublicKey;
  wrap(contentKey: ContentKey, target: WrapTarget): Uint8Array;
  /** Zeroes the private half. Call it as soon as the upload is sealed. */
  destroy(): void;
}

/** A fresh wrap key pair for one upload. */
export function createKeyWrapper(): KeyWrapper {
  const pair = generateKeyPair();
  const own = privateThemisKey(pair.privateKey);
  let destroyed = false;
  return Object.freeze({
    publicKey: pair.publicKey,
    wrap(contentKey: ContentKey, target: WrapTarget): Uint8Array {
      if (destroyed) throw new CryptoError('INPUT_INVALID', 'the wrap key has been destroyed');
      const peer = publicThemisKey(target.device);
      const payload = encodePayload(
        sha256(pair.publicKey.toBytes()),
        sha256(target.device.toBytes()),
        recordIdBytes(target.recordId),
        contentKeyBytes(contentKey),
      );
      try {
        return callThemis(
          () => secureMessage(own, peer).encrypt(payload),
          () => new CryptoError('THEMIS_FAILURE', 'Themis could not wrap the content key'),
        );
      } finally {
        payload.fill(0);
      }
    },
    destroy() {
      // wasm-themis keys are JavaScript byte arrays, copied into WebAssembly only for a call.
      own.fill(0);
      destroyed = true;
    },
  });
}

/** Unwraps a content key on the device. Throws KEY_UNWRAP_FAILED or KEY_BINDING_MISMATCH. */
export function unwrapContentKey(wrapped: Uint8Array, options: UnwrapOptions): ContentKey {
  assertBytes(wrapped, 'wrapped key');
  assertKeyPair(options.device, 'device');
  const id = recordIdBytes(options.recordId);
  const wrapKey = publicThemisKey(options.wrapKey);
  if (wrapped.length <= SECURE_MESSAGE_OVERHEAD || wrapped.length > MAX_WRAPPED_KEY_LENGTH) {
    throw new CryptoError('KEY_UNWRAP_FAILED', 'the wrapped key has an impossible length');
  }
  const own = privateThemisKey(options.device.privateKey);
  const payload = tryThemis(() => secureMessage(own, wrapKey).decrypt(wrapped));
  if (payload === undefined) {
    throw new CryptoError('KEY_UNWRAP_FAILED', 'the wrapped key does not open with this device key');
  }
  try {
    return decodePayload(payload, {
      wrapKey: sha256(options.wrapKey.toBytes()),
      device: sha256(options.device.publicKey.toBytes()),
      recordId: id,
    });
  } finally {
    payload.fill(0);
  }
}

/**
 * Secure Message between our private key and the peer's public key. wasm-themis types only
 * its KeyPair form; a KeyPair there is just the two keys side by side, not a matching pair.
 */
function secureMessage(
  own: ReturnType<typeof privateThemisKey>,
  peer: ReturnType<typeof publicThemisKey>,
): InstanceType<ReturnType<typeof themis>['SecureMessage']> {
  const T = themis();
  return new T.SecureMessage(new T.KeyPair(own, peer));
}

function encodePayload(wrapKey: Uint8Array, device: Uint8Array, id: Uint8Array, key: Uint8Array): Uint8Array {
  const payload = new Uint8Array(FIXED_PAYLOAD_LENGTH + id.length);
  let offset = 0;
  payload.set(MAGIC, offset);
  offset += MAGIC.length;
  payload[offset] = KEY_WRAP_VERSION;
  offset += 1;
  payload.set(wrapKey, offset);
  offset += HASH_LENGTH;
  payload.set(device, offset);
  offset += HASH_LENGTH;
  new DataView(payload.buffer).setUint16(offset, id.length, false);
  offset += 2;
  payload.set(id, offset);
  offset += id.length;
  payload.set(key, offset);
  return payload;
}

function decodePayload(
  payload: Uint8Array,
  expected: { wrapKey: Uint8Array; device: Uint8Array; recordId: Uint8Array },
): ContentKey {
  const malformed = (): CryptoError =>
    new CryptoError('KEY_UNWRAP_FAILED', 'the wrapped key payload is malformed');
  if (payload.length < FIXED_PAYLOAD_LENGTH) throw malformed();
  if (!equalBytes(payload.subarray(0, MAGIC.length), Uint8Array.from(MAGIC))) throw malformed();
  if (payload[4] !== KEY_WRAP_VERSION) throw malformed();
  const wrapKey = payload.subarray(5, 5 + HASH_LENGTH);
  const device = payload.subarray(5 + HASH_LENGTH, 5 + 2 * HASH_LENGTH);
  const idOffset = 5 + 2 * HASH_LENGTH;
  const idLength = new DataView(payload.buffer, payload.byteOffset).getUint16(idOffset, false);
  if (payload.length !== FIXED_PAYLOAD_LENGTH + idLength) throw malformed();
  const id = payload.subarray(idOffset + 2, idOffset + 2 + idLength);
  const key = payload.subarray(idOffset + 2 + idLength);
  if (!equalBytes(wrapKey, expected.wrapKey)) {
    throw new CryptoError('KEY_BINDING_MISMATCH', 'the wrapped key names another wrap key');
  }
  if (!equalBytes(device, expected.device)) {
    throw new CryptoError('KEY_BINDING_MISMATCH', 'the wrapped key is for another device');
  }
  if (!equalBytes(id, expected.recordId)) {
    throw new CryptoError('KEY_BINDING_MISMATCH', 'the wrapped key is for another record');
  }
  return contentKeyFromBytes(key);
}
