// Firestore adapters for the pairing stores (shared/ports/pairing-store.ts), over the official
// client. Collections: hospitals, invitations, devices, nonces. Every document carries
// `expiresAt` (a Firestore Timestamp) for the retention job (invariant 8). Invitations keep
// only the token's SHA-256; a consumption is one transaction, so two concurrent pairs on one
// invitation cannot both succeed.
import { createHash, timingSafeEqual } from 'node:crypto';
import { FieldPath, Timestamp } from '@google-cloud/firestore';
import type { DocumentData, Firestore } from '@google-cloud/firestore';
import type {
  ConsumeOutcome,
  ConsumeRequest,
  DeviceRecord,
  DeviceStore,
  HospitalRecord,
  HospitalRegistration,
  HospitalRegistry,
  InvitationStore,
  NewDevice,
  NewInvitation,
  NonceStore,
  PairingStores,
} from '../ports/pairing-store.ts';
import { isAlreadyExists, str, toDate, ts } from './firestore-values.ts';

export const PAIRING_COLLECTIONS = {
  hospitals: 'hospitals',
  invitations: 'invitations',
  devices: 'devices',
  nonces: 'nonces',
} as const;

function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function hospitalFrom(hospitalId: string, data: DocumentData): HospitalRecord {
  const status = data.status === 'active' ? 'active' : 'suspended';
  const keys: Record<string, string> = {};
  for (const [fingerprint, key] of Object.entries((data.publicKeys ?? {}) as Record<string, unknown>)) {
    if (typeof key === 'string') keys[fingerprint] = key;
  }
  return { hospitalId, status, publicKeys: keys, expiresAt: toDate(data.expiresAt) };
}

export function createFirestoreHospitalRegistry(firestore: Firestore): HospitalRegistry {
  const collection = firestore.collection(PAIRING_COLLECTIONS.hospitals);
  return Object.freeze({
    async registerHospital(registration: HospitalRegistration): Promise<void> {
      const publicKeys: Record<string, string> = {};
      for (const key of registration.publicKeys) publicKeys[key.fingerprint] = key.toBase64Url();
      await collection.doc(registration.hospitalId).set({
        status: registration.status,
        publicKeys,
        expiresAt: ts(registration.expiresAt),
      });
    },
    async getHospital(hospitalId: string): Promise<HospitalRecord | undefined> {
      const snapshot = await collection.doc(hospitalId).get();
      const data = snapshot.data();
      return snapshot.exists && data ? hospitalFrom(hospitalId, data) : undefined;
    },
    async listHospitals(): Promise<HospitalRecord[]> {
      const { docs } = await collection.orderBy(FieldPath.documentId()).get();
      return docs.map((doc) => hospitalFrom(doc.id, doc.data()));
    },
  });
}

