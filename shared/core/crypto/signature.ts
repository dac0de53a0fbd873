// Signing with Themis Secure Message (sign mode), for manifests, device certificates and
// receipts. The signed form carries the message itself:
//   type               4  0x26042620 as uint32 little-endian (bytes 20 26 04 26): EC signature
//   message length     4  uint32 little-endian
//   signature length   4  uint32 little-endian
//   message            m
//   signature          s  ECDSA P-256, DER (70-72 bytes)
// so a signed message is the message plus 82-84 bytes. verify() returns the message only if
// the signature checks out with the given public key.
//
// verify() is stricter than Themis: Themis ignores the low byte of the type and any bytes
// after the signature (kept for messages that wrappers before Themis 0.14 made too long), and
// ECDSA itself accepts (r, s) and (r, n − s) alike, so one signature could come in many byte
// strings. verify() accepts exactly the canonical form above with a minimal DER signature whose
// s is in the lower half of the group order ("low-s"); sign() always produces that form
// (Themis signs with either s, so the high one is replaced by n − s). A signed document
// therefore has one encoding, and its hash can serve as an id.
//
// A Signer is whatever holds a private key and signs with it: a key pair in memory
// (keyPairSigner), or a hardware token that returns a raw ECDSA signature, which
// signedFormFromRaw() turns into the same canonical form.
//
// One key may sign several kinds of document, so each signed document must say what it is
// (a `type` field in the JSON): a signature alone does not tell a receipt from a manifest.
// A signature does not hide the message: never sign anything that must stay confidential.
import { assertBytes } from './bytes.ts';
import { CryptoError } from './errors.ts';
import type { KeyPair, PrivateKey, PublicKey } from './keys.ts';
import { privateThemisKey, publicThemisKey } from './keys.ts';
import { callThemis, themis, tryThemis } from './themis.ts';

/** Largest message sign() accepts; keeps each Themis call small. Manifests are far smaller. */
export const MAX_SIGNED_MESSAGE_LENGTH = 4 * 1024 * 1024;
/** Largest signed form verify() accepts: the message limit plus room for header and signature. */
export const MAX_SIGNED_LENGTH = MAX_SIGNED_MESSAGE_LENGTH + 1024;
/** Length of the header in front of the message in a signed form. */
export const SIGNED_HEADER_LENGTH = 12;

const EC_SIGNED_TYPE = 0x26042620;
const MAX_SIGNATURE_LENGTH = 80;
/** The order n of the P-256 group, and n / 2: a low-s signature has 1 ≤ s ≤ n / 2. */
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HALF_ORDER = P256_ORDER >> 1n;

/** Whatever holds a private key and signs with it, in the canonical signed form. */
export interface Signer {
  readonly publicKey: PublicKey;
  sign(message: Uint8Array): Uint8Array;
}

/** Signs with a private key in memory or with a Signer (a hardware token, say). */
export function signWith(key: PrivateKey | Signer, message: Uint8Array): Uint8Array {
  return 'sign' in key ? key.sign(message) : sign(message, key);
}

/** A Signer over a key pair held in memory. */
export function keyPairSigner(keys: KeyPair): Signer {
  return Object.freeze({
    publicKey: keys.publicKey,
    sign: (message: Uint8Array) => sign(message, keys.privateKey),
  });
}

/** Signs a non-empty message; returns the signed form, which contains the message. */
export function sign(message: Uint8Array, privateKey: PrivateKey): Uint8Array {
  assertBytes(message, 'message');
  if (message.length === 0) throw new CryptoError('INPUT_INVALID', 'cannot sign an empty message');
  if (message.length > MAX_SIGNED_MESSAGE_LENGTH) {
    throw new CryptoError('INPUT_TOO_LARGE', `message exceeds ${MAX_SIGNED_MESSAGE_LENGTH} bytes`);
  }
  const key = privateThemisKey(privateKey);
  const signed = callThemis(
    () => new (themis().SecureMessageSign)(key).sign(message),
    () => new CryptoError('THEMIS_FAILURE', 'Themis could not sign the message'),
  );
  if (canonicalMessageLength(signed) !== message.length) {
    throw new CryptoError('THEMIS_FAILURE', 'Themis produced a signed message in an unexpected form');
  }
  const { r, s } = parseDerSignature(signed.subarray(SIGNED_HEADER_LENGTH + message.length));
  return s > HALF_ORDER ? signedFormOf(message, r, P256_ORDER - s) : signed;
}

/**
 * The canonical signed form of `message` with a raw ECDSA P-256 signature (r ‖ s, 32 bytes
 * each, as PKCS#11's CKM_ECDSA returns it over SHA-256(message)). It is not verified here:
 * callers verify it with the signer's public key before trusting their token.
 */
