// GOOGLE_SYMMETRIC_ENCRYPTION as AES-256-GCM. The ciphertext is self-describing like real
// KMS ciphertext: it names the version that made it, so a key can decrypt what any of its
// versions encrypted after a rotation. Layout (our own; real KMS's is opaque too):
//   format (1) | version id (4, big-endian) | IV (12) | AES-GCM ciphertext | tag (16)
// The header is authenticated with the caller's additional authenticated data.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const FORMAT = 0x01;
const HEADER = 5;
const IV = 12;
const TAG = 16;
export const SYMMETRIC_OVERHEAD = HEADER + IV + TAG;

export function generateSymmetricKey(): Buffer {
  return randomBytes(32);
}

export function encryptSymmetric(key: Buffer, versionId: number, plaintext: Buffer, aad: Buffer): Buffer {
  const header = Buffer.alloc(HEADER);
  header.writeUInt8(FORMAT, 0);
  header.writeUInt32BE(versionId, 1);
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.concat([header, aad]));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, iv, body, cipher.getAuthTag()]);
}

/** The version named in the ciphertext, or null when it is not our format. */
export function ciphertextVersion(ciphertext: Buffer): number | null {
  if (ciphertext.length < SYMMETRIC_OVERHEAD || ciphertext[0] !== FORMAT) return null;
  const id = ciphertext.readUInt32BE(1);
  return id > 0 ? id : null;
}

/** The plaintext, or null when the key, the data or the AAD do not match. */
export function decryptSymmetric(key: Buffer, ciphertext: Buffer, aad: Buffer): Buffer | null {
  if (ciphertext.length < SYMMETRIC_OVERHEAD) return null;
  const header = ciphertext.subarray(0, HEADER);
  const iv = ciphertext.subarray(HEADER, HEADER + IV);
  const body = ciphertext.subarray(HEADER + IV, ciphertext.length - TAG);
  const tag = ciphertext.subarray(ciphertext.length - TAG);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(Buffer.concat([header, aad]));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return null;
  }
}