function deviceData(device: NewDevice): DocumentData {
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

function deviceFrom(deviceId: string, data: DocumentData): DeviceRecord {
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

export function createFirestoreInvitationStore(firestore: Firestore): InvitationStore {
  const invitations = firestore.collection(PAIRING_COLLECTIONS.invitations);
  const devices = firestore.collection(PAIRING_COLLECTIONS.devices);
  return Object.freeze({
    async create(invitation: NewInvitation): Promise<boolean> {
      try {
        await invitations.doc(invitation.invitationId).create({
          hospitalId: invitation.hospitalId,
          patientRef: invitation.patientRef,
          tokenSha256: invitation.tokenSha256,
          maxAttempts: invitation.maxAttempts,
          attempts: 0,
          status: 'open',
          createdAt: ts(invitation.createdAt),
          expiresAt: ts(invitation.expiresAt),
        });
        return true;
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
        const existing = (await invitations.doc(invitation.invitationId).get()).data();
        return (
          existing !== undefined &&
          existing.hospitalId === invitation.hospitalId &&
          existing.patientRef === invitation.patientRef &&
          existing.tokenSha256 === invitation.tokenSha256 &&
          existing.maxAttempts === invitation.maxAttempts &&
          toDate(existing.expiresAt).getTime() === invitation.expiresAt.getTime()
        );
      }
    },

    async consume(request: ConsumeRequest): Promise<{ outcome: ConsumeOutcome; device?: NewDevice }> {
      const ref = invitations.doc(request.invitationId);
      try {
        return await consumeInTransaction(ref, request);
      } catch (error) {
        // Concurrent pairs on one invitation contend for its lock; Firestore aborts the
        // losers and the client retries them. If one still gives up, the invitation has
        // usually been taken by the winner meanwhile: say so, rather than fail with a 500.
        if (!isAborted(error)) throw error;
        const after = await ref.get();
        if (after.exists && after.get('status') !== 'open') return { outcome: 'INVITATION_USED' as const };
        throw error;
      }
    },
  });

  function consumeInTransaction(
    ref: FirebaseFirestore.DocumentReference,
    request: ConsumeRequest,
  ): Promise<{ outcome: ConsumeOutcome; device?: NewDevice }> {
    return firestore.runTransaction(
      async (tx) => {
        const snapshot = await tx.get(ref);
        const data = snapshot.data();
        if (!snapshot.exists || !data) return { outcome: 'INVITATION_INVALID' as const };
        const attempts = typeof data.attempts === 'number' ? data.attempts : 0;
        const maxAttempts = typeof data.maxAttempts === 'number' ? data.maxAttempts : 1;
        if (data.status === 'locked' || attempts >= maxAttempts) {
          return { outcome: 'INVITATION_ATTEMPTS_EXCEEDED' as const };
        }
        if (!sameDigest(str(data.tokenSha256), request.tokenSha256)) {
          const next = attempts + 1;
          tx.update(ref, { attempts: next, ...(next >= maxAttempts ? { status: 'locked' } : {}) });
          return { outcome: 'INVITATION_INVALID' as const };
        }
        if (request.now.getTime() >= toDate(data.expiresAt).getTime()) {
          return { outcome: 'INVITATION_EXPIRED' as const };
        }
        if (data.status !== 'open') {
          if (data.status !== 'used' || data.deviceId !== request.deviceId) {
            return { outcome: 'INVITATION_USED' as const };
          }
          const stored = await tx.get(devices.doc(request.deviceId));
          const device = stored.exists ? deviceFrom(stored.id, stored.data() ?? {}) : undefined;
          return device?.status === 'active' && device.invitationId === request.invitationId
            ? { outcome: 'paired' as const, device }
            : { outcome: 'INVITATION_USED' as const };
        }
        const invitation = { hospitalId: str(data.hospitalId), patientRef: str(data.patientRef) };
        const device = request.device(invitation);
        const deviceRef = devices.doc(device.deviceId);
        const existing = await tx.get(deviceRef);
        if (existing.exists) return { outcome: 'DEVICE_ALREADY_PAIRED' as const };
        const active = await tx.get(
          devices
            .where('hospitalId', '==', invitation.hospitalId)
            .where('patientRef', '==', invitation.patientRef)
            .where('status', '==', 'active'),
        );
        const live = active.docs.filter((doc) => toDate(doc.get('expiresAt')) > request.now).length;
        if (live >= request.maxDevicesPerPatient) return { outcome: 'DEVICE_LIMIT_REACHED' as const };
        tx.update(ref, { status: 'used', usedAt: ts(request.now), deviceId: device.deviceId });
        tx.create(deviceRef, deviceData(device));
        return { outcome: 'paired' as const, device };
      },
      { maxAttempts: 10 },
    );
  }
}

const ABORTED = 10;
const NOT_FOUND = 5;

function isAborted(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === ABORTED;
}

export function createFirestoreDeviceStore(firestore: Firestore): DeviceStore {
  const devices = firestore.collection(PAIRING_COLLECTIONS.devices);
  return Object.freeze({
    async get(deviceId: string) {
      const snapshot = await devices.doc(deviceId).get();
      const data = snapshot.data();
      return snapshot.exists && data ? deviceFrom(deviceId, data) : undefined;
    },
    async listActive(hospitalId: string, patientRef: string, now: Date) {
      const { docs } = await devices
        .where('hospitalId', '==', hospitalId)
        .where('patientRef', '==', patientRef)
        .where('status', '==', 'active')
        .get();
      return docs
        .map((doc) => deviceFrom(doc.id, doc.data()))
        .filter((device) => device.expiresAt > now)
        .sort((a, b) => a.pairedAt.getTime() - b.pairedAt.getTime() || (a.deviceId < b.deviceId ? -1 : 1));
    },
    async revoke(hospitalId: string, deviceId: string, at: Date) {
      const ref = devices.doc(deviceId);
      return firestore.runTransaction(async (tx) => {
        const snapshot = await tx.get(ref);
        const data = snapshot.data();
        if (!snapshot.exists || !data || data.hospitalId !== hospitalId || data.status !== 'active') {
          return false;
        }
        tx.update(ref, { status: 'revoked', revokedAt: ts(at), fcmToken: '' });
        return true;
      });
    },
    async clearFcmToken(deviceId: string, fcmToken: string) {
      const ref = devices.doc(deviceId);
      await firestore.runTransaction(async (tx) => {
        const snapshot = await tx.get(ref);
        if (snapshot.exists && snapshot.get('fcmToken') === fcmToken) tx.update(ref, { fcmToken: '' });
      });
    },
    async touch(deviceId: string, at: Date) {
      try {
        await devices.doc(deviceId).update({ lastSeenAt: ts(at) });
      } catch (error) {
        if ((error as { code?: unknown }).code !== NOT_FOUND) throw error;
      }
    },
    async setFcmToken(deviceId: string, fcmToken: string) {
      const ref = devices.doc(deviceId);
      return firestore.runTransaction(async (tx) => {
        const snapshot = await tx.get(ref);
        if (!snapshot.exists || snapshot.get('status') !== 'active') return false;
        tx.update(ref, { fcmToken });
        return true;
      });
    },
  });
}

/** Document id of a nonce: a digest, so neither key id nor nonce needs escaping. */
export function nonceDocumentId(keyId: string, nonce: string): string {
  return createHash('sha256').update(`${keyId}\n${nonce}`).digest('base64url');
}

export function createFirestoreNonceStore(firestore: Firestore): NonceStore {
  const nonces = firestore.collection(PAIRING_COLLECTIONS.nonces);
  return Object.freeze({
    async remember(keyId: string, nonce: string, expiresAt: Date) {
      try {
        await nonces.doc(nonceDocumentId(keyId, nonce)).create({ expiresAt: ts(expiresAt) });
        return true;
      } catch (error) {
        if (isAlreadyExists(error)) return false;
        throw error;
      }
    },
  });
}

export function createFirestorePairingStores(firestore: Firestore): PairingStores {
  return Object.freeze({
    hospitals: createFirestoreHospitalRegistry(firestore),
    invitations: createFirestoreInvitationStore(firestore),
    devices: createFirestoreDeviceStore(firestore),
    nonces: createFirestoreNonceStore(firestore),
  });
}
