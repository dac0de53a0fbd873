// EC_SIGN_ED25519 keys. Unlike the ECDSA algorithms, Cloud KMS signs the message itself (the
// request's `data`), never a digest, and the signature is the plain 64-byte RFC 8032 one.
import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';

export const ED25519_ALGORITHM = 'EC_SIGN_ED25519';

/** The private key as PKCS#8 DER. */
export function generateEd25519Key(): Buffer {
  return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'der' });
}

export function ed25519Sign(pkcs8: Buffer, data: Buffer): Buffer {
  return sign(null, data, createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
}
