// Where the hospital's keys live. The connector never needs the key bytes themselves, only
// these operations, so a custody may keep them in owner-only files (the default) or inside a
// PKCS#11 token, where signing and HMAC happen and the keys cannot be read out.
import type { Signer } from '../../../shared/core/crypto/index.ts';
import type { HmacKey } from '../../../shared/core/protocol/index.ts';

export interface KeyCustody {
  readonly kind: 'file' | 'pkcs11';
  /** Signs manifests, requests and invitations with the hospital's key. */
  readonly signer: Signer;
  /** Derives patient pseudonyms (patientRef). */
  readonly pseudonymKey: HmacKey;
  /** Derives new invitations' binding secrets (the current version). */
  readonly bindingKey: HmacKey;
  /** The binding key of an earlier version, for invitations made before a rotation. */
  bindingKeyOf(version: number): HmacKey;
  /** Zeroes what the custody holds in memory, or ends the token session. */
  close(): void;
}
