// The layout of a document in `devices`, for the two adapters that write devices: pairing
// (firestore-pairing.ts) and linking (firestore-device-links.ts). A linked device is a paired
// one plus its link, so both must read and write the same fields or a linked device would be
// misread by pairing, retention and erasure, which only know this layout.
import { Timestamp } from '@google-cloud/firestore';
import type { DocumentData } from '@google-cloud/firestore';
import type { DeviceRecord, NewDevice } from '../ports/pairing-store.ts';
import { str, toDate, ts } from './firestore-values.ts';

/** A new device's document: active, last seen when paired. */
export function deviceData(device: NewDevice): DocumentData {
  return {
    hospitalId: device.hospitalId,
    patientRef: device.patientRef,
    invitationId: device.invitationId,
    certificate: device.certificate,
    bindingProof: device.bindingProof,
    fcmToken: device.fcmToken,
    platform: device.platform,
    status: 'active',
    pairedAt: ts(device.pairedAt),
    lastSeenAt: ts(device.pairedAt),
    expiresAt: ts(device.expiresAt),
  };
}

/** A stored device document read strictly; anything but `active` reads as revoked. */
export function deviceFrom(deviceId: string, data: DocumentData): DeviceRecord {
  return {
    deviceId,
    hospitalId: str(data.hospitalId),
    patientRef: str(data.patientRef),
    invitationId: str(data.invitationId),
    certificate: str(data.certificate),
    bindingProof: str(data.bindingProof),
    fcmToken: typeof data.fcmToken === 'string' ? data.fcmToken : '',
    platform: str(data.platform),
    status: data.status === 'active' ? 'active' : 'revoked',
    pairedAt: toDate(data.pairedAt),
    lastSeenAt: toDate(data.lastSeenAt ?? data.pairedAt),
    expiresAt: toDate(data.expiresAt),
    ...(data.revokedAt instanceof Timestamp ? { revokedAt: data.revokedAt.toDate() } : {}),
  };
}
