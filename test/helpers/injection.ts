// What someone who can write Firestore directly (a cloud administrator, a leaked service-account
// key) could do to the pairing state: add a device of their own for a patient, bypassing the
// pairing function. The connector must never encrypt for such a device (threat P5).
import { randomBytes } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import { PAIRING_COLLECTIONS } from '../../shared/adapters/firestore-pairing.ts';
import { generateKeyPair, type KeyPair, type PrivateKey } from '../../shared/core/crypto/index.ts';
import {
  bindingProofText,
  DEVICE_CERTIFICATE_TYPE,
  formatTimestamp,
  newRandomId,
  signDeviceCertificate,
  toBase64Url,
} from '../../shared/core/protocol/index.ts';

export interface InjectionTarget {
  readonly hospitalId: string;
  readonly patientRef: string;
}

/**
 * A certificate for `device`, signed by `signer` (an unknown key, or the pairing function's own),
 * with a binding proof made from a random secret: the attacker lacks the hospital's.
 */
export function unboundCertificate(
  signer: PrivateKey,
  device: KeyPair,
  target: InjectionTarget,
  invitationId: string,
): string {
  return toBase64Url(
    signDeviceCertificate(
      {
        type: DEVICE_CERTIFICATE_TYPE,
        deviceId: device.publicKey.fingerprint,
        devicePublicKey: device.publicKey.toBase64Url(),
        hospitalId: target.hospitalId,
        patientRef: target.patientRef,
        invitationId,
        bindingProof: bindingProofText(new Uint8Array(randomBytes(32)), invitationId, device.publicKey),
        issuedAt: formatTimestamp(new Date()),
        expiresAt: formatTimestamp(new Date(Date.now() + 86_400_000)),
      },
      signer,
    ),
  );
}

/**
 * Writes an active device for the target patient straight into Firestore; its certificate is
 * `certificate(attacker key, invitation id)` (a forged one, or a copy of a genuine one).
 * Returns the injected device id.
 */
export async function injectDevice(
  firestore: Firestore,
  target: InjectionTarget,
  certificate: (attacker: KeyPair, invitationId: string) => string | Promise<string>,
  fcmToken = 'fcm-injected',
  /** The invitation the forged enrolment claims: by default one nobody issued. */
  invitationId = newRandomId(),
): Promise<string> {
  const attacker = generateKeyPair();
  await firestore
    .collection(PAIRING_COLLECTIONS.devices)
    .doc(attacker.publicKey.fingerprint)
    .create({
      hospitalId: target.hospitalId,
      patientRef: target.patientRef,
      invitationId,
      certificate: await certificate(attacker, invitationId),
      bindingProof: 'x',
      fcmToken,
      platform: 'other',
      status: 'active',
      pairedAt: new Date(),
      lastSeenAt: new Date(),
      expiresAt: new Date(Date.now() + 86_400_000),
    });
  return attacker.publicKey.fingerprint;
}
