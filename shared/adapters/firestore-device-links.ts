// Firestore adapter for device linking (shared/ports/device-link-store.ts). A linked device is a
// document in `devices` laid out as firestore-devices.ts lays out a paired one, plus three
// fields: `link` (the signed link, opaque wraps and signatures only), `linkId` and `linkedBy`.
// Keeping the link on the device document means revocation, retention and a patient's erasure,
// which delete devices, delete links with them. The records whose keys the link re-wraps get the
// new device in `recipients` in the same transaction, so the records function serves them to it.
import { FieldValue } from '@google-cloud/firestore';
import type { DocumentData, Firestore } from '@google-cloud/firestore';
import type {
  DeviceLinkStore,
  LinkAsk,
  LinkDecision,
  LinkedRecordState,
  LinkSnapshot,
  NewLinkedDevice,
} from '../ports/device-link-store.ts';
import type { DeviceRecord } from '../ports/pairing-store.ts';
import { deviceData, deviceFrom as pairedDeviceFrom } from './firestore-devices.ts';
import { PAIRING_COLLECTIONS } from './firestore-pairing.ts';
import { RECORDS_COLLECTION } from './firestore-records.ts';
import { str, toDate } from './firestore-values.ts';

/** A device document as pairing reads it, with its link. */
function deviceFrom(deviceId: string, data: DocumentData): DeviceRecord & { link?: string } {
  return {
    ...pairedDeviceFrom(deviceId, data),
    ...(typeof data.link === 'string' ? { link: data.link } : {}),
  };
}

function linkedDeviceData(device: NewLinkedDevice): DocumentData {
  return { ...deviceData(device), link: device.link, linkId: device.linkId, linkedBy: device.linkedBy };
}

function recordStateFrom(data: DocumentData | undefined): LinkedRecordState | undefined {
  if (!data || !Array.isArray(data.recipients)) return undefined;
  return {
    hospitalId: str(data.hospitalId),
    patientRef: str(data.patientRef),
    recipients: data.recipients.map(str),
    expiresAt: toDate(data.expiresAt),
  };
}

export function createFirestoreDeviceLinkStore(firestore: Firestore): DeviceLinkStore {
  const devices = firestore.collection(PAIRING_COLLECTIONS.devices);
  const records = firestore.collection(RECORDS_COLLECTION);
  return Object.freeze({
    async link(ask: LinkAsk, decide: (snapshot: LinkSnapshot) => LinkDecision): Promise<LinkDecision> {
      return firestore.runTransaction(async (tx) => {
        const [linkerDoc, targetDoc] = await tx.getAll(devices.doc(ask.linkerId), devices.doc(ask.deviceId));
        const taken = await tx.get(devices.where('linkId', '==', ask.linkId).limit(2));
        const patient = await tx.get(
          devices
            .where('hospitalId', '==', ask.hospitalId)
            .where('patientRef', '==', ask.patientRef)
            .where('status', '==', 'active'),
        );
        const recordDocs =
          ask.recordIds.length === 0 ? [] : await tx.getAll(...ask.recordIds.map((id) => records.doc(id)));
        const linkerData = linkerDoc?.data();
        const targetData = targetDoc?.data();
        const decision = decide({
          linker: linkerData ? deviceFrom(ask.linkerId, linkerData) : undefined,
          target: targetData ? deviceFrom(ask.deviceId, targetData) : undefined,
          linkIdTaken: taken.docs.some((doc) => doc.id !== ask.deviceId),
          patientDevices: patient.docs.map((doc) => deviceFrom(doc.id, doc.data())),
          records: new Map(ask.recordIds.map((id, i) => [id, recordStateFrom(recordDocs[i]?.data())])),
        });
        if (decision.writes) {
          tx.create(devices.doc(decision.writes.device.deviceId), linkedDeviceData(decision.writes.device));
          for (const recordId of decision.writes.recordIds) {
            tx.update(records.doc(recordId), {
              recipients: FieldValue.arrayUnion(decision.writes.device.deviceId),
            });
          }
        }
        return decision;
      });
    },

    async linksOf(deviceIds: readonly string[]): Promise<ReadonlyMap<string, string>> {
      if (deviceIds.length === 0) return new Map();
      const docs = await firestore.getAll(...deviceIds.map((id) => devices.doc(id)));
      const links = new Map<string, string>();
      for (const doc of docs) {
        const link = doc.data()?.link;
        if (typeof link === 'string') links.set(doc.id, link);
      }
      return links;
    },
  });
}
