// Ed25519 note signatures (signed-note type 0x01) on the platform's Ed25519 (node:crypto on
// Node, noble in browsers). Keys come from a 32-byte RFC 8032 seed, so tests and vectors can use
// a fixed key; the project can put its own NoteSigner (KMS, HSM) in place of ed25519Signer
// without touching the note code.
import { platform } from '#platform';
import { TlogError } from './errors.ts';
import { computeKeyId, formatVerifierKey, parseVerifierKey, SIGNATURE_TYPE_ED25519 } from './keys.ts';
import type { NoteSigner, NoteVerifier } from './note.ts';

export const ED25519_SEED_SIZE = 32;
export const ED25519_PUBLIC_KEY_SIZE = 32;
export const ED25519_SIGNATURE_SIZE = 64;

/** A private key, ready to sign: parsing it once is the expensive part. */
export type Ed25519SigningKey = (message: Uint8Array) => Uint8Array;
/** A public key, ready to verify. */
export type Ed25519VerifyingKey = (message: Uint8Array, signature: Uint8Array) => boolean;

export function ed25519PrivateKey(seed: Uint8Array): Ed25519SigningKey {
  if (seed.length !== ED25519_SEED_SIZE) throw new TlogError('KEY_INVALID', 'an Ed25519 seed is 32 bytes');
  return platform.ed25519Signer(seed);
}

export function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  if (seed.length !== ED25519_SEED_SIZE) throw new TlogError('KEY_INVALID', 'an Ed25519 seed is 32 bytes');
  return platform.ed25519PublicOf(seed);
}

export function ed25519VerifyKey(publicKey: Uint8Array): Ed25519VerifyingKey {
  if (publicKey.length !== ED25519_PUBLIC_KEY_SIZE) {
    throw new TlogError('KEY_INVALID', 'an Ed25519 public key is 32 bytes');
  }
  const key = platform.ed25519Verifier(publicKey);
  if (key === undefined) throw new TlogError('KEY_INVALID', 'not an Ed25519 public key');
  return key;
}

/** Raw Ed25519 over `message`; false for any malformed input. */
export function ed25519Verify(key: Ed25519VerifyingKey, message: Uint8Array, signature: Uint8Array): boolean {
  return signature.length === ED25519_SIGNATURE_SIZE && key(message, signature);
}

export function ed25519Sign(key: Ed25519SigningKey, message: Uint8Array): Uint8Array {
  return key(message);
}

export interface Ed25519NoteSigner extends NoteSigner {
  readonly publicKey: Uint8Array;
  /** `<name>+<id>+<base64(0x01 || key)>` for configuring verifiers. */
  readonly verifierKey: string;
}

/**
 * What every Ed25519-backed note signer (plain signatures, cosignatures) derives from its seed:
 * the private key, and the public key under its name and signature type.
 */
export function ed25519Identity(
  name: string,
  type: number,
  seed: Uint8Array,
): { key: Ed25519SigningKey; signer: Omit<Ed25519NoteSigner, 'sign'> } {
  const key = ed25519PrivateKey(seed);
  const publicKey = ed25519PublicKey(seed);
  return {
    key,
    signer: {
      name,
      keyId: computeKeyId(name, type, publicKey),
      publicKey,
      verifierKey: formatVerifierKey(name, type, publicKey),
    },
  };
}

export function ed25519Signer(name: string, seed: Uint8Array): Ed25519NoteSigner {
  const { key, signer } = ed25519Identity(name, SIGNATURE_TYPE_ED25519, seed);
  return { ...signer, sign: async (message) => ed25519Sign(key, message) };
}

export function ed25519Verifier(name: string, publicKey: Uint8Array): NoteVerifier {
  const key = ed25519VerifyKey(publicKey);
  return {
    name,
    keyId: computeKeyId(name, SIGNATURE_TYPE_ED25519, publicKey),
    verify: (message, signature) => ed25519Verify(key, message, signature),
  };
}

/** A verifier for a plain Ed25519 signer's `<name>+<id>+<key>` string (a log's key). */
export function ed25519VerifierFromKey(text: string): NoteVerifier {
  const key = parseVerifierKey(text);
  if (key.type !== SIGNATURE_TYPE_ED25519) throw new TlogError('KEY_INVALID', 'not a plain Ed25519 key');
  return ed25519Verifier(key.name, key.publicKey);
}
