// The hospital's recovery key: the key pair backups of the connector's home are encrypted to.
// The connector only ever holds the public half, so a backup it writes is one it cannot open
// itself; whoever steals the connector's disk or its backup tapes gets nothing readable without
// the private half, which the hospital keeps offline (printed and in a safe, or on a removable
// medium) and brings back only to restore.
//
// It is a Themis EC P-256 key pair like every other key in Clinic Bridge. The private half is
// one line of text, short enough to print and type back:
//   cb-recovery-key-v1.<base64url private key, 45 bytes>.<base64url public key, 45 bytes>
// Both Themis key containers carry a CRC32C and the pair is checked to belong together, so a
// mistyped character is refused (RECOVERY_KEY_INVALID) rather than producing a wrong key.
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import {
  exportPrivateKey,
  generateKeyPair,
  importKeyPair,
  importPublicKey,
  type KeyPair,
  type PublicKey,
} from '../../shared/core/crypto/index.ts';
import { toBase64Url } from '../../shared/core/bytes.ts';
import { RefusedError } from '../lib/cli.ts';

const PREFIX = 'cb-recovery-key-v1';

export type RecoveryKeyErrorCode = 'RECOVERY_KEY_INVALID' | 'RECOVERY_KEY_EXISTS' | 'RECOVERY_KEY_UNREADABLE';

export class RecoveryKeyError extends RefusedError {
  constructor(code: RecoveryKeyErrorCode, message: string) {
    super(code, message);
    this.name = 'RecoveryKeyError';
  }
}

export interface RecoveryKey {
  /** What the connector is given (base64url, 60 characters): backups are encrypted to it. */
  readonly publicKey: string;
  /** The private half as one printable line: keep it offline, never on the connector. */
  readonly privateText: string;
}

/** A fresh recovery key pair. Show or write `privateText` once, then forget it. */
export function createRecoveryKey(): RecoveryKey {
  const pair = generateKeyPair();
  const privateBytes = exportPrivateKey(pair.privateKey);
  try {
    return {
      publicKey: pair.publicKey.toBase64Url(),
      privateText: `${PREFIX}.${toBase64Url(privateBytes)}.${pair.publicKey.toBase64Url()}`,
    };
  } finally {
    privateBytes.fill(0);
  }
}

/** The key pair in a recovery key's text (surrounding whitespace allowed). */
export function parseRecoveryKey(text: string): KeyPair {
  const parts = text.trim().split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX) {
    throw new RecoveryKeyError('RECOVERY_KEY_INVALID', `a recovery key is one line starting ${PREFIX}.`);
  }
  try {
    return importKeyPair(parts[1]!, parts[2]!);
  } catch {
    // The cause may hold key material in its message; say only what is wrong.
    throw new RecoveryKeyError(
      'RECOVERY_KEY_INVALID',
      'the recovery key is damaged or mistyped (its checksum or key pair does not hold)',
    );
  }
}

/** A recovery public key, as the connector is configured with it. */
export function parseRecoveryPublicKey(text: string): PublicKey {
  try {
    return importPublicKey(text.trim());
  } catch {
    throw new RecoveryKeyError('RECOVERY_KEY_INVALID', 'not a recovery public key (60 base64url characters)');
  }
}

/**
 * Writes the private half to `path`, owner-only and create-only: an existing file is never
 * replaced (it may be the only copy of the key that opens every earlier backup).
 */
export async function writeRecoveryKeyFile(path: string, key: RecoveryKey): Promise<void> {
  // Written under a temporary name and linked into place: link() fails if the name exists, so
  // the final name appears only complete and never over another file.
  const temp = `${path}.${process.pid}.${Date.now()}.partial`;
  await writeFile(temp, `${key.privateText}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new RecoveryKeyError(
        'RECOVERY_KEY_EXISTS',
        `${path} exists; a recovery key is never overwritten`,
      );
    }
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** The key pair in a recovery key file (as written by writeRecoveryKeyFile, or typed back). */
export async function readRecoveryKeyFile(path: string): Promise<KeyPair> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new RecoveryKeyError('RECOVERY_KEY_UNREADABLE', `cannot read the recovery key at ${path}`);
  }
  return parseRecoveryKey(text);
}
