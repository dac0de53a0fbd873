// Firestore adapter for the purge store (shared/retention/purge-store.ts). Work is found with
// indexed range queries on Timestamp fields (firestore.indexes.json lists the composite ones).
// A job lives in `purgeJobs/{jobId}` and its ledger in `purgeJobs/{jobId}/ledger/{entry}`: each
// entry is written with an id derived from its content, so a retried write is a no-op, and the
// receipt takes the union of the entries, so an id noted twice is counted once.
import { createHash } from 'node:crypto';
import type { DocumentData, DocumentReference, Firestore, Query } from '@google-cloud/firestore';
import { Timestamp } from '@google-cloud/firestore';
import {
  LEDGER_KINDS,
  type ExpiryQuery,
  type JobState,
  type Ledger,
  type LedgerKind,
  type PurgeItem,
  type PurgeKind,
  type PurgeStore,
} from '../retention/purge-store.ts';
import { PAIRING_COLLECTIONS } from './firestore-pairing.ts';
import { RECORDS_COLLECTION } from './firestore-records.ts';
import { isAlreadyExists, str, toDate, ts } from './firestore-values.ts';

export const PURGE_COLLECTIONS = { jobs: 'purgeJobs', ledger: 'ledger', cursors: 'purgeCursors' } as const;

const COLLECTION_OF: Record<PurgeKind, string> = {
  record: RECORDS_COLLECTION,
  invitation: PAIRING_COLLECTIONS.invitations,
  device: PAIRING_COLLECTIONS.devices,
};

/** Firestore's limit on writes in one batch. */
const MAX_BATCH_WRITES = 500;
/** Ids per ledger entry: well inside Firestore's 1 MiB document limit. */
const MAX_LEDGER_IDS = 2000;

function itemFrom(kind: PurgeKind, id: string, data: DocumentData): PurgeItem {
  return {
    kind,
    id,
    hospitalId: str(data.hospitalId),
    patientRef: str(data.patientRef),
    ...(kind === 'record'
      ? { objectName: str(data.objectName), generation: str(data.generation), uploadId: str(data.uploadId) }
      : {}),
  };
}

