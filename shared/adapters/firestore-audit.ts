// Firestore adapter for the audit log (shared/audit/log.ts). Each event is a document of its
// own in `auditEntries/{id}`: recording never reads or writes any other document, so events
// of one patient, one hospital or the whole platform never contend. A `once` key becomes the
// document id (hashed, so no key can form a bad path), which makes create() the idempotency
// check. Pending entries carry `pending: true` until the sequencer writes their `index`.
import { createHash } from 'node:crypto';
import type { DocumentData, Firestore, Query } from '@google-cloud/firestore';
import { FieldPath, FieldValue, Timestamp } from '@google-cloud/firestore';
import { logIdOf, openAuditEvent, sealAuditEvent } from '../audit/fields.ts';
import type { AuditEntry, AuditEntryStore, AuditLog, RecordedAuditEntry } from '../audit/log.ts';
import { inParallel } from '../core/in-parallel.ts';
import type { LogRegistry, WitnessedCheckpoint } from '../ports/log-registry.ts';
import { isAlreadyExists, str, toDate } from './firestore-values.ts';

export const AUDIT_COLLECTIONS = {
  entries: 'auditEntries',
  /** One document per log; its subcollection `witnessed` keeps every cosigned checkpoint. */
  logs: 'auditLogs',
} as const;
/** The subcollection of a log's document that keeps every checkpoint its witness cosigned. */
export const WITNESSED_COLLECTION = 'witnessed';
const SIZE_DIGITS = 16;

const MAX_PAGE = 1000;
/** Firestore allows 500 writes per batch. */
const BATCH_WRITES = 400;
/** Concurrent creates per append: enough to hide round trips, few enough not to flood. */
const APPEND_PARALLELISM = 16;

/** What forPatient queries on: one patient at one hospital ('.' occurs in neither id). */
function patientKey(hospitalId: string, patientRef: string): string {
  return `${hospitalId}.${patientRef}`;
}

function entryId(once: string | undefined, firestore: Firestore): string {
  return once === undefined
    ? firestore.collection(AUDIT_COLLECTIONS.entries).doc().id
    : `once-${createHash('sha256').update(once).digest('base64url')}`;
}

function entryFrom(id: string, data: DocumentData): RecordedAuditEntry {
  const event = str(data.event);
  const salt = data.salt;
  if (!(salt instanceof Uint8Array)) throw new Error('a stored audit entry is malformed');
  const index = data.index;
  if (index !== undefined && (typeof index !== 'number' || !Number.isSafeInteger(index))) {
    throw new Error('a stored audit entry is malformed');
  }
  return {
    id,
    logId: str(data.logId),
    fields: openAuditEvent(event),
    event,
    salt: new Uint8Array(salt),
    ...(index !== undefined ? { index } : {}),
  };
}

export function createFirestoreAuditLog(firestore: Firestore): AuditLog & AuditEntryStore {
  const entries = firestore.collection(AUDIT_COLLECTIONS.entries);

  async function record(entry: AuditEntry): Promise<void> {
    const sealed = sealAuditEvent(entry.fields);
    const { hospitalId, patientRef } = sealed.fields;
    try {
      await entries.doc(entryId(entry.once, firestore)).create({
        logId: logIdOf(sealed.fields),
        event: sealed.event,
        salt: Buffer.from(sealed.salt),
        at: Timestamp.fromMillis(Date.parse(sealed.fields.at)),
        // Events carry whole seconds; the commit time orders those of one second as they happened.
        recordedAt: FieldValue.serverTimestamp(),
        pending: true,
        ...(hospitalId !== undefined && patientRef !== undefined
          ? { patient: patientKey(hospitalId, patientRef) }
          : {}),
      });
    } catch (error) {
      // Recorded before under the same key: a retried step.
      if (!isAlreadyExists(error)) throw error;
    }
  }

  async function page(query: Query): Promise<RecordedAuditEntry[]> {
    const { docs } = await query.get();
    return docs.map((doc) => entryFrom(doc.id, doc.data()));
  }

  return Object.freeze({
    async append(list: readonly AuditEntry[]) {
      await inParallel(list, APPEND_PARALLELISM, record);
    },

    async forPatient(
      hospitalId: string,
      patientRef: string,
      options: { readonly limit: number; readonly after?: string },
    ) {
      let query = entries
        .where('patient', '==', patientKey(hospitalId, patientRef))
        .orderBy('at', 'desc')
        .orderBy('recordedAt', 'desc')
        .orderBy(FieldPath.documentId(), 'desc');
      if (options.after !== undefined) {
        const after = await entries.doc(options.after).get();
        if (!after.exists || after.get('patient') !== patientKey(hospitalId, patientRef)) return [];
        query = query.startAfter(after);
      }
      return page(query.limit(Math.min(options.limit, MAX_PAGE)));
    },

    async pending(limit: number) {
      return page(
        entries
          .where('pending', '==', true)
          .orderBy('at')
          .orderBy('recordedAt')
          .limit(Math.min(limit, MAX_PAGE)),
      );
    },

    async get(ids: readonly string[]) {
      if (ids.length === 0) return [];
      const snapshots = await firestore.getAll(...ids.map((id) => entries.doc(id)));
      return snapshots.map((s) => (s.exists ? entryFrom(s.id, s.data()!) : undefined));
    },

    async assignIndexes(assignments: readonly { readonly id: string; readonly index: number }[]) {
      for (let i = 0; i < assignments.length; i += BATCH_WRITES) {
        const batch = firestore.batch();
        for (const { id, index } of assignments.slice(i, i + BATCH_WRITES)) {
          batch.update(entries.doc(id), { index, pending: FieldValue.delete() });
        }
        await batch.commit();
      }
    },

    async sequenced(logId: string, options: { readonly from: number; readonly limit: number }) {
      return page(
        entries
          .where('logId', '==', logId)
          .where('index', '>=', options.from)
          .where('index', '<', options.from + options.limit)
          .orderBy('index')
          .limit(Math.min(options.limit, MAX_PAGE)),
      );
    },

    async pruneBefore(logId: string, before: number) {
      let deleted = 0;
      for (;;) {
        const { docs } = await entries
          .where('logId', '==', logId)
          .where('index', '<', before)
          .orderBy('index')
          .limit(BATCH_WRITES)
          .select()
          .get();
        if (docs.length === 0) return deleted;
        const batch = firestore.batch();
        for (const doc of docs) batch.delete(doc.ref);
        await batch.commit();
        deleted += docs.length;
      }
    },
  });
}

