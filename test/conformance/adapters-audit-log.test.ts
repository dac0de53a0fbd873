// The Firestore audit log (shared/adapters/firestore-audit.ts) against Google's Firestore
// emulator: appends extend one chain that verifies, concurrent appends serialise instead of
// forking it, and reads page in sequence order. An edit made straight in the database is caught.
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFirestoreEmulator, type FirestoreEmulator } from '../../emulator/firestore/server.ts';
import { verifyAuditTrail, type AuditEvent, type AuditFields } from '../../shared/audit/chain.ts';
import type { AuditEntry, AuditLog } from '../../shared/audit/log.ts';
import {
  AUDIT_COLLECTIONS,
  auditEventId,
  createFirestoreAuditLog,
} from '../../shared/adapters/firestore-audit.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';

function entry(second: number, actor = 'ingest', once?: string): AuditEntry {
  return { fields: fields(second, actor), ...(once ? { once } : {}) };
}

function fields(second: number, actor = 'ingest'): AuditFields {
  return {
    at: `2031-03-01T12:00:${String(second % 60).padStart(2, '0')}Z`,
    actor: { kind: 'system', id: actor },
    action: 'record.created',
    hospitalId: 'st-audit-zh',
  };
}

describe('AuditLog over Firestore', () => {
  let emulator: FirestoreEmulator;
  let firestore: Firestore;
  let log: AuditLog;

  beforeAll(async () => {
    emulator = await startFirestoreEmulator({ projectId: 'cb-audit-log' });
    firestore = createFirestore('cb-audit-log', { FIRESTORE_EMULATOR_HOST: emulator.address });
    log = createFirestoreAuditLog(firestore);
  });

  afterAll(async () => {
    await firestore?.terminate();
    await emulator?.close();
  });

  async function all(): Promise<AuditEvent[]> {
    const out: AuditEvent[] = [];
    for (;;) {
      const page = await log.list('st-audit-zh', { afterSeq: out.at(-1)?.seq ?? 0, limit: 7 });
      out.push(...page);
      if (page.length < 7) return out;
    }
  }

  it('appends, concurrently too, into one chain that verifies', async () => {
    const first = await log.append([entry(1), entry(2)]);
    expect(first.map((e) => e.seq)).toEqual([1, 2]);
    await Promise.all(Array.from({ length: 8 }, (_, i) => log.append([entry(10 + i, `writer-${i}`)])));
    const events = await all();
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(new Set(events.map((e) => e.fields.actor.id)).size).toBe(9);
    expect(verifyAuditTrail(events, [], () => false)).toEqual({
      ok: true,
      lastSeq: 10,
      checkpointsVerified: 0,
      firstSeq: 1,
    });
  });

  it('an entry with a key already logged is skipped, so a retried step logs once', async () => {
    const first = await log.append([entry(30, 'retry', 'k-1'), entry(31, 'retry', 'k-1')]);
    expect(first).toHaveLength(1);
    expect(await log.append([entry(30, 'retry', 'k-1')])).toEqual([]);
    const again = await Promise.all([
      log.append([entry(32, 'r', 'k-2')]),
      log.append([entry(32, 'r', 'k-2')]),
    ]);
    expect(again.flat()).toHaveLength(1);
    expect(await all()).toHaveLength(12);
  });

  it('keeps one chain per patient at each hospital, and a patient sees only their own events', async () => {
    const patient = 'AAAAAAAAAAAAAAAAAAAAAA';
    await log.append([
      { fields: { ...fields(40), hospitalId: 'st-other-zh', patientRef: patient } },
      { fields: { ...fields(41), patientRef: patient } },
      { fields: { ...fields(42), patientRef: patient } },
    ]);
    expect(await log.chains()).toEqual(['st-audit-zh', `st-audit-zh.${patient}`, `st-other-zh.${patient}`]);
    expect((await log.list(`st-other-zh.${patient}`)).map((e) => e.seq)).toEqual([1]);
    const mine = await log.forPatient('st-audit-zh', patient, { limit: 10 });
    expect(mine.map((e) => e.fields.at)).toEqual([fields(42).at, fields(41).at]);
    expect(await log.forPatient('st-audit-zh', patient, { limit: 10, beforeSeq: 2 })).toHaveLength(1);
    expect(await all()).toHaveLength(12); // the hospital's own chain did not grow
  });

  it('signs checkpoints of a chain head, and a cut-off tail is caught by them', async () => {
    const checkpoint = await log.checkpoint(
      'st-audit-zh',
      () => new Uint8Array([7]),
      new Date('2031-03-02T00:00:00Z'),
    );
    expect(checkpoint?.seq).toBe(12);
    expect(await log.unsealedChains()).not.toContain('st-audit-zh');
    const stored = await log.checkpoints('st-audit-zh');
    expect(stored).toEqual([checkpoint]);
    const events = await all();
    expect(verifyAuditTrail(events, stored, (_m, s) => s[0] === 7).ok).toBe(true);
    expect(verifyAuditTrail(events.slice(0, 10), stored, (_m, s) => s[0] === 7)).toEqual({
      ok: false,
      problem: 'TRUNCATED',
      seq: 11,
    });
  });

  it('an event edited straight in the database no longer verifies, and says where', async () => {
    await firestore
      .collection(AUDIT_COLLECTIONS.events)
      .doc(auditEventId('st-audit-zh', 3))
      .update({ 'fields.action': 'record.deleted' });
    expect(verifyAuditTrail(await all(), [], () => false)).toEqual({ ok: false, problem: 'EDITED', seq: 3 });
  });
});