export function signedFormFromRaw(message: Uint8Array, raw: Uint8Array): Uint8Array {
  assertBytes(message, 'message');
  assertBytes(raw, 'raw signature');
  if (message.length === 0 || message.length > MAX_SIGNED_MESSAGE_LENGTH || raw.length !== 64) {
    throw new CryptoError('INPUT_INVALID', 'a raw signature is 64 bytes over a non-empty message');
  }
  const r = bigIntOf(raw.subarray(0, 32));
  const s = bigIntOf(raw.subarray(32));
  if (r === 0n || s === 0n || r >= P256_ORDER || s >= P256_ORDER) {
    throw new CryptoError('INPUT_INVALID', 'the raw signature is out of range');
  }
  return signedFormOf(message, r, s > HALF_ORDER ? P256_ORDER - s : s);
}

/** Verifies a signed form and returns the message it carries, or throws SIGNATURE_INVALID. */
export function verify(signed: Uint8Array, publicKey: PublicKey): Uint8Array {
  assertBytes(signed, 'signed message');
  const key = publicThemisKey(publicKey);
  const messageLength = canonicalMessageLength(signed);
  const { s } = parseDerSignature(signed.subarray(SIGNED_HEADER_LENGTH + messageLength));
  if (s > HALF_ORDER) throw new CryptoError('SIGNATURE_INVALID', 'the signature is not in low-s form');
  const message = tryThemis(() => new (themis().SecureMessageVerify)(key).verify(signed));
  if (message === undefined || message.length !== messageLength) {
    throw new CryptoError('SIGNATURE_INVALID', 'the signature does not verify');
  }
  return message;
}

// ---- DER: SEQUENCE { INTEGER r, INTEGER s }, each INTEGER minimal and positive ----

function bigIntOf(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

function derInteger(value: bigint): number[] {
  const bytes: number[] = [];
  for (let rest = value; rest > 0n; rest >>= 8n) bytes.unshift(Number(rest & 0xffn));
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return [0x02, bytes.length, ...bytes];
}

function signedFormOf(message: Uint8Array, r: bigint, s: bigint): Uint8Array {
  const body = [...derInteger(r), ...derInteger(s)];
  const der = [0x30, body.length, ...body];
  const signed = new Uint8Array(SIGNED_HEADER_LENGTH + message.length + der.length);
  const header = new DataView(signed.buffer);
  header.setUint32(0, EC_SIGNED_TYPE, true);
  header.setUint32(4, message.length, true);
  header.setUint32(8, der.length, true);
  signed.set(message, SIGNED_HEADER_LENGTH);
  signed.set(der, SIGNED_HEADER_LENGTH + message.length);
  return signed;
}

/** r and s of a strictly minimal DER signature, or SIGNATURE_INVALID. */
function parseDerSignature(der: Uint8Array): { r: bigint; s: bigint } {
  const malformed = (): CryptoError =>
    new CryptoError('SIGNATURE_INVALID', 'the signature is not minimal DER');
  if (der.length < 8 || der[0] !== 0x30 || der[1] !== der.length - 2) throw malformed();
  let at = 2;
  const integer = (): bigint => {
    if (der[at] !== 0x02) throw malformed();
    const length = der[at + 1]!;
    const start = at + 2;
    if (length === 0 || length > 33 || start + length > der.length) throw malformed();
    const bytes = der.subarray(start, start + length);
    // Positive and minimal: no sign bit set, and a leading zero only where the sign bit needs it.
    if (bytes[0]! & 0x80 || (bytes[0] === 0 && (length === 1 || !(bytes[1]! & 0x80)))) throw malformed();
    at = start + length;
    return bigIntOf(bytes);
  };
  const r = integer();
  const s = integer();
  if (at !== der.length || r === 0n || s === 0n || r >= P256_ORDER || s >= P256_ORDER) throw malformed();
  return { r, s };
}

/** The message length a canonical signed form declares, or SIGNATURE_INVALID. */
function canonicalMessageLength(signed: Uint8Array): number {
  const malformed = (): CryptoError =>
    new CryptoError('SIGNATURE_INVALID', 'the signed message is malformed');
  if (signed.length < SIGNED_HEADER_LENGTH || signed.length > MAX_SIGNED_LENGTH) throw malformed();
  const header = new DataView(signed.buffer, signed.byteOffset, SIGNED_HEADER_LENGTH);
  const type = header.getUint32(0, true);
  const messageLength = header.getUint32(4, true);
  const signatureLength = header.getUint32(8, true);
  if (type !== EC_SIGNED_TYPE) throw malformed();
  if (messageLength === 0 || signatureLength === 0 || signatureLength > MAX_SIGNATURE_LENGTH)
    throw malformed();
  if (SIGNED_HEADER_LENGTH + messageLength + signatureLength !== signed.length) throw malformed();
  return messageLength;
}
