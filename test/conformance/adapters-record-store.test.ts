// The Firestore record store (shared/adapters/firestore-records.ts) against Google's Firestore
// emulator: create-only with the stored record handed back on a collision, a device's listing
// (only records it is a recipient of, in acceptance order, expired ones left out, cursor paging
// without loss or duplicates), and acknowledgements ('stored' is final; non-recipients refused;
// a patient's phones acknowledging at once all land, and the last one starts the short lifetime).
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFirestoreEmulator, type FirestoreEmulator } from '../../emulator/firestore/server.ts';
import { createFirestoreRecordStore } from '../../shared/adapters/firestore-records.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import type { NewRecord, RecordCursor, RecordStore } from '../../shared/ports/record-store.ts';
import { newRandomId } from '../../shared/core/protocol/index.ts';

const NOW = new Date('2031-05-01T10:00:00Z');
const DAY = 24 * 3600 * 1000;
const DEVICE_A = 'A'.repeat(43);
const DEVICE_B = 'B'.repeat(43);

function record(overrides: Partial<NewRecord> = {}): NewRecord {
  const recordId = overrides.recordId ?? newRandomId();
  return {
    recordId,
    uploadId: newRandomId(),
    hospitalId: 'st-records-zh',
    patientRef: 'xdnLtlQnC0V61gqvvTVwYg',
    contentClass: 'document',
    createdAt: new Date(NOW.getTime() - DAY),
    expiresAt: new Date(NOW.getTime() + 30 * DAY),
    acceptedAt: NOW,
    size: 1234,
    objectName: `hospitals/st-records-zh/records/${recordId}.cbr`,
    generation: '1700000000000000',
    recipients: [DEVICE_A],
    ...overrides,
  };
}

