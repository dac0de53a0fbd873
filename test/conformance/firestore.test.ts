// The Firestore part of the stack is Google's own emulator; these tests prove our launcher
// starts it, persists across restarts and stops it without leaving a JVM or a bound port,
// and that the official client gets the behaviour later features rely on.
import { FieldValue } from '@google-cloud/firestore';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { startFirestoreEmulator, type FirestoreEmulator } from '../../emulator/firestore/server.ts';
import { portIsFree } from '../helpers/net.ts';

const projectId = 'conformance-firestore';

describe('Firestore emulator (official, launched by the stack)', () => {
  let dataDir: string;
  let emulator: FirestoreEmulator;
  const client = () => createFirestore(projectId, { FIRESTORE_EMULATOR_HOST: emulator.address });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cb-firestore-'));
    emulator = await startFirestoreEmulator({ projectId, dataDir });
  });
  afterAll(async () => {
    await emulator?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('creates documents only once (create-only semantics)', async () => {
    const db = client();
    const doc = db.collection('records').doc('r1');
    await doc.create({ patient: 'p1', size: 10 });
    await expect(doc.create({ patient: 'p1', size: 11 })).rejects.toMatchObject({ code: 6 }); // ALREADY_EXISTS
    expect((await doc.get()).data()).toEqual({ patient: 'p1', size: 10 });
    await db.terminate();
  });

  it('runs real transactions: concurrent increments are not lost', async () => {
    const db = client();
    const counter = db.collection('counters').doc('c');
    await counter.set({ n: 0 });
    await Promise.all(
      Array.from({ length: 5 }, () =>
        db.runTransaction(async (tx) => {
          const snapshot = await tx.get(counter);
          tx.update(counter, { n: (snapshot.get('n') as number) + 1 });
        }),
      ),
    );
    expect((await counter.get()).get('n')).toBe(5);
    await db.terminate();
  });

  it('answers queries with filters, ordering and limits', async () => {
    const db = client();
    const batch = db.batch();
    for (let i = 0; i < 6; i++) {
      batch.set(db.collection('expiring').doc(`d${i}`), { expiresAt: i, kind: i % 2 ? 'odd' : 'even' });
    }
    await batch.commit();
    const expired = await db
      .collection('expiring')
      .where('expiresAt', '<', 4)
      .orderBy('expiresAt')
      .limit(3)
      .get();
    expect(expired.docs.map((d) => d.id)).toEqual(['d0', 'd1', 'd2']);
    await db.collection('expiring').doc('d0').update({ touched: FieldValue.serverTimestamp() });
    await db.terminate();
  });

  it('keeps documents across a restart on the same data directory', async () => {
    await emulator.close();
    emulator = await startFirestoreEmulator({ projectId, dataDir });
    const db = client();
    expect((await db.collection('records').doc('r1').get()).get('size')).toBe(10);
    expect((await db.collection('counters').doc('c').get()).get('n')).toBe(5);
    await db.terminate();
  });

  it('frees its port when closed', async () => {
    const other = await startFirestoreEmulator({ projectId });
    expect(await portIsFree(other.port)).toBe(false);
    await other.close();
    expect(await portIsFree(other.port)).toBe(true);
  });
});
