// firestore.rules on Google's own Firestore emulator, through @firebase/rules-unit-testing:
// no client, signed in or not, reads or writes anything; code that bypasses rules (the admin
// context here, the functions' server client in production) still can.
import {
  assertFails,
  assertSucceeds,
  initializeTestEnvironment,
  type RulesTestContext,
  type RulesTestEnvironment,
} from '@firebase/rules-unit-testing';
import { setLogLevel } from 'firebase/firestore';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { startFirestoreEmulator, type FirestoreEmulator } from '../../emulator/firestore/server.ts';
import { collectionIds, loadInventory } from '../compliance/inventory.ts';

const RULES_FILE = fileURLToPath(new URL('../../firestore.rules', import.meta.url));
const PROJECT_ID = 'demo-clinic-bridge-rules';

/** Every top-level collection the data inventory declares, plus one nobody has thought of yet. */
const COLLECTIONS = [
  ...new Set(loadInventory().firestore.map((entry) => collectionIds(entry)[0]!)),
  'notYetInvented',
];

const SEED = {
  hospitalId: 'st-antonius',
  patientRef: 'p-0001',
  status: 'active',
  note: 'seeded by the admin context',
};

let emulator: FirestoreEmulator;
let env: RulesTestEnvironment;

beforeAll(async () => {
  // Every denied call would otherwise log a gRPC error: denials are the expected outcome here.
  setLogLevel('silent');
  emulator = await startFirestoreEmulator({ projectId: PROJECT_ID, rulesFile: RULES_FILE });
  const [host, port] = emulator.address.split(':');
  env = await initializeTestEnvironment({
    projectId: PROJECT_ID,
    firestore: { host: host!, port: Number(port), rules: readFileSync(RULES_FILE, 'utf8') },
  });
  // Functions (service accounts) bypass rules; the admin context stands in for them.
  await env.withSecurityRulesDisabled(async (admin) => {
    const db = admin.firestore();
    for (const collection of COLLECTIONS) {
      await db.collection(collection).doc('existing').set(SEED);
      await db.collection(collection).doc('existing').collection('history').doc('h1').set(SEED);
    }
  });
});

afterAll(async () => {
  await env?.cleanup();
  await emulator?.close();
});

const clients: [string, () => RulesTestContext][] = [
  ['an unauthenticated client', () => env.unauthenticatedContext()],
  [
    'a signed-in client',
    () => env.authenticatedContext('patient-1', { email: 'patient@example.org', email_verified: true }),
  ],
  // Custom claims earn nothing either: no rule looks at them.
  [
    'a client claiming to be an admin',
    () => env.authenticatedContext('mallory', { admin: true, role: 'operator' }),
  ],
];

describe('firestore.rules: clients have no direct access', () => {
  describe.each(clients)('%s', (_label, context) => {
    it.each(COLLECTIONS)('cannot read %s (get, list, query, subcollection)', async (collection) => {
      const db = context().firestore();
      await assertFails(db.collection(collection).doc('existing').get());
      await assertFails(db.collection(collection).doc('missing').get());
      await assertFails(db.collection(collection).get());
      await assertFails(db.collection(collection).where('patientRef', '==', SEED.patientRef).get());
      await assertFails(db.collection(collection).doc('existing').collection('history').get());
      await assertFails(db.collectionGroup('history').get());
    });

    it.each(COLLECTIONS)('cannot write %s (create, set, update, delete)', async (collection) => {
      const db = context().firestore();
      await assertFails(db.collection(collection).add({ patientRef: 'p-0002' }));
      await assertFails(db.collection(collection).doc('new').set({ patientRef: 'p-0002' }));
      await assertFails(
        db.collection(collection).doc('existing').set({ status: 'revoked' }, { merge: true }),
      );
      await assertFails(db.collection(collection).doc('existing').update({ status: 'revoked' }));
      await assertFails(db.collection(collection).doc('existing').delete());
      await assertFails(db.collection(collection).doc('existing').collection('history').doc('h2').set(SEED));
    });
  });

  it('left every seeded document as it was', async () => {
    await env.withSecurityRulesDisabled(async (admin) => {
      const db = admin.firestore();
      for (const collection of COLLECTIONS) {
        const snapshot = await db.collection(collection).get();
        expect(snapshot.docs.map((doc) => doc.id)).toEqual(['existing']);
        expect(snapshot.docs[0]!.data()).toEqual(SEED);
      }
    });
  });
});

describe('the harness tells allowed from denied', () => {
  it('a permissive ruleset on another project lets the same client calls through', async () => {
    // Without this control, a connection or setup error could pass for a denial.
    const [host, port] = emulator.address.split(':');
    const open = await initializeTestEnvironment({
      projectId: 'demo-clinic-bridge-open-rules',
      firestore: {
        host: host!,
        port: Number(port),
        rules:
          "rules_version = '2';\nservice cloud.firestore { match /databases/{d}/documents { match /{doc=**} { allow read, write: if true; } } }",
      },
    });
    try {
      const db = open.unauthenticatedContext().firestore();
      await assertSucceeds(db.collection('records').doc('r1').set({ patientRef: 'p-0001' }));
      await assertSucceeds(db.collection('records').doc('r1').get());
      await assertFails(env.unauthenticatedContext().firestore().collection('records').doc('r1').get());
    } finally {
      await open.cleanup();
    }
  });
});

describe('code that bypasses rules keeps full access', () => {
  it('the admin context reads, writes and deletes every collection', async () => {
    await env.withSecurityRulesDisabled(async (admin) => {
      const db = admin.firestore();
      for (const collection of COLLECTIONS) {
        await assertSucceeds(db.collection(collection).doc('existing').get());
        await assertSucceeds(db.collection(collection).where('patientRef', '==', SEED.patientRef).get());
        await assertSucceeds(
          db
            .collection(collection)
            .doc('admin-written')
            .set({ ...SEED, status: 'new' }),
        );
        await assertSucceeds(db.collection(collection).doc('admin-written').update({ status: 'updated' }));
        await assertSucceeds(db.collection(collection).doc('admin-written').delete());
      }
    });
  });

  it("the functions' server client (@google-cloud/firestore) is not subject to the rules", async () => {
    // The same client and options the functions use (shared/adapters/google-clients.ts).
    const db = createFirestore(PROJECT_ID, { FIRESTORE_EMULATOR_HOST: emulator.address });
    try {
      const doc = db.collection('records').doc('server-written');
      await doc.create({ ...SEED, status: 'created-by-function' });
      expect((await doc.get()).get('status')).toBe('created-by-function');
      await doc.delete();
      expect((await doc.get()).exists).toBe(false);
    } finally {
      await db.terminate();
    }
  });
});
