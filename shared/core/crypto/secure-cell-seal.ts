// Themis Secure Cell, Seal mode with a symmetric key, over node:crypto (docs/PROTOCOL.md §2.3).
// Byte for byte what Themis 0.13+ produces and opens on every platform, at the speed of
// OpenSSL's AES-256-GCM instead of WebAssembly's; wasm-themis stays the reference that the
// differential tests (test/unit/crypto-secure-cell-seal.test.ts) hold this to, both ways.
//
// Sealed form: a 44-byte authentication token, then the ciphertext (as long as the message):
//   alg          uint32 LE  0x40010100 (AES-GCM, 256-bit key, Soter KDF)
//   iv length    uint32 LE  12
//   tag length   uint32 LE  16
//   msg length   uint32 LE  length of the message and of the ciphertext
//   iv           12 bytes   random
//   auth tag     16 bytes   GCM tag over the ciphertext, with the context as AAD
// Message key: the first 32 bytes of HMAC-SHA256(master key,
//   00 00 00 01 ‖ "Themis secure cell message key" ‖ 00 ‖ msg length (uint32 LE) ‖ context).
// Cells from Themis before 0.13 on 64-bit platforms put the length in the KDF as uint64 LE.
// They are refused: wasm-themis 0.15 (the reference engine) does not open them, and a fallback
// here alone would make the two engines accept different cells (no Clinic Bridge version ever
// sealed one).
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { CryptoError } from './errors.ts';

export const SEAL_ALGORITHM = 0x4001_0100;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;
/** Bytes the token adds in front of every sealed message. */
export const SEAL_TOKEN_LENGTH = 16 + IV_LENGTH + TAG_LENGTH;
const KDF_PREFIX = Buffer.concat([
  Buffer.from([0, 0, 0, 1]),
  Buffer.from('Themis secure cell message key', 'latin1'),
  Buffer.from([0]),
]);
const MAX_MESSAGE_LENGTH = 0xffff_ffff;

function messageKey(masterKey: Uint8Array, length: number, context: Uint8Array): Buffer {
  const lengthBytes = Buffer.alloc(4);
  lengthBytes.writeUInt32LE(length);
  const hmac = createHmac('sha256', masterKey).update(KDF_PREFIX).update(lengthBytes);
  if (context.length > 0) hmac.update(context);
  return hmac.digest();
}

/**
 * Seals `message` (1 byte to 4 GiB - 1; given whole or as consecutive parts, which are never
 * joined in plaintext) under `masterKey`, bound to `context` (may be empty).
 */
export function sealCell(
  masterKey: Uint8Array,
  message: Uint8Array | readonly Uint8Array[],
  context: Uint8Array,
): Uint8Array {
  const pieces = sealCellPieces(masterKey, message, context);
  const out = Buffer.concat(pieces);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/**
 * The same sealed cell as consecutive pieces — the token, then the ciphertext as the cipher
 * produced it — so a writer can put them out one after the other without joining them: at
 * AES-NI speed, one more copy of every chunk costs half the throughput.
 */
export function sealCellPieces(
  masterKey: Uint8Array,
  message: Uint8Array | readonly Uint8Array[],
  context: Uint8Array,
): Uint8Array[] {
  const parts = message instanceof Uint8Array ? [message] : message;
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  if (masterKey.length === 0) throw new CryptoError('KEY_INVALID', 'the master key is empty');
  if (length === 0 || length > MAX_MESSAGE_LENGTH) {
    throw new CryptoError('INPUT_INVALID', 'Secure Cell seals 1 byte to 4 GiB - 1');
  }
  const iv = randomBytes(IV_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', messageKey(masterKey, length, context), iv, {
    authTagLength: TAG_LENGTH,
  });
  if (context.length > 0) cipher.setAAD(context);
  const ciphertext = parts.map((part) => cipher.update(part));
  const tail = cipher.final(); // GCM is a stream mode: nothing is held back
  if (tail.length > 0) ciphertext.push(tail);
  const token = Buffer.alloc(SEAL_TOKEN_LENGTH);
  token.writeUInt32LE(SEAL_ALGORITHM, 0);
  token.writeUInt32LE(IV_LENGTH, 4);
  token.writeUInt32LE(TAG_LENGTH, 8);
  token.writeUInt32LE(length, 12);
  iv.copy(token, 16);
  cipher.getAuthTag().copy(token, 16 + IV_LENGTH);
  return [token, ...ciphertext].map((piece) => new Uint8Array(piece.buffer, piece.byteOffset, piece.length));
}

/** Opens a sealed cell; undefined if it is malformed or fails authentication (never throws for those). */
export function openCell(
  masterKey: Uint8Array,
  sealed: Uint8Array,
  context: Uint8Array,
): Uint8Array | undefined {
  if (masterKey.length === 0 || sealed.length <= SEAL_TOKEN_LENGTH) return undefined;
  const view = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length);
  if (
    view.readUInt32LE(0) !== SEAL_ALGORITHM ||
    view.readUInt32LE(4) !== IV_LENGTH ||
    view.readUInt32LE(8) !== TAG_LENGTH ||
    view.readUInt32LE(12) !== sealed.length - SEAL_TOKEN_LENGTH
  ) {
    return undefined;
  }
  const length = sealed.length - SEAL_TOKEN_LENGTH;
  const iv = view.subarray(16, 16 + IV_LENGTH);
  const tag = view.subarray(16 + IV_LENGTH, SEAL_TOKEN_LENGTH);
  const ciphertext = view.subarray(SEAL_TOKEN_LENGTH);
  const decipher = createDecipheriv('aes-256-gcm', messageKey(masterKey, length, context), iv, {
    authTagLength: TAG_LENGTH,
  });
  decipher.setAuthTag(tag);
  if (context.length > 0) decipher.setAAD(context);
  const opened = decipher.update(ciphertext);
  try {
    const tail = decipher.final();
    const message = tail.length === 0 ? opened : Buffer.concat([opened, tail]);
    return new Uint8Array(message.buffer, message.byteOffset, message.length);
  } catch {
    opened.fill(0); // unauthenticated plaintext never leaves
    return undefined;
  }
}
