// The paired device behind a signed call to the records API (docs/PROTOCOL.md §8, §9.2), and the
// audit event such a device leaves about its own patient: what the records, own-devices,
// access-log and erasure services all start from.
import type { AuditFields } from '../audit/fields.ts';
import { importPublicKey, type PublicKey } from '../core/crypto/index.ts';
import {
  formatTimestamp,
  fromBase64Url,
  ProtocolError,
  readLinkerCertificate,
  type KeyId,
} from '../core/protocol/index.ts';
import type { Clock } from '../ports/clock.ts';
import type { DeviceRecord, DeviceStore, NonceStore } from '../ports/pairing-store.ts';
import { createCallVerifier, type SignedCall } from './signed-call.ts';

/** The active device that signed the call; throws the protocol's refusal otherwise. */
export type DeviceCaller = (call: SignedCall) => Promise<DeviceRecord>;

const TOUCH_INTERVAL_MS = 24 * 3600_000;

export function createDeviceCaller(options: {
  readonly devices: DeviceStore;
  readonly nonces: NonceStore;
  readonly clock: Clock;
}): DeviceCaller {
  const { devices, clock } = options;

  async function resolveDevice(keyId: KeyId): Promise<PublicKey | undefined> {
    const device = await devices.get(keyId.id);
    if (!device) return undefined;
    // An expired enrolment is refused like a revoked one: the device must pair again.
    if (device.status !== 'active' || device.expiresAt <= clock.now())
      throw new ProtocolError('DEVICE_REVOKED');
    return importPublicKey(enrolledKeyOf(device));
  }

  const verifier = createCallVerifier({
    accept: ['device'],
    clock,
    nonces: options.nonces,
    resolveKey: resolveDevice,
  });

  return async (call) => {
    const verified = await verifier.verify(call);
    const device = await devices.get(verified.keyId.id);
    if (!device || device.status !== 'active') throw new ProtocolError('DEVICE_REVOKED');
    const now = clock.now();
    // Activity is kept to within a day: one write a day per device, not one per call.
    if (now.getTime() - device.lastSeenAt.getTime() > TOUCH_INTERVAL_MS)
      await devices.touch(device.deviceId, now);
    return device;
  };
}

/** An audit event by this device about its own patient (NEN 7513: who, what, whose), dated now. */
export function deviceEvent(
  clock: Clock,
  device: DeviceRecord,
  action: AuditFields['action'],
  extra: Pick<AuditFields, 'recordId' | 'deviceId' | 'outcome'>,
): AuditFields {
  return {
    at: formatTimestamp(clock.now()),
    actor: { kind: 'device', id: device.deviceId },
    action,
    hospitalId: device.hospitalId,
    patientRef: device.patientRef,
    ...extra,
  };
}

/**
 * The device's enrolled public key, read from the certificate the pairing function signed and
 * stored itself (so no signature check is needed here): a paired device's or a linked device's
 * (PROTOCOL.md §17). verifyRequest then requires its fingerprint to be the deviceId the request
 * names.
 */
function enrolledKeyOf(device: DeviceRecord): string {
  const signed = fromBase64Url(device.certificate);
  if (signed === undefined) throw new ProtocolError('INTERNAL_ERROR', 'a stored certificate is malformed');
  return readLinkerCertificate(signed).devicePublicKey;
}