function witnessedFrom(data: DocumentData): WitnessedCheckpoint {
  if (typeof data.size !== 'number') throw new Error('a stored witnessed checkpoint is malformed');
  return { size: data.size, note: str(data.note), cosignedAt: toDate(data.cosignedAt) };
}

export function createFirestoreLogRegistry(firestore: Firestore): LogRegistry {
  const logs = firestore.collection(AUDIT_COLLECTIONS.logs);
  const history = (logId: string) => logs.doc(logId).collection(WITNESSED_COLLECTION);
  return Object.freeze({
    async markStaging(logId: string) {
      await logs.doc(logId).set({ staging: true }, { merge: true });
    },
    async markCommitted(logId: string, verifierKey?: string) {
      await logs.doc(logId).set({ staging: false, ...(verifierKey ? { verifierKey } : {}) }, { merge: true });
    },
    async inFlight() {
      const { docs } = await logs.where('staging', '==', true).select().get();
      return docs.map((doc) => doc.id).sort();
    },
    async logs() {
      const refs = await logs.listDocuments();
      return refs.map((ref) => ref.id).sort();
    },
    async state(logId: string) {
      const snapshot = await logs.doc(logId).get();
      const latest = snapshot.get('witnessed') as DocumentData | undefined;
      const verifierKey = snapshot.get('verifierKey') as unknown;
      const witnessKey = snapshot.get('witnessKey') as unknown;
      return {
        ...(typeof verifierKey === 'string' ? { verifierKey } : {}),
        ...(typeof witnessKey === 'string' ? { witnessKey } : {}),
        ...(latest !== undefined ? { witnessed: witnessedFrom(latest) } : {}),
      };
    },
    async recordWitnessed(logId: string, checkpoint: WitnessedCheckpoint, witnessKey: string) {
      const stored = {
        size: checkpoint.size,
        note: checkpoint.note,
        cosignedAt: Timestamp.fromDate(checkpoint.cosignedAt),
      };
      return firestore.runTransaction(async (tx) => {
        const snapshot = await tx.get(logs.doc(logId));
        const knownKey = snapshot.get('witnessKey') as unknown;
        if (knownKey !== undefined && knownKey !== witnessKey) return 'key-mismatch' as const;
        const latest = snapshot.get('witnessed') as DocumentData | undefined;
        if (latest !== undefined && witnessedFrom(latest).size >= checkpoint.size) return 'stale' as const;
        tx.set(logs.doc(logId), { witnessed: stored, witnessKey }, { merge: true });
        tx.set(history(logId).doc(String(checkpoint.size).padStart(SIZE_DIGITS, '0')), stored);
        return 'recorded' as const;
      });
    },
    async witnessedBefore(logId: string, at: Date) {
      const { docs } = await history(logId)
        .where('cosignedAt', '<=', Timestamp.fromDate(at))
        .orderBy('cosignedAt', 'desc')
        .limit(1)
        .get();
      return docs[0] ? witnessedFrom(docs[0].data()) : undefined;
    },
  });
}
