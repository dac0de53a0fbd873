// The checks an upload must pass before it is filed (invariants 3, 6; docs/PROTOCOL.md §7, §10.3):
// signed by a key of an active hospital, meant for this upload now, addressed only to active
// devices of its patient, and not a different upload's record. Each failure is the ProtocolError
// the rejection receipt names; they only read.
import { importPublicKey, isCryptoError, type PublicKey } from '../core/crypto/index.ts';
import {
  checkManifestContext,
  ProtocolError,
  verifyManifest,
  type UploadContainer,
  type UploadManifest,
} from '../core/protocol/index.ts';
import type { Clock } from '../ports/clock.ts';
import type { DeviceRecord, DeviceStore, HospitalRegistry } from '../ports/pairing-store.ts';
import type { RecordStore } from '../ports/record-store.ts';

export interface UploadChecksOptions {
  readonly hospitals: HospitalRegistry;
  readonly devices: DeviceStore;
  readonly records: RecordStore;
  readonly clock: Clock;
}

/** Where the upload was dropped: its path names the hospital and the upload. */
export interface UploadTarget {
  readonly hospitalId: string;
  readonly uploadId: string;
}

/** The verified manifest and the devices it is addressed to, in the manifest's order. */
export interface CheckedUpload {
  readonly manifest: UploadManifest;
  readonly recipients: DeviceRecord[];
}

/**
 * Starts the checks of an upload at `target`: the hospital is looked up at once, while the caller
 * reads the container, and `verify` then checks the container against it. The lookups are
 * round trips to the database, so each starts as soon as what it needs is known (docs/PERFORMANCE.md,
 * "Ingest rate"); the order in which failures are reported stays the order of the checks.
 */
export type UploadChecks = (target: UploadTarget) => {
  verify(container: UploadContainer): Promise<CheckedUpload>;
};

/** A call's outcome as a promise, even when it throws before returning one. */
function started<T>(call: () => Promise<T>): Promise<T> {
  try {
    return call();
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Starts both, awaits both, and reports the first one's failure before the second's (stable
 * error codes). Both are always awaited: neither can end as an unhandled rejection.
 */
async function bothInOrder<A, B>(first: () => Promise<A>, second: () => Promise<B>): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled([started(first), started(second)]);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
  return [a.value, b.value];
}

export function createUploadChecks(options: UploadChecksOptions): UploadChecks {
  const { clock } = options;

  async function hospitalKeys(hospitalId: string): Promise<PublicKey[]> {
    const hospital = await options.hospitals.getHospital(hospitalId);
    if (!hospital) throw new ProtocolError('UNKNOWN_HOSPITAL');
    if (hospital.status !== 'active' || hospital.expiresAt <= clock.now()) {
      throw new ProtocolError('HOSPITAL_SUSPENDED');
    }
    return Object.values(hospital.publicKeys).map((key) => importPublicKey(key));
  }

  /** Every recipient must be an active device of this patient at this hospital. */
  async function recipientDevices(manifest: UploadManifest): Promise<DeviceRecord[]> {
    const active = await options.devices.listActive(manifest.hospitalId, manifest.patientRef, clock.now());
    if (active.length === 0) throw new ProtocolError('UNKNOWN_PATIENT');
    const byId = new Map(active.map((device) => [device.deviceId, device]));
    const recipients: DeviceRecord[] = [];
    for (const { deviceId } of manifest.recipients) {
      const device = byId.get(deviceId);
      if (device) {
        recipients.push(device);
        continue;
      }
      const known = await options.devices.get(deviceId);
      const revokedHere =
        known?.hospitalId === manifest.hospitalId &&
        known.patientRef === manifest.patientRef &&
        known.status === 'revoked';
      throw new ProtocolError(revokedHere ? 'DEVICE_REVOKED' : 'UNKNOWN_DEVICE');
    }
    return recipients;
  }

  return ({ hospitalId, uploadId }) => {
    const keys = hospitalKeys(hospitalId);
    // Settled by verify(); until then a failure must not surface as an unhandled rejection
    // (the container may fail to read first, and verify is then never called).
    keys.catch(() => undefined);
    return {
      async verify(container) {
        const manifest = verifiedManifest(container, await keys);
        checkManifestContext(manifest, { hospitalId, uploadId, now: clock.now() });
        const [recipients, existing] = await bothInOrder(
          () => recipientDevices(manifest),
          () => options.records.get(manifest.recordId),
        );
        if (existing && existing.uploadId !== uploadId) throw new ProtocolError('RECORD_EXISTS');
        return { manifest, recipients };
      },
    };
  };
}

function verifiedManifest(container: UploadContainer, keys: readonly PublicKey[]): UploadManifest {
  for (const key of keys) {
    try {
      return verifyManifest(container.signedManifest, key);
    } catch (error) {
      // Another registered key may be the one (two are live while a hospital rotates).
      if (
        !(error instanceof ProtocolError && error.code === 'MANIFEST_SIGNATURE_INVALID') &&
        !isCryptoError(error)
      )
        throw error;
    }
  }
  throw new ProtocolError('MANIFEST_SIGNATURE_INVALID');
}
