// Firestore adapter for the audit log (shared/audit/log.ts). One document per event in
// `auditEvents/{chain}:{seq, zero-padded}`, each chain's head in `auditHeads/{chain}`, used
// idempotency keys in `auditOnce/{key}` and signed heads in `auditCheckpoints/{chain}:{seq}`.
// An append reads the head (and the keys), chains the new events and writes them with the new
// head in one transaction, so concurrent appends serialise into one chain instead of forking it.
// Heads carry `sealed` (false until the next checkpoint) and `oldestAt`, so that retention finds
// the chains to seal or prune with a query instead of reading every patient's head.
import { createHash } from 'node:crypto';
import type { DocumentData, Firestore } from '@google-cloud/firestore';
import { FieldValue, Timestamp } from '@google-cloud/firestore';
import { auditFieldsSchema, chainEvents, type AuditCheckpoint, type AuditEvent } from '../audit/chain.ts';
import { chainOf, patientChain, type AuditEntry, type AuditLog } from '../audit/log.ts';
import { formatTimestamp } from '../core/protocol/ids.ts';
import { isAlreadyExists, str } from './firestore-values.ts';

export const AUDIT_COLLECTIONS = {
  events: 'auditEvents',
  heads: 'auditHeads',
  once: 'auditOnce',
  checkpoints: 'auditCheckpoints',
} as const;

const SEQ_DIGITS = 12;
const MAX_PAGE = 1000;
/** Entries per transaction: Firestore allows 500 writes in one; each entry may take two. */
const MAX_ENTRIES_PER_APPEND = 200;

export function auditEventId(chain: string, seq: number): string {
  return `${chain}:${String(seq).padStart(SEQ_DIGITS, '0')}`;
}

/** Keys may be any text; their document ids are hashes so no key can form a bad path. */
function onceId(key: string): string {
  return createHash('sha256').update(key).digest('base64url');
}

function eventFrom(data: DocumentData): AuditEvent {
  if (typeof data.seq !== 'number') throw new Error('a stored audit event is malformed');
  return {
    seq: data.seq,
    fields: auditFieldsSchema.parse(data.fields),
    prevHash: str(data.prevHash),
    hash: str(data.hash),
  };
}

function checkpointFrom(data: DocumentData): AuditCheckpoint {
  return {
    seq: Number(data.seq),
    hash: str(data.hash),
    at: str(data.at),
    signature: new Uint8Array(data.signature as Buffer),
  };
}

function stored(chain: string, event: AuditEvent): DocumentData {
  // `chain` and `patientRef` are copied out of `fields` only to be queried on.
  return {
    ...event,
    fields: { ...event.fields },
    chain,
    ...(event.fields.patientRef ? { patientRef: event.fields.patientRef } : {}),
  };
}

