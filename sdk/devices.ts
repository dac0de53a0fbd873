// The patient's devices at one hospital, and erasure (docs/PROTOCOL.md §9.2, §10.5, §10.6):
// list them, revoke a lost one (or this one), replace this one's push token, and erase
// everything, which only counts once the signed receipt verifies with the records function's
// key the device fetched when it paired.
import { importPublicKey } from '../shared/core/crypto/index.ts';
import {
  deletionCounts,
  deletionReceiptFromText,
  deletionResponseSchema,
  deviceIdSchema,
  deviceListResponseSchema,
  ProtocolError,
  revokeResponseSchema,
  verifyDeletionReceipt,
} from '../shared/core/protocol/index.ts';
import { withTransientRetries } from './api-client.ts';
import { DeviceError } from './errors.ts';
import type { DeviceHome, Enrolment } from './home.ts';

export async function listDevices(enrolment: Enrolment) {
  const { devices } = await enrolment.api.call(
    { method: 'GET', target: '/records/v1/devices' },
    deviceListResponseSchema,
  );
  return devices;
}

/** Revokes `deviceId` (this device's own id revokes this device, and the enrolment says so). */
export async function revokeDevice(home: DeviceHome, enrolment: Enrolment, deviceId: string) {
  if (!deviceIdSchema.safeParse(deviceId).success) {
    throw new ProtocolError('INVALID_REQUEST', 'that is not a device id');
  }
  const revoked = await enrolment.api.call(
    { method: 'POST', target: `/records/v1/devices/${deviceId}/revoke`, json: {} },
    revokeResponseSchema,
  );
  if (deviceId === enrolment.data.deviceId) await home.save({ ...enrolment.data, status: 'revoked' });
  return revoked;
}

export async function replacePushToken(
  home: DeviceHome,
  enrolment: Enrolment,
  fcmToken: string,
): Promise<void> {
  await enrolment.api.raw({
    method: 'PUT',
    target: '/records/v1/devices/self/push-token',
    json: { fcmToken },
  });
  await home.save({ ...enrolment.data, fcmToken, lastPushSeq: 0 });
}

/**
 * Erases everything about the patient at this hospital and forgets the enrolment. Returns the
 * signed receipt (keep it: it is the patient's proof) with what it verified to. A receipt that
 * does not verify throws, and the enrolment is kept.
 */
export async function eraseEverything(home: DeviceHome, enrolment: Enrolment) {
  const signingKey = enrolment.data.recordsPublicKey;
  if (!signingKey) {
    throw new DeviceError(
      'ENROLMENT_UNREADABLE',
      'this enrolment predates erasure receipts: pair again first',
    );
  }
  // Erasure is one job per device: a retry after a 5xx resumes it and signs the same receipt.
  const { receipt } = await withTransientRetries(() =>
    enrolment.api.call(
      { method: 'POST', target: '/records/v1/patient/erase', json: { confirm: 'erase-everything' } },
      deletionResponseSchema,
    ),
  );
  const signed = deletionReceiptFromText(receipt);
  const verified = verifyDeletionReceipt(signed, importPublicKey(signingKey));
  await home.remove(enrolment.data.hospitalId);
  return { signed, verified, counts: deletionCounts(verified) };
}
