// Firestore adapters for the pairing stores (shared/ports/pairing-store.ts), over the official
// client. Collections: hospitals, invitations, devices, nonces. Every document carries
// `expiresAt` (a Firestore Timestamp) for the retention job (invariant 8). Invitations keep
// only the token's SHA-256; a consumption is one transaction, so two concurrent pairs on one
// invitation cannot both succeed. The invitation rules are the pairing service's: a consumption
// here only reads what they judge and writes what they decide.
import { createHash } from 'node:crypto';
import { FieldPath } from '@google-cloud/firestore';
import type { DocumentData, Firestore } from '@google-cloud/firestore';
import type {
  DeviceStore,
  HospitalRecord,
  HospitalRegistration,
  HospitalRegistry,
  InvitationStore,
  NewInvitation,
  NonceStore,
  PairingDecision,
  PairingSnapshot,
  PairingStores,
  PairingWrites,
  StoredInvitation,
} from '../ports/pairing-store.ts';
import { deviceData, deviceFrom } from './firestore-devices.ts';
import { hasGrpcStatus, isAlreadyExists, str, toDate, ts } from './firestore-values.ts';

export const PAIRING_COLLECTIONS = {
  hospitals: 'hospitals',
  invitations: 'invitations',
  devices: 'devices',
  nonces: 'nonces',
} as const;

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

    async consume(
      invitationId: string,
      deviceId: string,
      decide: (snapshot: PairingSnapshot) => PairingDecision,
    ): Promise<PairingDecision> {
      const ref = invitations.doc(invitationId);
      try {
        return await firestore.runTransaction(
          async (tx) => {
            const decision = decide(await readPairing(tx, ref, devices.doc(deviceId)));
            writePairing(tx, ref, decision.writes);
            return decision;
          },
          { maxAttempts: 10 },
        );
      } catch (error) {
        // Concurrent pairs on one invitation contend for its lock; Firestore aborts the
        // losers and the client retries them. If one still gives up, the invitation has
        // usually been taken by the winner meanwhile: say so, rather than fail with a 500.
        // The emulator, on a loaded machine, ends such a loser with INVALID_ARGUMENT (its
        // transaction expired while it waited for the lock) instead of ABORTED (a CI run
        // answered 500 that way). Either way only a re-read that finds the invitation taken
        // turns it into INVITATION_USED; anything else stays the error it is.
        if (!hasGrpcStatus(error, 'ABORTED') && !hasGrpcStatus(error, 'INVALID_ARGUMENT')) throw error;
        const after = await ref.get();
        if (after.exists && after.get('status') !== 'open') return { outcome: 'INVITATION_USED', writes: {} };
        throw error;
      }
    },
  });

  async function readPairing(
    tx: FirebaseFirestore.Transaction,
    ref: FirebaseFirestore.DocumentReference,
    deviceRef: FirebaseFirestore.DocumentReference,
  ): Promise<PairingSnapshot> {
    const snapshot = await tx.get(ref);
    const data = snapshot.data();
    const stored = await tx.get(deviceRef);
    const device = stored.exists ? deviceFrom(stored.id, stored.data() ?? {}) : undefined;
    if (!snapshot.exists || !data) return { invitation: undefined, device, patientDevices: [] };
    const invitation = invitationFrom(data);
    // Only an open invitation can add a device, so only then does the limit need the patient's
    // devices. Skipping the query otherwise keeps the retried losers of concurrent pairs as short
    // as they were (a longer one once failed with INVALID_ARGUMENT instead of ABORTED: a 500).
    if (invitation.status !== 'open') return { invitation, device, patientDevices: [] };
    const active = await tx.get(
      devices
        .where('hospitalId', '==', invitation.hospitalId)
        .where('patientRef', '==', invitation.patientRef)
        .where('status', '==', 'active'),
    );
    return { invitation, device, patientDevices: active.docs.map((doc) => deviceFrom(doc.id, doc.data())) };
  }

  function writePairing(
    tx: FirebaseFirestore.Transaction,
    ref: FirebaseFirestore.DocumentReference,
    writes: PairingWrites,
  ): void {
    const change = writes.invitation;
    if (change) {
      tx.update(ref, {
        ...(change.attempts === undefined ? {} : { attempts: change.attempts }),
        ...(change.status === undefined ? {} : { status: change.status }),
        ...(change.usedAt === undefined ? {} : { usedAt: ts(change.usedAt) }),
        ...(change.usedBy === undefined ? {} : { deviceId: change.usedBy }),
      });
    }
    if (writes.newDevice) tx.create(devices.doc(writes.newDevice.deviceId), deviceData(writes.newDevice));
  }
}

function invitationFrom(data: DocumentData): StoredInvitation {
  const status = data.status === 'open' || data.status === 'locked' ? data.status : 'used';
  return {
    hospitalId: str(data.hospitalId),
    patientRef: str(data.patientRef),
    tokenSha256: str(data.tokenSha256),
    attempts: typeof data.attempts === 'number' ? data.attempts : 0,
    maxAttempts: typeof data.maxAttempts === 'number' ? data.maxAttempts : 1,
    status,
    expiresAt: toDate(data.expiresAt),
    ...(typeof data.deviceId === 'string' ? { usedBy: data.deviceId } : {}),
  };
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
        if (!hasGrpcStatus(error, 'NOT_FOUND')) throw error;
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