export function createFirestoreAuditLog(firestore: Firestore): AuditLog {
  const events = firestore.collection(AUDIT_COLLECTIONS.events);
  const heads = firestore.collection(AUDIT_COLLECTIONS.heads);
  const once = firestore.collection(AUDIT_COLLECTIONS.once);
  const checkpoints = firestore.collection(AUDIT_COLLECTIONS.checkpoints);

  async function appendToChain(chain: string, entries: readonly AuditEntry[]): Promise<AuditEvent[]> {
    const parsed = entries.map((entry) => ({ ...entry, fields: auditFieldsSchema.parse(entry.fields) }));
    return firestore.runTransaction(
      async (tx) => {
        const head = heads.doc(chain);
        const keyed = parsed.filter((entry) => entry.once !== undefined);
        const [snapshot, ...keySnapshots] = await tx.getAll(
          head,
          ...keyed.map((entry) => once.doc(onceId(entry.once!))),
        );
        const seen = new Set(keySnapshots.filter((s) => s.exists).map((s) => s.id));
        const fresh = parsed.filter((entry) => entry.once === undefined || !seen.has(onceId(entry.once)));
        // The same key twice in one call counts once too.
        const unique = fresh.filter(
          (entry, index) =>
            entry.once === undefined || fresh.findIndex((e) => e.once === entry.once) === index,
        );
        if (unique.length === 0) return [];
        const current = snapshot!.exists ? eventFrom(snapshot!.data()!) : undefined;
        const chained = chainEvents(
          current,
          unique.map((entry) => entry.fields),
        );
        chained.forEach((event, index) => {
          tx.create(events.doc(auditEventId(chain, event.seq)), stored(chain, event));
          const key = unique[index]!.once;
          if (key !== undefined) tx.create(once.doc(onceId(key)), { chain, seq: event.seq });
        });
        // `sealed: false` until the next checkpoint; `oldestAt` tells retention which chains to prune.
        const oldestAt = snapshot!.get('oldestAt') ?? Timestamp.fromMillis(Date.parse(chained[0]!.fields.at));
        tx.set(head, { ...stored(chain, chained.at(-1)!), sealed: false, oldestAt });
        return chained;
      },
      { maxAttempts: 30 },
    );
  }

  return Object.freeze({
    async append(entries: readonly AuditEntry[]) {
      const byChain = new Map<string, AuditEntry[]>();
      for (const entry of entries) {
        const chain = chainOf(entry.fields);
        const list = byChain.get(chain);
        if (list) list.push(entry);
        else byChain.set(chain, [entry]);
      }
      const out: AuditEvent[] = [];
      for (const [chain, list] of byChain) {
        for (let i = 0; i < list.length; i += MAX_ENTRIES_PER_APPEND) {
          out.push(...(await appendToChain(chain, list.slice(i, i + MAX_ENTRIES_PER_APPEND))));
        }
      }
      return out;
    },

    async list(chain: string, options: { readonly afterSeq?: number; readonly limit?: number } = {}) {
      const limit = Math.min(options.limit ?? MAX_PAGE, MAX_PAGE);
      const { docs } = await events
        .where('chain', '==', chain)
        .orderBy('seq')
        .startAfter(options.afterSeq ?? 0)
        .limit(limit)
        .get();
      return docs.map((doc) => eventFrom(doc.data()));
    },

    async chains() {
      const refs = await heads.listDocuments();
      return refs.map((ref) => ref.id).sort();
    },

    async unsealedChains() {
      const { docs } = await heads.where('sealed', '==', false).select().get();
      return docs.map((doc) => doc.id).sort();
    },

    async chainsOlderThan(at: Date) {
      const { docs } = await heads.where('oldestAt', '<=', Timestamp.fromDate(at)).select().get();
      return docs.map((doc) => doc.id).sort();
    },

    async forPatient(
      hospitalId: string,
      patientRef: string,
      options: { readonly limit: number; readonly beforeSeq?: number },
    ) {
      let query = events.where('chain', '==', patientChain(hospitalId, patientRef)).orderBy('seq', 'desc');
      if (options.beforeSeq !== undefined) query = query.startAfter(options.beforeSeq);
      const { docs } = await query.limit(Math.min(options.limit, MAX_PAGE)).get();
      return docs.map((doc) => eventFrom(doc.data()));
    },

    async checkpoint(chain: string, sign: Parameters<AuditLog['checkpoint']>[1], at: Date) {
      const snapshot = await heads.doc(chain).get();
      if (!snapshot.exists) return undefined;
      const head = eventFrom(snapshot.data()!);
      const ref = checkpoints.doc(auditEventId(chain, head.seq));
      const markSealed = () =>
        // Only if no event came in meanwhile; otherwise the chain stays for the next run to seal.
        heads
          .doc(chain)
          .update({ sealed: true }, { lastUpdateTime: snapshot.updateTime! })
          .catch(() => undefined);
      // A head already sealed keeps its first checkpoint: its time is what retention ages by.
      const existing = await ref.get();
      if (existing.exists) {
        await markSealed();
        return checkpointFrom(existing.data()!);
      }
      const signed = { seq: head.seq, hash: head.hash, at: formatTimestamp(at) };
      const checkpoint: AuditCheckpoint = { ...signed, signature: await sign(signed) };
      try {
        await ref.create({ ...signed, chain, signature: Buffer.from(checkpoint.signature) });
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
        return checkpointFrom((await ref.get()).data()!);
      }
      await markSealed();
      return checkpoint;
    },

    async prune(chain: string, throughSeq: number) {
      let pruned = 0;
      const sweep = async (query: FirebaseFirestore.Query, count: boolean) => {
        for (;;) {
          const { docs } = await query.limit(MAX_PAGE / 2).get();
          if (docs.length === 0) return;
          const batch = firestore.batch();
          for (const doc of docs) batch.delete(doc.ref);
          await batch.commit();
          if (count) pruned += docs.length;
        }
      };
      await sweep(events.where('chain', '==', chain).where('seq', '<=', throughSeq), true);
      await sweep(once.where('chain', '==', chain).where('seq', '<=', throughSeq), false);
      await sweep(checkpoints.where('chain', '==', chain).where('seq', '<', throughSeq), false);
      const rest = await events
        .where('chain', '==', chain)
        .orderBy('seq')
        .startAfter(throughSeq)
        .limit(1)
        .get();
      const first = rest.docs[0] ? eventFrom(rest.docs[0].data()) : undefined;
      await heads.doc(chain).update({
        oldestAt: first ? Timestamp.fromMillis(Date.parse(first.fields.at)) : FieldValue.delete(),
      });
      return pruned;
    },

    async checkpoints(chain: string) {
      const { docs } = await checkpoints.where('chain', '==', chain).get();
      return docs.map((doc) => checkpointFrom(doc.data()));
    },
  });
}
