// The data inventory against what the running product stores (GDPR art. 5(1)(c), (e), 17, 30):
// the whole life of two patients runs on the local stack through the real functions (pairing,
// delivery, a rejected upload, download and acknowledgement, a recall, a retention policy and
// run, the sequencer and the hospital's witness), then one patient erases themselves. Every
// Firestore document and every object is classified against infra/data-inventory.json: nothing
// stored may be undeclared, and what is left of the erased patient must be exactly what the
// inventory says an erasure keeps, each with its reason.
import { randomBytes } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import { beforeAll, describe, expect, it } from 'vitest';
import { responseBytes } from '../../clients/lib/api-client.ts';
import type { Stack } from '../../emulator/stack.ts';
import { createFirestoreAuditLog } from '../../shared/adapters/firestore-audit.ts';
import { createFirestoreRetentionPolicyStore } from '../../shared/adapters/firestore-retention.ts';
import type { PublicKey } from '../../shared/core/crypto/index.ts';
import { deletionResponseSchema, receiptObjectName } from '../../shared/core/protocol/index.ts';
import { runSequencer, stackTransparency, testWitness } from '../helpers/audit-logs.ts';
import {
  deliver,
  functionPublicKey,
  inviteTestPatient,
  pairTestDevice,
  registerTestHospital,
  stackBlobStore,
  type TestDevice,
  type TestHospital,
} from '../helpers/delivery-fixture.ts';
import { useLocalStack } from '../helpers/local-stack.ts';
import { storedData, type StoredData } from '../helpers/stored-data.ts';
import { classifyDocuments, classifyObjects, loadInventory } from '../compliance/inventory.ts';

const inventory = loadInventory();

/** Each stored path with the inventory entry that declares it; the undeclared ones apart. */
function classifyAll(stored: StoredData) {
  const documents = classifyDocuments(
    inventory,
    stored.documents.map((doc) => doc.path),
  );
  const objects = Object.entries(Object.groupBy(stored.objects, (object) => object.bucket)).map(
    ([bucket, list]) => ({
      bucket,
      ...classifyObjects(
        inventory,
        bucket,
        (list ?? []).map((object) => object.name),
      ),
    }),
  );
  return {
    undeclared: [
      ...documents.undeclared,
      ...objects.flatMap(({ bucket, undeclared }) => undeclared.map((name) => `${bucket}:${name}`)),
    ],
    entryOf: new Map<string, string>([
      ...documents.declared.map(({ path, entry }): [string, string] => [path, entry.id]),
      ...objects.flatMap((classified) =>
        classified.declared.map(({ path, entry }): [string, string] => [`${entry.bucket}:${path}`, entry.id]),
      ),
    ]),
  };
}

/** The inventory entries whose stored documents or objects mention any of `ids`. */
function entriesMentioning(stored: StoredData, ids: readonly string[]): Map<string, string[]> {
  const { entryOf } = classifyAll(stored);
  const found = new Map<string, string[]>();
  const places = [
    ...stored.documents.map((doc) => ({ key: doc.path, text: `${doc.path}\n${doc.text}` })),
    ...stored.objects.map((object) => ({
      key: `${object.bucket}:${object.name}`,
      text: `${object.name}\n${object.text}`,
    })),
  ];
  for (const { key, text } of places) {
    const named = ids.filter((id) => text.includes(id));
    if (named.length === 0) continue;
    const entry = entryOf.get(key) ?? `undeclared ${key}`;
    found.set(entry, [...(found.get(entry) ?? []), key]);
  }
  return found;
}

