// What Clinic Bridge puts in its audit transparency logs (docs/PROTOCOL.md §16). A leaf is a
// salted commitment to one audit event, never the event: tiles and entry bundles, which phones
// and monitors may fetch, then show counts and hashes only. Whoever is shown an event (the
// patient their own, an auditor all) gets its exact text and salt and recomputes the leaf.
//
//   leaf data = SHA-256( "cb/audit-leaf/v1" ‖ 0x0A ‖ salt (32 bytes) ‖ UTF-8 event text )
//   leaf hash = SHA-256( 0x00 ‖ leaf data )                       (RFC 6962, tree.ts)
//
// The event text is canonical JSON as the platform stored it; a verifier hashes the bytes it
// was given and only then parses them, so no implementation has to re-canonicalise JSON.
import { platform } from '#platform';
import { TlogError } from './errors.ts';
import { isValidKeyName } from './note.ts';

export const AUDIT_LEAF_SALT_SIZE = 32;
const LEAF_LABEL = new TextEncoder().encode('cb/audit-leaf/v1\n');
/** The log of events that no hospital owns (retention runs, platform policy). */
export const PLATFORM_LOG = 'platform';

export function auditLeafData(salt: Uint8Array, eventText: string): Uint8Array {
  if (salt.length !== AUDIT_LEAF_SALT_SIZE) {
    throw new TlogError('INVALID_ARGUMENT', `the salt must be ${AUDIT_LEAF_SALT_SIZE} bytes`);
  }
  return platform
    .createSha256()
    .update(LEAF_LABEL)
    .update(salt)
    .update(new TextEncoder().encode(eventText))
    .digest();
}

/**
 * The log's origin line: the API base without its scheme, then /audit/ and the log's id (a
 * hospital id, or PLATFORM_LOG). A phone knows the API base from its QR code, so it can compute
 * the origin it expects and refuse a checkpoint of any other log.
 */
export function auditLogOrigin(apiBase: string, logId: string): string {
  return keyName(`${auditLogKeyName(apiBase)}/${logId}`);
}

/** The name of a hospital's witness key in cosignature lines. */
export function witnessKeyName(hospitalId: string): string {
  return `${hospitalId}.witness.clinic-bridge`;
}

/** The name of the platform's log key in checkpoint signatures: one key signs every log. */
export function auditLogKeyName(apiBase: string): string {
  // A canonical API base (the QR decoder's form): scheme, host, optional path, no trailing slash.
  const match = /^https?:\/\/([^/?#\s]+(?:\/[^?#\s]*[^/?#\s])?)$/.exec(apiBase);
  if (!match) throw new TlogError('INVALID_ARGUMENT', 'not a canonical API base');
  return keyName(`${match[1]}/audit`);
}

function keyName(name: string): string {
  if (!isValidKeyName(name)) throw new TlogError('INVALID_ARGUMENT', 'not a valid key name');
  return name;
}
