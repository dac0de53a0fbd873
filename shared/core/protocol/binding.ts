// The binding secret and binding proof (invariant 3): the platform cannot add a device that
// hospitals will encrypt to.
//
//   bindingSecret = HMAC-SHA256(bindingKey, "cb/binding/v2" ‖ invitationId ‖ patientRef)
//   bindingProof  = HMAC-SHA256(bindingSecret,
//                     "cb/binding-proof/v1" ‖ invitationId ‖ deviceId ‖ devicePublicKey)
//
// The binding key is the connector's own, kept apart from its pseudonym key and versioned: the
// connector's journal records which version each invitation used, so the key can be rotated
// without re-pairing anyone.
//
// invitationId, patientRef and deviceId enter as their ASCII base64url text (22, 22 and 43
// characters), the public key as its 45 raw bytes; every field has a fixed length, so plain
// concatenation is unambiguous. The connector derives the secret on demand and hands it only
// to the QR code; the platform never sees it. A proof therefore
// shows that whoever enrolled this exact key held this invitation's QR code, and because the
// secret depends on patientRef, a certificate moved to another patient fails the check.
import type { PublicKey } from '../crypto/index.ts';
import { equalBytes, fromBase64Url, hmacSha256, toBase64Url, utf8 } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';
import type { HmacKey } from './hmac-key.ts';
import { invitationIdSchema, patientRefSchema } from './ids.ts';

export const BINDING_SECRET_LABEL = 'cb/binding/v2';
export const BINDING_PROOF_LABEL = 'cb/binding-proof/v1';
export const BINDING_SECRET_BYTES = 32;

function checked(schema: { safeParse(value: unknown): { success: boolean } }, value: string, field: string) {
  if (!schema.safeParse(value).success) throw new ProtocolError('INVALID_REQUEST', `bad ${field}`, { field });
  return utf8(value);
}

/** The connector's binding secret for one invitation of one patient (32 bytes). */
export function deriveBindingSecret(
  bindingKey: HmacKey,
  invitationId: string,
  patientRef: string,
): Uint8Array {
  return bindingKey.hmac(
    utf8(BINDING_SECRET_LABEL),
    checked(invitationIdSchema, invitationId, 'invitationId'),
    checked(patientRefSchema, patientRef, 'patientRef'),
  );
}

/** The device's binding proof (32 bytes), computed from the secret in the QR code. */
export function computeBindingProof(
  bindingSecret: Uint8Array,
  invitationId: string,
  devicePublicKey: PublicKey,
): Uint8Array {
  if (!(bindingSecret instanceof Uint8Array) || bindingSecret.length !== BINDING_SECRET_BYTES) {
    throw new ProtocolError('INVALID_REQUEST', 'the binding secret must be 32 bytes');
  }
  return hmacSha256(
    bindingSecret,
    utf8(BINDING_PROOF_LABEL),
    checked(invitationIdSchema, invitationId, 'invitationId'),
    utf8(devicePublicKey.fingerprint),
    devicePublicKey.toBytes(),
  );
}

/** Base64url form of computeBindingProof, as documents carry it. */
export function bindingProofText(
  bindingSecret: Uint8Array,
  invitationId: string,
  devicePublicKey: PublicKey,
): string {
  return toBase64Url(computeBindingProof(bindingSecret, invitationId, devicePublicKey));
}

export interface BindingCheck {
  /** The binding key of the version the invitation was made with. */
  readonly bindingKey: HmacKey;
  readonly invitationId: string;
  readonly patientRef: string;
  readonly deviceId: string;
  readonly devicePublicKey: PublicKey;
  /** base64url, as carried in the certificate. */
  readonly bindingProof: string;
}

/**
 * The connector's check, before it wraps any key for a device: recomputes the secret from its
 * master secret and the proof from the certificate's fields, compares in constant time.
 * Throws BINDING_PROOF_INVALID.
 */
export function verifyBindingProof(check: BindingCheck): void {
  if (check.deviceId !== check.devicePublicKey.fingerprint) {
    throw new ProtocolError('BINDING_PROOF_INVALID', 'the device id is not the key fingerprint');
  }
  const given = fromBase64Url(check.bindingProof);
  const secret = deriveBindingSecret(check.bindingKey, check.invitationId, check.patientRef);
  try {
    const expected = computeBindingProof(secret, check.invitationId, check.devicePublicKey);
    if (given === undefined || !equalBytes(given, expected)) {
      throw new ProtocolError('BINDING_PROOF_INVALID');
    }
  } finally {
    secret.fill(0);
  }
}