describe('the data inventory holds for everything the product stores', () => {
  const local = useLocalStack('data-inventory');
  let stack: Stack;
  let firestore: Firestore;
  let hospital: TestHospital;
  let ingestKey: PublicKey;
  let alicePhone: TestDevice;
  let aliceTablet: TestDevice;
  let bob: TestDevice;
  const alice: { records: string[]; recalled?: string; rejectedRecord?: string; invitation?: string } = {
    records: [],
  };
  let beforeErasure: StoredData;

  async function send(to: TestDevice[], patientRef = to[0]!.patientRef) {
    const { sealed, receipt } = await deliver(stack, hospital, ingestKey, {
      patientRef,
      recipients: to,
      file: new Uint8Array(randomBytes(2000)),
    });
    return { recordId: sealed.manifest.recordId, uploadId: sealed.manifest.uploadId, receipt };
  }

  const snapshot = () => storedData(firestore, stackBlobStore(stack), stack.env.GCLOUD_PROJECT!);

  beforeAll(async () => {
    ({ stack, firestore } = local);
    hospital = await registerTestHospital(firestore, stack, 'inventory-hospital');
    ingestKey = await functionPublicKey(firestore, 'ingest');
    alicePhone = await pairTestDevice(stack, hospital, 'alice');
    aliceTablet = await pairTestDevice(stack, hospital, 'alice');
    bob = await pairTestDevice(stack, hospital, 'bob');
    await createFirestoreRetentionPolicyStore(firestore, createFirestoreAuditLog(firestore)).change({
      hospitalId: hospital.hospitalId,
      changes: { recordDays: 60 },
      operator: 'ops@example.org',
      at: new Date(),
    });

    // Alice: two records (one downloaded and acknowledged), one recalled, one upload rejected
    // (addressed to Bob's phone), and an invitation still open. Bob: one record.
    const first = await send([alicePhone, aliceTablet]);
    const second = await send([alicePhone]);
    const recalled = await send([alicePhone]);
    alice.records.push(first.recordId, second.recordId, recalled.recordId);
    const rejected = await send([bob], alicePhone.patientRef);
    expect(rejected.receipt.status).toBe('rejected');
    alice.rejectedRecord = rejected.recordId;
    await send([bob]);
    alice.invitation = (await inviteTestPatient(hospital, 'alice')).invitationId;
    await responseBytes(
      await alicePhone.api.raw({ method: 'GET', target: `/records/v1/records/${first.recordId}/content` }),
    );
    await alicePhone.api.raw({
      method: 'POST',
      target: `/records/v1/records/${first.recordId}/ack`,
      json: { outcome: 'stored' },
    });
    await hospital.api.call(
      {
        method: 'POST',
        target: `/pairing/v1/records/${recalled.recordId}/recall`,
        json: { operatorRef: hospital.operatorRef },
      },
      deletionResponseSchema,
    );
    alice.recalled = recalled.recordId;
    // The recall took the record's accepted-receipt with it: the receipt named the record.
    expect(
      await stackBlobStore(stack).stat(
        stack.env.OUTBOX_BUCKET!,
        receiptObjectName(hospital.hospitalId, recalled.uploadId),
      ),
    ).toBeUndefined();

    const retention = await fetch(`${stack.functions.url}/_scheduler/jobs/retention:run`, { method: 'POST' });
    expect(((await retention.json()) as { status: number }).status).toBe(200);
    await runSequencer(stack);
    const witness = testWitness(hospital.hospitalId, randomBytes(32), () => Math.floor(Date.now() / 1000));
    await witness.cosignLatest(stackTransparency(stack, firestore));
    beforeErasure = await snapshot();
  });

  it('declares every document and object the product stored, and sees most entries in use', () => {
    const { undeclared, entryOf } = classifyAll(beforeErasure);
    expect(undeclared).toEqual([]);
    const seen = new Set(entryOf.values());
    // Declared but gone by the time anyone can look, each for its stated reason.
    const transient = {
      'ingest.uploads': 'ingest deletes each upload once it is filed or quarantined',
      'purgeJobs.ledger': 'a deletion job drops its ledger in the write that finishes it',
      purgeCursors: "written only when the orphan sweep stops before a bucket's end",
      nonces: 'a hash per signed request; seen here only if the emulator kept one',
    };
    const unseen = [...inventory.firestore, ...inventory.storage]
      .map((entry) => entry.id)
      .filter((id) => !seen.has(id) && !(id in transient));
    expect(unseen).toEqual([]);
    // A finished job's ledger is gone: the receipt lists the ids.
    expect(beforeErasure.documents.filter((doc) => /^purgeJobs\/[^/]+\/ledger\//.test(doc.path))).toEqual([]);
  });

  it('leaves of an erased patient exactly what the inventory says an erasure keeps, and why', async () => {
    const ids = [
      alicePhone.patientRef,
      alicePhone.deviceId,
      aliceTablet.deviceId,
      ...alice.records,
      alice.rejectedRecord!,
      alice.invitation!,
    ];
    const before = entriesMentioning(beforeErasure, ids);
    expect([...before.keys()].sort()).toEqual(
      expect.arrayContaining(['devices', 'invitations', 'records', 'records.containers', 'auditEntries']),
    );

    await alicePhone.api.call(
      { method: 'POST', target: '/records/v1/patient/erase', json: { confirm: 'erase-everything' } },
      deletionResponseSchema,
    );
    const after = await snapshot();
    expect(classifyAll(after).undeclared).toEqual([]);
    const left = entriesMentioning(after, ids);
    const keptBy = new Map(
      [...inventory.firestore, ...inventory.storage].map((entry) => [entry.id, entry.afterErasure]),
    );
    for (const [entry, places] of left) {
      expect(keptBy.get(entry), `${entry} still names the patient: ${places.join(', ')}`).toMatch(/^kept: /);
    }
    // What is left, and only that: the audit trail (NEN 7513), the recall's receipt (until it
    // expires), the rejected upload's receipt and its quarantined copy (until they expire).
    expect([...left.keys()].sort()).toEqual([
      'auditEntries',
      'outbox.receipts',
      'purgeJobs',
      'quarantine.uploads',
    ]);
    expect(left.get('purgeJobs')).toEqual([`purgeJobs/recall-${alice.recalled}`]);
    // Nothing left names the patient's pseudonym except the audit trail and the quarantined upload.
    const pseudonym = entriesMentioning(after, [alicePhone.patientRef]);
    expect([...pseudonym.keys()].sort()).toEqual(['auditEntries', 'quarantine.uploads']);
  });
});
