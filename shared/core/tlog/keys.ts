// Key ids and verifier keys of c2sp.org/signed-note. A key id is
// SHA-256(name || 0x0A || signature type || public key)[:4], so the same key under another name
// or signature type gets another id. A verifier key is `<name>+<8 hex id>+<base64(type || key)>`,
// the format the Go note package and the witness ecosystem use to configure trust.
import { platform } from '#platform';
import { toHex } from '../bytes.ts';
import { TlogError } from './errors.ts';
import { decodeCanonicalBase64, encodeBase64, isValidKeyName, KEY_ID_SIZE } from './note.ts';

/** signed-note's assigned signature type bytes used here. */
export const SIGNATURE_TYPE_ED25519 = 0x01;
/** c2sp.org/tlog-cosignature: timestamped Ed25519 witness cosignatures (cosignature/v1). */
export const SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04;

export function computeKeyId(name: string, type: number, publicKey: Uint8Array): Uint8Array {
  if (!isValidKeyName(name)) throw new TlogError('KEY_INVALID', 'invalid key name');
  if (!Number.isInteger(type) || type < 0 || type > 0xff)
    throw new TlogError('KEY_INVALID', 'invalid type byte');
  const digest = platform
    .createSha256()
    .update(new TextEncoder().encode(`${name}\n`))
    .update(new Uint8Array([type]))
    .update(publicKey)
    .digest();
  return digest.slice(0, KEY_ID_SIZE);
}

export interface VerifierKey {
  readonly name: string;
  readonly keyId: Uint8Array;
  readonly type: number;
  readonly publicKey: Uint8Array;
}

export function formatVerifierKey(name: string, type: number, publicKey: Uint8Array): string {
  const keyed = new Uint8Array(1 + publicKey.length);
  keyed[0] = type;
  keyed.set(publicKey, 1);
  return `${name}+${toHex(computeKeyId(name, type, publicKey))}+${encodeBase64(keyed)}`;
}

/**
 * Parses `<name>+<id>+<base64>` and checks the id against the key, so a configuration typo
 * cannot pair a name with someone else's key. Only the two 32-byte Ed25519 types are accepted.
 */
export function parseVerifierKey(text: string): VerifierKey {
  const first = text.indexOf('+');
  const second = text.indexOf('+', first + 1);
  if (first < 0 || second < 0) throw new TlogError('KEY_INVALID', 'not <name>+<id>+<key>');
  const name = text.slice(0, first);
  const idText = text.slice(first + 1, second);
  const keyed = decodeCanonicalBase64(text.slice(second + 1));
  if (!isValidKeyName(name) || !/^[0-9a-f]{8}$/.test(idText) || keyed === undefined) {
    throw new TlogError('KEY_INVALID', 'malformed verifier key');
  }
  const type = keyed[0] as number;
  const publicKey = keyed.slice(1);
  if (
    (type !== SIGNATURE_TYPE_ED25519 && type !== SIGNATURE_TYPE_COSIGNATURE_V1) ||
    publicKey.length !== 32
  ) {
    throw new TlogError('KEY_INVALID', 'unsupported key type');
  }
  const keyId = computeKeyId(name, type, publicKey);
  if (toHex(keyId) !== idText) throw new TlogError('KEY_INVALID', 'key id does not match the key');
  return { name, keyId, type, publicKey };
}
