// Which purposes and algorithms the emulator supports, and how each makes key material.
// Anything else is a valid KMS value we answer with UNIMPLEMENTED.
import { EC_ALGORITHMS, generateEcKey, type EcAlgorithm } from './ecdsa.ts';
import { ED25519_ALGORITHM, generateEd25519Key } from './ed25519.ts';
import { generateMacKey, MAC_ALGORITHMS, type MacAlgorithm } from './mac.ts';
import { generateSymmetricKey } from './symmetric.ts';

export const PURPOSES = ['ENCRYPT_DECRYPT', 'ASYMMETRIC_SIGN', 'MAC'] as const;
export type Purpose = (typeof PURPOSES)[number];

export const SYMMETRIC_ALGORITHM = 'GOOGLE_SYMMETRIC_ENCRYPTION';
export type Algorithm = typeof SYMMETRIC_ALGORITHM | EcAlgorithm | typeof ED25519_ALGORITHM | MacAlgorithm;

export function isPurpose(value: string): value is Purpose {
  return (PURPOSES as readonly string[]).includes(value);
}

export function isEcAlgorithm(value: string): value is EcAlgorithm {
  return Object.hasOwn(EC_ALGORITHMS, value);
}

export function isMacAlgorithm(value: string): value is MacAlgorithm {
  return Object.hasOwn(MAC_ALGORITHMS, value);
}

export function purposeOf(algorithm: string): Purpose | null {
  if (algorithm === SYMMETRIC_ALGORITHM) return 'ENCRYPT_DECRYPT';
  if (isEcAlgorithm(algorithm) || algorithm === ED25519_ALGORITHM) return 'ASYMMETRIC_SIGN';
  if (isMacAlgorithm(algorithm)) return 'MAC';
  return null;
}

export function isAlgorithm(value: string): value is Algorithm {
  return purposeOf(value) !== null;
}

export function generateMaterial(algorithm: Algorithm): Buffer {
  if (algorithm === SYMMETRIC_ALGORITHM) return generateSymmetricKey();
  if (isEcAlgorithm(algorithm)) return generateEcKey(algorithm);
  if (algorithm === ED25519_ALGORITHM) return generateEd25519Key();
  return generateMacKey(algorithm);
}
