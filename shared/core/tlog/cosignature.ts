// c2sp.org/tlog-cosignature, the Ed25519 type (signed-note type 0x04, confirmed in both
// signed-note's type table and tlog-cosignature): a witness's statement that, as of `timestamp`,
// this checkpoint is the largest consistent one it has seen for the origin. The note signature
// is timestamp (u64 big-endian, POSIX seconds) || Ed25519 signature over
//   "cosignature/v1\n" || "time <timestamp>\n" || the checkpoint note text.
// The ML-DSA-44 type (0x06, subtree/v1 message) is not implemented.
import { TlogError } from './errors.ts';
import {
  ED25519_SIGNATURE_SIZE,
  ed25519Identity,
  ed25519VerifyKey,
  ed25519Sign,
  ed25519Verify,
} from './ed25519.ts';
import { computeKeyId, SIGNATURE_TYPE_COSIGNATURE_V1 } from './keys.ts';
import type { NoteSigner, NoteVerifier } from './note.ts';

export const COSIGNATURE_SIZE = 8 + ED25519_SIGNATURE_SIZE;

export interface Cosignature {
  /** POSIX seconds; limited to safe integers here (the spec allows up to 2^63 - 1). */
  readonly timestamp: number;
  readonly signature: Uint8Array;
}

function checkTimestamp(timestamp: number): void {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new TlogError('INVALID_ARGUMENT', 'a cosignature timestamp is a non-negative safe integer');
  }
}

/** The bytes a cosigner signs for a checkpoint note text (which ends in a newline). */
export function cosignatureMessage(noteText: Uint8Array, timestamp: number): Uint8Array {
  checkTimestamp(timestamp);
  const header = new TextEncoder().encode(`cosignature/v1\ntime ${timestamp}\n`);
  const out = new Uint8Array(header.length + noteText.length);
  out.set(header);
  out.set(noteText, header.length);
  return out;
}

export function encodeCosignature(cosignature: Cosignature): Uint8Array {
  checkTimestamp(cosignature.timestamp);
  if (cosignature.signature.length !== ED25519_SIGNATURE_SIZE) {
    throw new TlogError('INVALID_ARGUMENT', 'an Ed25519 signature is 64 bytes');
  }
  const out = new Uint8Array(COSIGNATURE_SIZE);
  new DataView(out.buffer).setBigUint64(0, BigInt(cosignature.timestamp));
  out.set(cosignature.signature, 8);
  return out;
}

/** undefined when the bytes are not a timestamped_signature this code can represent. */
export function decodeCosignature(bytes: Uint8Array): Cosignature | undefined {
  if (bytes.length !== COSIGNATURE_SIZE) return undefined;
  const timestamp = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0);
  // Beyond 2^53 is beyond any real clock, and beyond 2^63 - 1 the spec forbids.
  if (timestamp > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return { timestamp: Number(timestamp), signature: bytes.slice(8) };
}

export interface CosignatureSigner extends NoteSigner {
  readonly publicKey: Uint8Array;
  readonly verifierKey: string;
}

/** `now` returns POSIX seconds; injected so tests and vectors are deterministic. */
export function cosignatureSigner(name: string, seed: Uint8Array, now: () => number): CosignatureSigner {
  const { key, signer } = ed25519Identity(name, SIGNATURE_TYPE_COSIGNATURE_V1, seed);
  return {
    ...signer,
    sign: async (message) => {
      const timestamp = now();
      const signature = ed25519Sign(key, cosignatureMessage(message, timestamp));
      return encodeCosignature({ timestamp, signature });
    },
  };
}

export interface CosignatureVerifier extends NoteVerifier {
  /** The timestamp a (verified) cosignature carries; for freshness policies. */
  timestampOf(signature: Uint8Array): number | undefined;
}

export function cosignatureVerifier(name: string, publicKey: Uint8Array): CosignatureVerifier {
  const key = ed25519VerifyKey(publicKey);
  return {
    name,
    keyId: computeKeyId(name, SIGNATURE_TYPE_COSIGNATURE_V1, publicKey),
    verify: (message, signature) => {
      const cosignature = decodeCosignature(signature);
      if (cosignature === undefined) return false;
      return ed25519Verify(key, cosignatureMessage(message, cosignature.timestamp), cosignature.signature);
    },
    timestampOf: (signature) => decodeCosignature(signature)?.timestamp,
  };
}