function jobFrom(data: DocumentData): JobState {
  const receipt = data.receipt instanceof Uint8Array ? new Uint8Array(data.receipt) : undefined;
  return {
    status: data.status === 'done' ? 'done' : 'running',
    startedAt: toDate(data.startedAt),
    ...(receipt ? { receipt } : {}),
  };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function createFirestorePurgeStore(firestore: Firestore): PurgeStore {
  const jobs = firestore.collection(PURGE_COLLECTIONS.jobs);
  const cursors = firestore.collection(PURGE_COLLECTIONS.cursors);
  const collection = (kind: PurgeKind) => firestore.collection(COLLECTION_OF[kind]);

  /** Deletes documents in batches of at most MAX_BATCH_WRITES, each batch one atomic write. */
  async function deleteInBatches(refs: readonly DocumentReference[]): Promise<void> {
    for (const part of chunks(refs, MAX_BATCH_WRITES)) {
      const batch = firestore.batch();
      for (const ref of part) batch.delete(ref);
      await batch.commit();
    }
  }

  async function items(kind: PurgeKind, query: Query): Promise<PurgeItem[]> {
    const { docs } = await query.get();
    return docs.map((doc) => itemFrom(kind, doc.id, doc.data()));
  }

  return Object.freeze({
    async findExpired(query: ExpiryQuery) {
      let q: Query = collection(query.kind);
      if (query.hospitalId !== undefined) q = q.where('hospitalId', '==', query.hospitalId);
      q = q.where(query.field, '<=', Timestamp.fromDate(query.before)).orderBy(query.field);
      return items(query.kind, q.limit(query.limit));
    },

    async findForPatient(kind: PurgeKind, hospitalId: string, patientRef: string, limit: number) {
      const q = collection(kind)
        .where('hospitalId', '==', hospitalId)
        .where('patientRef', '==', patientRef)
        .limit(limit);
      return items(kind, q);
    },

    async existingRecords(recordIds: readonly string[]) {
      if (recordIds.length === 0) return new Set<string>();
      const snapshots = await firestore.getAll(...recordIds.map((id) => collection('record').doc(id)));
      return new Set(snapshots.filter((s) => s.exists).map((s) => s.id));
    },

    async removeDocuments(list: readonly PurgeItem[]) {
      await deleteInBatches(list.map((item) => collection(item.kind).doc(item.id)));
    },

    async openJob(jobId: string, startedAt: Date): Promise<JobState> {
      const ref = jobs.doc(jobId);
      try {
        await ref.create({ status: 'running', startedAt: ts(startedAt) });
        return { status: 'running', startedAt };
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
      return jobFrom((await ref.get()).data() ?? {});
    },

    async getJob(jobId: string) {
      const snapshot = await jobs.doc(jobId).get();
      return snapshot.exists ? jobFrom(snapshot.data()!) : undefined;
    },

    async note(jobId: string, kind: LedgerKind, ids: readonly string[]) {
      for (const part of chunks([...ids].sort(), MAX_LEDGER_IDS)) {
        const entryId = `${kind}-${createHash('sha256').update(part.join('\n')).digest('base64url')}`;
        await jobs.doc(jobId).collection(PURGE_COLLECTIONS.ledger).doc(entryId).set({ kind, ids: part });
      }
    },

    async ledger(jobId: string): Promise<Ledger> {
      const sets = Object.fromEntries(LEDGER_KINDS.map((kind) => [kind, new Set<string>()])) as Record<
        LedgerKind,
        Set<string>
      >;
      const { docs } = await jobs.doc(jobId).collection(PURGE_COLLECTIONS.ledger).get();
      for (const doc of docs) {
        const kind = doc.get('kind') as LedgerKind;
        for (const id of (doc.get('ids') as unknown[]) ?? []) sets[kind]?.add(str(id));
      }
      return Object.fromEntries(
        LEDGER_KINDS.map((kind) => [kind, [...sets[kind]].sort()]),
      ) as unknown as Ledger;
    },

    async finishJob(jobId: string, receipt: Uint8Array, finishedAt: Date, keepUntil: Date) {
      const job = jobs.doc(jobId);
      const ledger = await job.collection(PURGE_COLLECTIONS.ledger).listDocuments();
      // The receipt and the ledger's removal in one atomic write, so the job never stands done
      // without its receipt nor with a ledger its TTL (expiresAt, on the job only) would orphan.
      // A ledger too long for one batch (over a million ids) loses its tail just after.
      const batch = firestore.batch();
      batch.update(job, {
        status: 'done',
        finishedAt: ts(finishedAt),
        receipt: Buffer.from(receipt),
        expiresAt: ts(keepUntil),
      });
      for (const entry of ledger.slice(0, MAX_BATCH_WRITES - 1)) batch.delete(entry);
      await batch.commit();
      await deleteInBatches(ledger.slice(MAX_BATCH_WRITES - 1));
    },

    async discardJob(jobId: string, alsoRemove: readonly PurgeItem[] = []) {
      const job = jobs.doc(jobId);
      const refs = [
        ...(await job.collection(PURGE_COLLECTIONS.ledger).listDocuments()),
        job,
        ...alsoRemove.map((item) => collection(item.kind).doc(item.id)),
      ];
      // One batch when it fits (any erasure up to hundreds of ledger entries); otherwise the
      // ledger entries that do not fit go first, and the job with the other documents last,
      // still together in one batch.
      const spill = Math.max(0, refs.length - MAX_BATCH_WRITES);
      await deleteInBatches(refs.slice(0, spill));
      await deleteInBatches(refs.slice(spill));
    },

    async cursor(name: string) {
      const snapshot = await cursors.doc(name).get();
      const value = snapshot.get('value');
      return typeof value === 'string' ? value : undefined;
    },

    async setCursor(name: string, value: string | undefined) {
      await cursors.doc(name).set({ value: value ?? null });
    },
  });
}
