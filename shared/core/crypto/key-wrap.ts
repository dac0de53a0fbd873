// Wrapping a record's content key for one device with Themis Secure Message (encrypt mode).
//
// The hospital wraps with its private key and the device's public key; the device unwraps
// with its private key and the hospital's public key. Secure Message derives the key from
// ECDH of the two key pairs, so a wrapped key opens only for that device and only with the
// hospital's public key: it both hides the key and shows that the hospital sent it.
//
// The sealed payload also names the record and both parties, and unwrapping checks them, so
// a wrapped key cannot be replayed for another record, device or hospital, nor reflected:
//   "CBKW"             4  ASCII magic: Clinic Bridge Key Wrap
//   version            1  0x01
//   hospital key hash 32  SHA-256 of the hospital's 45-byte public key
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
  privateThemisKey,
  publicThemisKey,
} from './keys.ts';
import { callThemis, themis, tryThemis } from './themis.ts';

export const KEY_WRAP_VERSION = 1;
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

export interface WrapOptions {
  readonly recordId: string;
  /** The hospital's key pair: the private key seals, the public key is named in the payload. */
  readonly hospital: KeyPair;
  /** The device's public key, from a certificate the caller has already verified. */
  readonly device: PublicKey;
}

export interface UnwrapOptions {
  readonly recordId: string;
  /** The device's own key pair. */
  readonly device: KeyPair;
  /** The hospital's public key, as the device learnt it when pairing (from the QR code). */
  readonly hospital: PublicKey;
}

/** Wraps a content key for one device of the patient. */
export function wrapContentKey(contentKey: ContentKey, options: WrapOptions): Uint8Array {
  assertKeyPair(options.hospital, 'hospital');
  const own = privateThemisKey(options.hospital.privateKey);
  const peer = publicThemisKey(options.device);
  const payload = encodePayload(
    sha256(options.hospital.publicKey.toBytes()),
    sha256(options.device.toBytes()),
    recordIdBytes(options.recordId),
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
}

/** Unwraps a content key on the device. Throws KEY_UNWRAP_FAILED or KEY_BINDING_MISMATCH. */
export function unwrapContentKey(wrapped: Uint8Array, options: UnwrapOptions): ContentKey {
  assertBytes(wrapped, 'wrapped key');
  assertKeyPair(options.device, 'device');
  const id = recordIdBytes(options.recordId);
  const hospitalKey = publicThemisKey(options.hospital);
  if (wrapped.length <= SECURE_MESSAGE_OVERHEAD || wrapped.length > MAX_WRAPPED_KEY_LENGTH) {
    throw new CryptoError('KEY_UNWRAP_FAILED', 'the wrapped key has an impossible length');
  }
  const own = privateThemisKey(options.device.privateKey);
  const payload = tryThemis(() => secureMessage(own, hospitalKey).decrypt(wrapped));
  if (payload === undefined) {
    throw new CryptoError(
      'KEY_UNWRAP_FAILED',
      'the wrapped key does not open with these device and hospital keys',
    );
  }
  try {
    return decodePayload(payload, {
      hospital: sha256(options.hospital.toBytes()),
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

function encodePayload(
  hospital: Uint8Array,
  device: Uint8Array,
  id: Uint8Array,
  key: Uint8Array,
): Uint8Array {
  const payload = new Uint8Array(FIXED_PAYLOAD_LENGTH + id.length);
  let offset = 0;
  payload.set(MAGIC, offset);
  offset += MAGIC.length;
  payload[offset] = KEY_WRAP_VERSION;
  offset += 1;
  payload.set(hospital, offset);
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
  expected: { hospital: Uint8Array; device: Uint8Array; recordId: Uint8Array },
): ContentKey {
  const malformed = (): CryptoError =>
    new CryptoError('KEY_UNWRAP_FAILED', 'the wrapped key payload is malformed');
  if (payload.length < FIXED_PAYLOAD_LENGTH) throw malformed();
  if (!equalBytes(payload.subarray(0, MAGIC.length), Uint8Array.from(MAGIC))) throw malformed();
  if (payload[4] !== KEY_WRAP_VERSION) throw malformed();
  const hospital = payload.subarray(5, 5 + HASH_LENGTH);
  const device = payload.subarray(5 + HASH_LENGTH, 5 + 2 * HASH_LENGTH);
  const idOffset = 5 + 2 * HASH_LENGTH;
  const idLength = new DataView(payload.buffer, payload.byteOffset).getUint16(idOffset, false);
  if (payload.length !== FIXED_PAYLOAD_LENGTH + idLength) throw malformed();
  const id = payload.subarray(idOffset + 2, idOffset + 2 + idLength);
  const key = payload.subarray(idOffset + 2 + idLength);
  if (!equalBytes(hospital, expected.hospital)) {
    throw new CryptoError('KEY_BINDING_MISMATCH', 'the wrapped key names another hospital');
  }
  if (!equalBytes(device, expected.device)) {
    throw new CryptoError('KEY_BINDING_MISMATCH', 'the wrapped key is for another device');
  }
  if (!equalBytes(id, expected.recordId)) {
    throw new CryptoError('KEY_BINDING_MISMATCH', 'the wrapped key is for another record');
  }
  return contentKeyFromBytes(key);
}
