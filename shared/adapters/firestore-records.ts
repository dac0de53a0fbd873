// Firestore adapter for the record store (shared/ports/record-store.ts), over the official
// client. One document per record in `records/{recordId}`; `recipients` is an array so a device
// finds its records with one indexed array-contains query (firestore.indexes.json), and
// `expiresAt` is a Timestamp for the retention job and the TTL backstop.
import { FieldPath } from '@google-cloud/firestore';
import type { DocumentData, Firestore } from '@google-cloud/firestore';
import { contentClassSchema } from '../core/protocol/documents.ts';
import type { NewRecord, RecordAck, RecordCursor, RecordStore, StoredRecord } from '../ports/record-store.ts';
import { hasGrpcStatus, isAlreadyExists, str, toDate, ts } from './firestore-values.ts';

export const RECORDS_COLLECTION = 'records';

function recordData(record: NewRecord): DocumentData {
  return {
    uploadId: record.uploadId,
    hospitalId: record.hospitalId,
    patientRef: record.patientRef,
    contentClass: record.contentClass,
    createdAt: ts(record.createdAt),
    expiresAt: ts(record.expiresAt),
    acceptedAt: ts(record.acceptedAt),
    size: record.size,
    objectName: record.objectName,
    generation: record.generation,
    recipients: [...record.recipients],
    acks: {},
  };
}

function ackFrom(value: unknown): RecordAck | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const data = value as DocumentData;
  if (data.outcome !== 'stored' && data.outcome !== 'failed') return undefined;
  return {
    outcome: data.outcome,
    ...(typeof data.errorCode === 'string' ? { errorCode: data.errorCode } : {}),
    at: toDate(data.at),
  };
}

function recordFrom(recordId: string, data: DocumentData): StoredRecord {
  const acks: Record<string, RecordAck> = {};
  for (const [deviceId, value] of Object.entries((data.acks ?? {}) as Record<string, unknown>)) {
    const ack = ackFrom(value);
    if (ack) acks[deviceId] = ack;
  }
  if (!Array.isArray(data.recipients) || typeof data.size !== 'number') {
    throw new Error('a stored record is malformed');
  }
  return {
    recordId,
    uploadId: str(data.uploadId),
    hospitalId: str(data.hospitalId),
    patientRef: str(data.patientRef),
    contentClass: contentClassSchema.parse(data.contentClass),
    createdAt: toDate(data.createdAt),
    expiresAt: toDate(data.expiresAt),
    acceptedAt: toDate(data.acceptedAt),
    size: data.size,
    objectName: str(data.objectName),
    generation: str(data.generation),
    recipients: data.recipients.map(str),
    acks,
  };
}

/** Optimistic attempts at an acknowledgement before it queues for the document in a transaction. */
const ACK_ATTEMPTS = 8;

type AckWrite = [FieldPath, unknown, ...unknown[]];

/**
 * What an acknowledgement changes: nothing if the device is not a recipient (record undefined)
 * or has stored it already ('stored' is final); else its ack, and once every active recipient
 * has stored it, the time the shortened lifetime starts.
 */
function ackDecision(
  recordId: string,
  data: DocumentData,
  deviceId: string,
  ack: RecordAck,
  activeRecipients: readonly string[] | undefined,
): { record: StoredRecord | undefined; write?: AckWrite } {
  const record = recordFrom(recordId, data);
  if (!record.recipients.includes(deviceId)) return { record: undefined };
  if (record.acks[deviceId]?.outcome === 'stored') return { record };
  const stored = {
    outcome: ack.outcome,
    ...(ack.errorCode !== undefined ? { errorCode: ack.errorCode } : {}),
    at: ts(ack.at),
  };
  const acks = { ...record.acks, [deviceId]: { ...ack } };
  const waitingFor = record.recipients.filter(
    (id) => (activeRecipients?.includes(id) ?? true) && acks[id]?.outcome !== 'stored',
  );
  const allStored = waitingFor.length === 0 && data.allStoredAt === undefined;
  return {
    record: { ...record, acks },
    write: [new FieldPath('acks', deviceId), stored, ...(allStored ? ['allStoredAt', ts(ack.at)] : [])],
  };
}

export function createFirestoreRecordStore(firestore: Firestore): RecordStore {
  const records = firestore.collection(RECORDS_COLLECTION);

  return Object.freeze({
    async create(record: NewRecord) {
      const ref = records.doc(record.recordId);
      try {
        await ref.create(recordData(record));
        return { created: true, record: { ...record, acks: {} } };
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
        const snapshot = await ref.get();
        const data = snapshot.data();
        if (!data) throw error; // deleted between the two calls: let the caller retry
        return { created: false, record: recordFrom(record.recordId, data) };
      }
    },

    async get(recordId: string) {
      const snapshot = await records.doc(recordId).get();
      const data = snapshot.data();
      return snapshot.exists && data ? recordFrom(recordId, data) : undefined;
    },

    async listForDevice(deviceId: string, options: Parameters<RecordStore['listForDevice']>[1]) {
      let query = records
        .where('recipients', 'array-contains', deviceId)
        .orderBy('acceptedAt')
        .orderBy(FieldPath.documentId());
      if (options.after) query = query.startAfter(ts(options.after.acceptedAt), options.after.recordId);
      // One extra document tells whether another page follows.
      const { docs } = await query.limit(options.pageSize + 1).get();
      const page = docs.slice(0, options.pageSize);
      const last = page.at(-1);
      const next: RecordCursor | undefined =
        docs.length > options.pageSize && last
          ? { acceptedAt: toDate(last.get('acceptedAt')), recordId: last.id }
          : undefined;
      const now = options.now.getTime();
      return {
        records: page.map((doc) => recordFrom(doc.id, doc.data())).filter((r) => r.expiresAt.getTime() > now),
        ...(next ? { next } : {}),
      };
    },

    async acknowledge(
      recordId: string,
      deviceId: string,
      ack: RecordAck,
      activeRecipients?: readonly string[],
    ) {
      const ref = records.doc(recordId);
      // A compare-and-swap on the document's update time, not a transaction: a patient's phones
      // acknowledge the same record at the same moment (one push reaches them all), and a
      // transaction's loser waits for the lock and then backs off for a second or more, where a
      // failed precondition is answered at once and the re-read sees the sibling's ack.
      for (let attempt = 1; attempt <= ACK_ATTEMPTS; attempt++) {
        const snapshot = await ref.get();
        const data = snapshot.data();
        if (!snapshot.exists || !data || !snapshot.updateTime) return undefined;
        const decision = ackDecision(recordId, data, deviceId, ack, activeRecipients);
        if (!decision.write) return decision.record;
        try {
          await ref.update(...decision.write, { lastUpdateTime: snapshot.updateTime });
          return decision.record;
        } catch (error) {
          // Another write came first, or the record is gone (the emulator says FAILED_PRECONDITION
          // for both; NOT_FOUND is the other answer a deleted document may get): read again.
          if (!hasGrpcStatus(error, 'FAILED_PRECONDITION') && !hasGrpcStatus(error, 'NOT_FOUND')) throw error;
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
        }
      }
      // Still contended (more writers than phones ever are): the transaction waits its turn.
      return firestore.runTransaction(async (tx) => {
        const snapshot = await tx.get(ref);
        const data = snapshot.data();
        if (!snapshot.exists || !data) return undefined;
        const decision = ackDecision(recordId, data, deviceId, ack, activeRecipients);
        if (decision.write) tx.update(ref, ...decision.write);
        return decision.record;
      });
    },
  });
}