describe('RecordStore over Firestore', () => {
  let emulator: FirestoreEmulator;
  let firestore: Firestore;
  let store: RecordStore;

  beforeAll(async () => {
    emulator = await startFirestoreEmulator({ projectId: 'cb-record-store' });
    firestore = createFirestore('cb-record-store', { FIRESTORE_EMULATOR_HOST: emulator.address });
    store = createFirestoreRecordStore(firestore);
  });

  afterAll(async () => {
    await firestore?.terminate();
    await emulator?.close();
  });

  it('creates once and hands back the stored record on a collision', async () => {
    const first = record();
    expect(await store.create(first)).toEqual({ created: true, record: { ...first, acks: {} } });
    const other = { ...record({ recordId: first.recordId }), size: 99 };
    const again = await store.create(other);
    expect(again.created).toBe(false);
    expect(again.record).toEqual({ ...first, acks: {} });
    expect(await store.get(first.recordId)).toEqual({ ...first, acks: {} });
    expect(await store.get(newRandomId())).toBeUndefined();
  });

  it("lists only a device's own unexpired records, in acceptance order, across pages", async () => {
    const device = 'C'.repeat(43);
    const mine: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = record({ recipients: [device, DEVICE_B], acceptedAt: new Date(NOW.getTime() + i * 1000) });
      await store.create(r);
      mine.push(r.recordId);
    }
    await store.create(record({ recipients: [DEVICE_B] })); // not this device's
    const expired = record({ recipients: [device], expiresAt: new Date(NOW.getTime() - 1) });
    await store.create(expired);

    const seen: string[] = [];
    let after: RecordCursor | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await store.listForDevice(device, { pageSize: 3, now: NOW, ...(after ? { after } : {}) });
      seen.push(...page.records.map((r) => r.recordId));
      if (!page.next) break;
      after = page.next;
    }
    expect(seen).toEqual(mine);
    expect(seen).not.toContain(expired.recordId);
  });

  it("keeps the first 'stored' acknowledgement and refuses non-recipients", async () => {
    const r = record({ recipients: [DEVICE_A, DEVICE_B] });
    await store.create(r);
    const failed = await store.acknowledge(r.recordId, DEVICE_A, {
      outcome: 'failed',
      errorCode: 'CHUNK_INVALID',
      at: NOW,
    });
    expect(failed?.acks[DEVICE_A]).toEqual({ outcome: 'failed', errorCode: 'CHUNK_INVALID', at: NOW });
    const storedAt = new Date(NOW.getTime() + 1000);
    await store.acknowledge(r.recordId, DEVICE_A, { outcome: 'stored', at: storedAt });
    await store.acknowledge(r.recordId, DEVICE_A, {
      outcome: 'failed',
      errorCode: 'CHUNK_INVALID',
      at: new Date(NOW.getTime() + 2000),
    });
    expect((await store.get(r.recordId))?.acks).toEqual({ [DEVICE_A]: { outcome: 'stored', at: storedAt } });
    expect(
      await store.acknowledge(r.recordId, 'D'.repeat(43), { outcome: 'stored', at: NOW }),
    ).toBeUndefined();
    expect(await store.acknowledge(newRandomId(), DEVICE_A, { outcome: 'stored', at: NOW })).toBeUndefined();
  });

  it("lands every phone's acknowledgement when they race, and the last one marks the record all stored", async () => {
    const phones = Array.from({ length: 5 }, (_, i) => String.fromCharCode(67 + i).repeat(43));
    for (let round = 0; round < 3; round++) {
      const r = record({ recipients: phones });
      await store.create(r);
      const at = (i: number) => new Date(NOW.getTime() + i * 1000);
      // Each phone also races a late 'failed' against its own 'stored': 'stored' must win.
      await Promise.all(
        phones.flatMap((phone, i) => [
          store.acknowledge(r.recordId, phone, { outcome: 'stored', at: at(i) }),
          store.acknowledge(r.recordId, phone, { outcome: 'failed', errorCode: 'CHUNK_INVALID', at: at(i) }),
        ]),
      );
      const acks = (await store.get(r.recordId))?.acks ?? {};
      expect(Object.keys(acks).sort()).toEqual([...phones].sort());
      for (const [i, phone] of phones.entries())
        expect(acks[phone]).toEqual({ outcome: 'stored', at: at(i) });
      const allStoredAt = (await firestore.collection('records').doc(r.recordId).get()).get('allStoredAt');
      expect(phones.map((_, i) => at(i).getTime())).toContain(allStoredAt?.toDate().getTime());
    }
  });

  it('marks a record all stored once its active recipients have stored it', async () => {
    const allStoredAt = async (recordId: string) =>
      (
        (await firestore.collection('records').doc(recordId).get()).get('allStoredAt') as
          { toDate(): Date } | undefined
      )?.toDate();
    const both = record({ recipients: [DEVICE_A, DEVICE_B] });
    await store.create(both);
    await store.acknowledge(both.recordId, DEVICE_A, { outcome: 'stored', at: NOW });
    expect(await allStoredAt(both.recordId)).toBeUndefined();
    const later = new Date(NOW.getTime() + 5000);
    await store.acknowledge(both.recordId, DEVICE_B, { outcome: 'stored', at: later });
    expect(await allStoredAt(both.recordId)).toEqual(later);
    // B was revoked: A alone is every active recipient.
    const revoked = record({ recipients: [DEVICE_A, DEVICE_B] });
    await store.create(revoked);
    await store.acknowledge(revoked.recordId, DEVICE_A, { outcome: 'stored', at: NOW }, [DEVICE_A]);
    expect(await allStoredAt(revoked.recordId)).toEqual(NOW);
  });

  it('answers an acknowledgement racing the record’s deletion (retention, recall) as not found, never an error', async () => {
    for (let round = 0; round < 10; round++) {
      const r = record({ recipients: [DEVICE_A, DEVICE_B] });
      await store.create(r);
      const [acked] = await Promise.all([
        store.acknowledge(r.recordId, DEVICE_A, { outcome: 'stored', at: NOW }),
        firestore.collection('records').doc(r.recordId).delete(),
      ]);
      if (acked !== undefined) expect(acked.acks[DEVICE_A]?.outcome).toBe('stored');
      expect(await store.get(r.recordId)).toBeUndefined();
      expect(await store.acknowledge(r.recordId, DEVICE_B, { outcome: 'stored', at: NOW })).toBeUndefined();
    }
  });
});
