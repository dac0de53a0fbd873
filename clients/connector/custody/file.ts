// The default custody: the hospital's key pair and master secret in an owner-only file in the
// connector's home. The master secret never serves directly: a pseudonym key and a binding key,
// each with its version in the label, are derived from it, so the two uses stay apart. The
// binding key rotates (raise bindingKeyVersion: the journal records each invitation's version,
// so nobody re-pairs); the pseudonym key stays at version 1, since a new one would give every
// patient a new patientRef. Secret bytes live in memory of their own, never Node's shared buffer pool,
// and are zeroed on close().
import { createHmac } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { importKeyPair, keyPairSigner } from '../../../shared/core/crypto/index.ts';
import {
  fromBase64Url,
  memoryHmacKey,
  MIN_MASTER_SECRET_BYTES,
  type HmacKey,
} from '../../../shared/core/protocol/index.ts';
import { UsageError } from '../../lib/cli.ts';
import type { KeyCustody } from './custody.ts';

const PSEUDONYM_KEY_VERSION = 1;

const KEY_LABELS = {
  pseudonym: 'clinic-bridge/pseudonym-key',
  binding: 'clinic-bridge/binding-key',
} as const;

/** What the keys file holds for file custody (base64url). */
export interface FileKeys {
  readonly publicKey: string;
  readonly privateKey: string;
  readonly masterSecret: string;
  /** The current binding key version (new invitations use it). */
  readonly bindingKeyVersion: number;
}

/**
 * Refuses a secrets file that anyone but its owner may read or write: a connector that went on
 * would sign and derive with keys others may have copied or replaced.
 */
export async function assertOwnerOnly(path: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new UsageError(`no hospital keys at ${path} (run \`cb-connector keys\` first)`);
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8);
    throw new UsageError(`${path} is readable or writable by others (mode ${mode}): run chmod 600 ${path}`);
  }
}

/** A derived key: HMAC-SHA256(masterSecret, label ‖ uint16 BE version), in memory of its own. */
function derivedKey(master: Uint8Array, purpose: keyof typeof KEY_LABELS, version: number) {
  const mac = createHmac('sha256', master);
  mac.update(KEY_LABELS[purpose]);
  mac.update(Uint8Array.of(version >> 8, version & 0xff));
  const digest = mac.digest();
  try {
    return memoryHmacKey(digest, version);
  } finally {
    digest.fill(0);
  }
}

export function openFileCustody(keys: FileKeys): KeyCustody & { bindingKeyOf(version: number): HmacKey } {
  const decoded = fromBase64Url(keys.masterSecret);
  if (!decoded || decoded.length < MIN_MASTER_SECRET_BYTES)
    throw new UsageError('the master secret is damaged');
  const master = new Uint8Array(new ArrayBuffer(decoded.length));
  master.set(decoded);
  decoded.fill(0);
  const signer = keyPairSigner(importKeyPair(keys.privateKey, keys.publicKey));
  const pseudonymKey = derivedKey(master, 'pseudonym', PSEUDONYM_KEY_VERSION);
  const bindingKeys = new Map([
    [keys.bindingKeyVersion, derivedKey(master, 'binding', keys.bindingKeyVersion)],
  ]);
  return {
    kind: 'file',
    signer,
    pseudonymKey,
    bindingKey: bindingKeys.get(keys.bindingKeyVersion)!,
    bindingKeyOf(version: number) {
      let key = bindingKeys.get(version);
      if (!key) {
        key = derivedKey(master, 'binding', version);
        bindingKeys.set(version, key);
      }
      return key;
    },
    close() {
      pseudonymKey.destroy();
      for (const key of bindingKeys.values()) key.destroy();
      master.fill(0);
    },
  };
}
