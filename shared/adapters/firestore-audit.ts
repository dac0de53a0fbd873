// Firestore adapter for the audit log (shared/audit/log.ts). One document per event in
// `auditEvents/{seq, zero-padded}` and the chain head in `auditHeads/main`; an append reads
// the head, chains the new events and writes them with the new head in one transaction, so
// concurrent appends serialise into a single chain instead of forking it.
import type { DocumentData, Firestore } from '@google-cloud/firestore';
import { auditFieldsSchema, chainEvents, type AuditEvent, type AuditFields } from '../audit/chain.ts';
import type { AuditLog } from '../audit/log.ts';
import { str } from './firestore-values.ts';

export const AUDIT_COLLECTIONS = { events: 'auditEvents', heads: 'auditHeads' } as const;

const SEQ_DIGITS = 12;
const MAX_PAGE = 1000;

export function auditEventId(seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0');
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

export function createFirestoreAuditLog(firestore: Firestore): AuditLog {
  const events = firestore.collection(AUDIT_COLLECTIONS.events);
  const head = firestore.collection(AUDIT_COLLECTIONS.heads).doc('main');

  return Object.freeze({
    async append(fields: readonly AuditFields[]) {
      if (fields.length === 0) return [];
      return firestore.runTransaction(
        async (tx) => {
          const snapshot = await tx.get(head);
          const current = snapshot.exists ? eventFrom(snapshot.data()!) : undefined;
          const chained = chainEvents(current, fields);
          for (const event of chained) {
            tx.create(events.doc(auditEventId(event.seq)), { ...event, fields: { ...event.fields } });
          }
          const last = chained.at(-1)!;
          tx.set(head, { ...last, fields: { ...last.fields } });
          return chained;
        },
        { maxAttempts: 20 },
      );
    },

    async list(options: { readonly afterSeq?: number; readonly limit?: number } = {}) {
      const limit = Math.min(options.limit ?? MAX_PAGE, MAX_PAGE);
      const { docs } = await events
        .orderBy('seq')
        .startAfter(options.afterSeq ?? 0)
        .limit(limit)
        .get();
      return docs.map((doc) => eventFrom(doc.data()));
    },
  });
}
