// The Firestore audit log (shared/adapters/firestore-audit.ts) against Google's Firestore
// emulator: every event is a document of its own, a `once` key records a retried step once,
// a patient's events list newest first page by page, the sequencer's view (pending, indexes,
// ranges, pruning) behaves as the port says, and the log registry keeps the witnessed
// checkpoint monotone and its witness key fixed.
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFirestoreEmulator, type FirestoreEmulator } from '../../emulator/firestore/server.ts';
import {
  AUDIT_COLLECTIONS,
  createFirestoreAuditLog,
  createFirestoreLogRegistry,
} from '../../shared/adapters/firestore-audit.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import type { AuditFields } from '../../shared/audit/fields.ts';
import type { AuditEntryStore, AuditLog } from '../../shared/audit/log.ts';
import { auditLeafData } from '../../shared/core/tlog/index.ts';
import type { LogRegistry } from '../../shared/ports/log-registry.ts';

const HOSPITAL = 'st-audit-zh';
const PATIENT = 'P'.repeat(21) + 'A';

function fields(second: number, extra: Partial<AuditFields> = {}): AuditFields {
  return {
    at: `2031-03-01T12:${String(Math.floor(second / 60)).padStart(2, '0')}:${String(second % 60).padStart(2, '0')}Z`,
    actor: { kind: 'system', id: 'ingest' },
    action: 'record.created',
    hospitalId: HOSPITAL,
    ...extra,
  };
}

describe('AuditLog over Firestore', () => {
  let emulator: FirestoreEmulator;
  let firestore: Firestore;
  let log: AuditLog & AuditEntryStore;
  let registry: LogRegistry;

  beforeAll(async () => {
    emulator = await startFirestoreEmulator({ projectId: 'cb-audit-log' });
    firestore = createFirestore('cb-audit-log', { FIRESTORE_EMULATOR_HOST: emulator.address });
    log = createFirestoreAuditLog(firestore);
    registry = createFirestoreLogRegistry(firestore);
  });

  afterAll(async () => {
    await firestore?.terminate();
    await emulator?.close();
  });

  it('records each event in a document of its own, with a fresh salt, pending until sequenced', async () => {
    await log.append([{ fields: fields(1) }, { fields: fields(1) }]);
    const pending = await log.pending(10);
    expect(pending).toHaveLength(2);
    const [a, b] = pending;
    expect(a!.event).toBe(b!.event);
    expect(Buffer.from(a!.salt).equals(Buffer.from(b!.salt))).toBe(false);
    expect(auditLeafData(a!.salt, a!.event)).not.toEqual(auditLeafData(b!.salt, b!.event));
    expect(pending.every((entry) => entry.index === undefined && entry.logId === HOSPITAL)).toBe(true);
  });

  it('records a step once under its once key, however often and however concurrently it is retried', async () => {
    const before = (await firestore.collection(AUDIT_COLLECTIONS.entries).get()).size;
    await Promise.all(
      Array.from({ length: 5 }, () => log.append([{ fields: fields(2), once: 'ingest:upload-1:created' }])),
    );
    expect((await firestore.collection(AUDIT_COLLECTIONS.entries).get()).size).toBe(before + 1);
  });

  it('concurrent appends for one patient all land (nothing to contend on), and list newest first in pages', async () => {
    const patient = { patientRef: PATIENT };
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => log.append([{ fields: fields(100 + i, patient) }])),
    );
    const pages: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await log.forPatient(HOSPITAL, PATIENT, { limit: 7, ...(after ? { after } : {}) });
      if (page.length === 0) break;
      pages.push(...page.map((entry) => entry.fields.at));
      after = page.at(-1)!.id;
    }
    expect(pages).toHaveLength(30);
    expect([...pages].sort().reverse()).toEqual(pages);
    // Another patient's page token gives nothing of this patient's.
    expect(await log.forPatient(HOSPITAL, 'Q'.repeat(21) + 'A', { limit: 5, after: after! })).toEqual([]);
  });

  it('assigns indexes idempotently, reads ranges by index and prunes below an index', async () => {
    const pending = (await log.pending(1000)).filter((entry) => entry.logId === HOSPITAL);
    const assignments = pending.map((entry, index) => ({ id: entry.id, index }));
    await log.assignIndexes(assignments);
    await log.assignIndexes(assignments);
    expect(await log.pending(1000)).toEqual([]);
    const range = await log.sequenced(HOSPITAL, { from: 3, limit: 4 });
    expect(range.map((entry) => entry.index)).toEqual([3, 4, 5, 6]);
    expect(await log.pruneBefore(HOSPITAL, 5)).toBe(5);
    // A range is of indexes, not of entries left: [0, 10) after pruning below 5 is 5..9.
    expect((await log.sequenced(HOSPITAL, { from: 0, limit: 10 })).map((entry) => entry.index)).toEqual([
      5, 6, 7, 8, 9,
    ]);
    const [found, missing] = await log.get([range[3]!.id, 'no-such-entry']);
    expect(found?.index).toBe(6);
    expect(missing).toBeUndefined();
  });

  it('keeps the newest witnessed checkpoint monotone, its history, and its first witness key', async () => {
    const at = (day: number) => new Date(Date.UTC(2031, 0, day));
    expect(await registry.recordWitnessed(HOSPITAL, { size: 5, note: 'n5', cosignedAt: at(1) }, 'K1')).toBe(
      'recorded',
    );
    expect(await registry.recordWitnessed(HOSPITAL, { size: 9, note: 'n9', cosignedAt: at(3) }, 'K1')).toBe(
      'recorded',
    );
    expect(await registry.recordWitnessed(HOSPITAL, { size: 7, note: 'n7', cosignedAt: at(4) }, 'K1')).toBe(
      'stale',
    );
    expect(await registry.recordWitnessed(HOSPITAL, { size: 12, note: 'x', cosignedAt: at(5) }, 'K2')).toBe(
      'key-mismatch',
    );
    expect((await registry.state(HOSPITAL)).witnessed).toMatchObject({ size: 9, note: 'n9' });
    expect((await registry.witnessedBefore(HOSPITAL, at(2)))?.size).toBe(5);
    expect(await registry.witnessedBefore(HOSPITAL, at(0))).toBeUndefined();
  });

  it('marks batches in flight until committed, and remembers the key that signed', async () => {
    await registry.markStaging('st-other-log');
    expect(await registry.inFlight()).toContain('st-other-log');
    await registry.markCommitted('st-other-log', 'key+00000000+AA==');
    expect(await registry.inFlight()).not.toContain('st-other-log');
    expect((await registry.state('st-other-log')).verifierKey).toBe('key+00000000+AA==');
  });
});
