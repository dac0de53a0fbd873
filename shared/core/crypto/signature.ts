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
// after the signature (kept for messages that wrappers before Themis 0.14 made too long), so
// one signature could come in many byte strings. verify() accepts exactly the canonical form
// above, which Themis 0.14 and later produce on every platform, so a signed document has one
// encoding and its hash can serve as an id.
//
// One key may sign several kinds of document, so each signed document must say what it is
// (a `type` field in the JSON): a signature alone does not tell a receipt from a manifest.
// A signature does not hide the message: never sign anything that must stay confidential.
import { assertBytes } from './bytes.ts';
import { CryptoError } from './errors.ts';
import type { PrivateKey, PublicKey } from './keys.ts';
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
  return signed;
}

/** Verifies a signed form and returns the message it carries, or throws SIGNATURE_INVALID. */
export function verify(signed: Uint8Array, publicKey: PublicKey): Uint8Array {
  assertBytes(signed, 'signed message');
  const key = publicThemisKey(publicKey);
  const messageLength = canonicalMessageLength(signed);
  const message = tryThemis(() => new (themis().SecureMessageVerify)(key).verify(signed));
  if (message === undefined || message.length !== messageLength) {
    throw new CryptoError('SIGNATURE_INVALID', 'the signature does not verify');
  }
  return message;
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
