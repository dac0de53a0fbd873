// Retention on the whole local stack: the retention service reads an injected clock, so these
// tests jump it forward and check that each kind of expiry removes exactly what it should and
// nothing more; that a crash injected mid-batch and a rerun end where an uninterrupted run
// would; and that the deployed function, called the way Cloud Scheduler calls it, signs a
// receipt that verifies with its published key. Audit entries past five years are pruned only
// behind a checkpoint the hospital's witness cosigned that long ago, and every proof still holds.
// Data is made through the real pairing and ingest functions where the flow allows it.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../emulator/stack.ts';
import { ManualClock } from '../../shared/adapters/clock.ts';
import {
  createFirestoreAuditLog,
  createFirestoreLogRegistry,
} from '../../shared/adapters/firestore-audit.ts';
import { PAIRING_COLLECTIONS } from '../../shared/adapters/firestore-pairing.ts';
import { createFirestorePurgeStore } from '../../shared/adapters/firestore-purge.ts';
import { createFirestoreRecordStore, RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { createFirestoreRetentionPolicyStore } from '../../shared/adapters/firestore-retention.ts';
import { createFirestore, createStorage } from '../../shared/adapters/google-clients.ts';
import type { AuditFields } from '../../shared/audit/fields.ts';
import {
  acceptCheckpoint,
  auditLeafData,
  auditLogOrigin,
  ed25519VerifierFromKey,
  isIncluded,
} from '../../shared/core/tlog/index.ts';
import { fromBase64Url as b64 } from '../../shared/core/protocol/encoding.ts';
import { type PublicKey } from '../../shared/core/crypto/index.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import {
  ackResponseSchema,
  derivePatientRef,
  formatTimestamp,
  invitationResponseSchema,
  newInvitationToken,
  tokenDigest,
  deletionReceiptFromText,
  newRandomId,
  recordObjectName,
  verifyDeletionReceipt,
  type DeletionReceipt,
} from '../../shared/core/protocol/index.ts';
import type { PurgeStore } from '../../shared/retention/purge-store.ts';
import type { FunctionKeys } from '../../shared/ports/function-keys.ts';
import type { RetentionLimits } from '../../shared/services/retention.ts';
import {
  deliver,
  dropUpload,
  functionPublicKey,
  inviteTestPatient,
  pairTestDevice,
  registerTestHospital,
  stackBlobStore,
  type TestDevice,
  type TestHospital,
} from '../helpers/delivery-fixture.ts';
import { stackFunctionKeys, stackRetentionService } from '../helpers/stack-services.ts';
import {
  runSequencer,
  stackSequencer,
  stackTransparency,
  storedAuditEvents,
  testWitness,
} from '../helpers/audit-logs.ts';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

describe('retention', () => {
  let dataDir: string;
  let stack: Stack;
  let firestore: Firestore;
  let blobs: BlobStore;
  let retentionKey: PublicKey;
  let retentionKeys: FunctionKeys;
  let ingestKey: PublicKey;
  const leftoverBucket = 'cb-retention-test-leftovers';

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cb-retention-'));
    stack = await startStack({ dataDir, portBase: 0 });
    firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
    blobs = stackBlobStore(stack);
    retentionKey = await functionPublicKey(firestore, 'retention');
    ingestKey = await functionPublicKey(firestore, 'ingest');
    // The service in these tests signs with retention's real key, unwrapped through KMS as the
    // retention function's own identity (the emulator enforces the catalog's grants), once.
    retentionKeys = stackFunctionKeys(stack, firestore, 'retention');
    // Uploads ingest never finished cannot be made through the ingest bucket, whose every
    // object fires ingest; a bucket without a trigger holds them for the leftover sweep.
    await createStorage(stack.env.GCLOUD_PROJECT!, stack.env).createBucket(leftoverBucket);
  });

  afterAll(async () => {
    await firestore?.terminate();
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  function service(
    clock: ManualClock,
    options: { store?: PurgeStore; blobs?: BlobStore; limits?: Partial<RetentionLimits> } = {},
  ) {
    return stackRetentionService(stack, {
      firestore,
      clock,
      uploadBucket: leftoverBucket,
      keys: retentionKeys,
      ...options,
    });
  }

  async function exists(collection: string, id: string): Promise<boolean> {
    return (await firestore.collection(collection).doc(id).get()).exists;
  }

  async function blobExists(bucket: string, name: string): Promise<boolean> {
    return (await blobs.stat(bucket, name)) !== undefined;
  }

  /** Every audit event about a hospital. */
  async function hospitalEvents(hospitalId: string): Promise<{ fields: AuditFields }[]> {
    return (await storedAuditEvents(firestore, { hospitalId })).map((fields) => ({ fields }));
  }

  function checked(receipt: Uint8Array): DeletionReceipt {
    return verifyDeletionReceipt(receipt, retentionKey);
  }

  describe('each kind of expiry removes exactly what it should', () => {
    let main: TestHospital;
    let short: TestHospital;
    let alice: TestDevice;
    let bob: TestDevice;
    let carol: TestDevice;
    const records: Record<'acked' | 'unacked' | 'shortPolicy', { id: string; object: string }> = {} as never;
    let invitationId: string;
    let shortInvitations: string[];
    let quarantined: string;
    let orphan: string;
    let leftover: string;
    let clock: ManualClock;

    async function send(hospital: TestHospital, to: TestDevice) {
      const { sealed, receipt } = await deliver(stack, hospital, ingestKey, {
        patientRef: to.patientRef,
        recipients: [to],
        file: new Uint8Array(randomBytes(2000)),
        // Longer than any policy here, so that the policy decides.
        expiresAt: new Date(Date.now() + 365 * DAY),
      });
      expect(receipt.status).toBe('accepted');
      const id = sealed.manifest.recordId;
      return { id, object: recordObjectName(hospital.hospitalId, id) };
    }

    beforeAll(async () => {
      main = await registerTestHospital(firestore, stack, 'retention-main');
      short = await registerTestHospital(firestore, stack, 'retention-short');
      await createFirestoreRetentionPolicyStore(firestore, createFirestoreAuditLog(firestore)).change({
        hospitalId: short.hospitalId,
        changes: { recordDays: 30, acknowledgedRecordDays: 14 },
        operator: 'test-operator',
        at: new Date(),
      });
      alice = await pairTestDevice(stack, main, 'alice');
      bob = await pairTestDevice(stack, main, 'bob');
      carol = await pairTestDevice(stack, short, 'carol');
      records.acked = await send(main, alice);
      records.unacked = await send(main, bob);
      records.shortPolicy = await send(short, carol);
      await alice.api.call(
        {
          method: 'POST',
          target: `/records/v1/records/${records.acked.id}/ack`,
          json: { outcome: 'stored' },
        },
        ackResponseSchema,
      );
      shortInvitations = [
        (await inviteTestPatient(main, 'dave')).invitationId,
        ...(await Promise.all(
          [alice, bob, carol].map(async (d) =>
            String(
              (await firestore.collection(PAIRING_COLLECTIONS.devices).doc(d.deviceId).get()).get(
                'invitationId',
              ),
            ),
          ),
        )),
      ].sort();
      // An invitation the hospital gave six days: the 72-hour policy ends it sooner.
      invitationId = newRandomId();
      await main.api.call(
        {
          method: 'POST',
          target: '/pairing/v1/invitations',
          json: {
            invitationId,
            patientRef: derivePatientRef(main.pseudonymKey, 'erin'),
            tokenSha256: tokenDigest(newInvitationToken()),
            expiresAt: formatTimestamp(new Date(Date.now() + 6 * DAY)),
            maxAttempts: 3,
            operatorRef: main.operatorRef,
          },
        },
        invitationResponseSchema,
      );

      // A rejected upload, quarantined by the real ingest function.
      const rejectedUpload = `hospitals/${main.hospitalId}/uploads/${newRandomId()}.cbr`;
      await dropUpload(stack, rejectedUpload, new Uint8Array(randomBytes(500)));
      for (let i = 0; i < 100 && !(await blobExists(stack.env.QUARANTINE_BUCKET!, rejectedUpload)); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      quarantined = rejectedUpload;
      expect(await blobExists(stack.env.QUARANTINE_BUCKET!, quarantined)).toBe(true);

      // A container whose record was never filed (an ingest abandoned between copy and filing).
      orphan = recordObjectName(main.hospitalId, newRandomId());
      await blobs.writeSmall(stack.env.RECORDS_BUCKET!, orphan, new Uint8Array(randomBytes(100)));
      leftover = `hospitals/${main.hospitalId}/uploads/${newRandomId()}.cbr`;
      await blobs.writeSmall(leftoverBucket, leftover, new Uint8Array(randomBytes(100)));
      clock = new ManualClock(new Date());
    });

    async function runAt(offsetMs: number): Promise<DeletionReceipt> {
      clock.set(Date.now() + offsetMs);
      const result = await service(clock).run({ jobId: `test-${offsetMs}` });
      const receipt = checked(result.receipt);
      expect(receipt).toEqual(result.summary);
      expect(receipt.complete).toBe(true);
      return receipt;
    }

    async function alive() {
      return {
        acked:
          (await exists(RECORDS_COLLECTION, records.acked.id)) &&
          (await blobExists(stack.env.RECORDS_BUCKET!, records.acked.object)),
        unacked:
          (await exists(RECORDS_COLLECTION, records.unacked.id)) &&
          (await blobExists(stack.env.RECORDS_BUCKET!, records.unacked.object)),
        shortPolicy:
          (await exists(RECORDS_COLLECTION, records.shortPolicy.id)) &&
          (await blobExists(stack.env.RECORDS_BUCKET!, records.shortPolicy.object)),
        invitation: await exists(PAIRING_COLLECTIONS.invitations, invitationId),
        alice: await exists(PAIRING_COLLECTIONS.devices, alice.deviceId),
        bob: await exists(PAIRING_COLLECTIONS.devices, bob.deviceId),
        carol: await exists(PAIRING_COLLECTIONS.devices, carol.deviceId),
        quarantined: await blobExists(stack.env.QUARANTINE_BUCKET!, quarantined),
        orphan: await blobExists(stack.env.RECORDS_BUCKET!, orphan),
        leftover: await blobExists(leftoverBucket, leftover),
      };
    }

    it('an hour on: only invitations past their own 15-minute expiry go, used or not', async () => {
      const receipt = await runAt(HOUR);
      expect(receipt.deleted).toEqual({
        records: [],
        invitations: shortInvitations,
        devices: [],
        uploads: [],
        quarantined: [],
        orphans: [],
      });
      expect(Object.values(await alive()).every(Boolean)).toBe(true);
    });

    it('two days on: the leftover upload and the orphaned container go (invitations outlive 72 h)', async () => {
      const receipt = await runAt(2 * DAY);
      expect(receipt.deleted.uploads).toEqual([leftover]);
      expect(receipt.deleted.orphans).toEqual([orphan]);
      expect(receipt.deleted.records).toEqual([]);
      const state = await alive();
      expect(state).toMatchObject({
        leftover: false,
        orphan: false,
        invitation: true,
        acked: true,
        quarantined: true,
      });
    });

    it('four days on: the six-day invitation goes after the 72 hours of the policy', async () => {
      const receipt = await runAt(4 * DAY);
      expect(receipt.deleted).toMatchObject({ invitations: [invitationId], records: [], devices: [] });
      expect(await alive()).toMatchObject({ invitation: false, acked: true, unacked: true });
    });

    it('fifteen days on: the record every device stored goes, blob and metadata together', async () => {
      const receipt = await runAt(15 * DAY);
      expect(receipt.deleted.records).toEqual([records.acked.id]);
      expect(await alive()).toMatchObject({ acked: false, unacked: true, shortPolicy: true, alice: true });
      expect(await blobExists(stack.env.RECORDS_BUCKET!, records.acked.object)).toBe(false);
    });

    it("thirty-one days on: the 30-day hospital's record and the quarantined upload go", async () => {
      const receipt = await runAt(31 * DAY);
      expect(receipt.deleted.records).toEqual([records.shortPolicy.id]);
      expect(receipt.deleted.quarantined).toEqual([quarantined]);
      expect(await alive()).toMatchObject({
        shortPolicy: false,
        unacked: true,
        quarantined: false,
        carol: true,
      });
    });

    it('ninety-one days on: the default 90-day record goes; devices stay', async () => {
      const receipt = await runAt(91 * DAY);
      expect(receipt.deleted.records).toEqual([records.unacked.id]);
      expect(receipt.deleted.devices).toEqual([]);
      expect(await alive()).toMatchObject({ unacked: false, alice: true, bob: true, carol: true });
    });

    it('181 days on: devices inactive for 180 days go, with their push tokens', async () => {
      const receipt = await runAt(181 * DAY);
      expect([...receipt.deleted.devices].sort()).toEqual(
        [alice.deviceId, bob.deviceId, carol.deviceId].sort(),
      );
      expect(Object.values(await alive()).some(Boolean)).toBe(false);
    });

    it('every deletion is in the audit trail once, with ids only', async () => {
      const events = await hospitalEvents(main.hospitalId);
      const deleted = events
        .filter((e) => e.fields.action === 'record.deleted')
        .map((e) => e.fields.recordId);
      expect(deleted.sort()).toEqual([records.acked.id, records.unacked.id].sort());
      const removed = events
        .filter((e) => e.fields.action === 'device.removed')
        .map((e) => e.fields.deviceId);
      expect(removed.sort()).toEqual([alice.deviceId, bob.deviceId].sort());
    });

    it('six years on: audit entries below a checkpoint the witness cosigned five years ago are pruned, and every proof still holds', async () => {
      const audit = createFirestoreAuditLog(firestore);
      const transparency = stackTransparency(stack, firestore);
      const logId = main.hospitalId;
      await stackSequencer(stack, firestore).run();
      const witness = testWitness(logId, randomBytes(32), () => Math.floor(Date.now() / 1000));
      const cosigned = await witness.cosignLatest(transparency);
      expect(cosigned.recorded).toBe(true);
      const kept = await audit.sequenced(logId, { from: 0, limit: 1000 });
      expect(kept).toHaveLength(cosigned.size);
      // What a phone saw before the pruning: the cosigned checkpoint and one entry's proof.
      const phoneView = await transparency.witnessedCheckpoint(logId, undefined);
      const trust = {
        origin: auditLogOrigin(stack.env.FUNCTIONS_BASE_URL!, logId),
        log: ed25519VerifierFromKey(phoneView.logKey!),
        witnesses: [],
      };
      const seen = acceptCheckpoint(trust, undefined, phoneView.checkpoint!, []).trusted;

      // Five years less a day after the cosignature: nothing is old enough yet.
      expect((await runAt(5 * 365 * DAY - DAY)).prunedAuditEvents ?? 0).toBe(0);
      // An entry recorded after the cosignature is younger than its checkpoint: it stays.
      await audit.append([
        {
          fields: {
            at: formatTimestamp(new Date()),
            actor: { kind: 'system', id: 'retention-test' },
            action: 'record.deleted',
            hospitalId: logId,
            patientRef: alice.patientRef,
            recordId: newRandomId(),
          },
        },
      ]);
      await stackSequencer(stack, firestore).run();
      const receipt = await runAt(6 * 365 * DAY);
      expect(receipt.prunedAuditEvents).toBeGreaterThanOrEqual(cosigned.size);
      const remaining = await audit.sequenced(logId, { from: 0, limit: 1000 });
      expect(remaining.length).toBeGreaterThan(0);
      expect(remaining.every((entry) => entry.index! >= cosigned.size)).toBe(true);

      // The tiles and checkpoints stay: the phone's next sync still gets a consistency proof from
      // what it saw, and the entry that remains still proves its inclusion.
      await witness.cosignLatest(transparency);
      const next = await transparency.witnessedCheckpoint(logId, seen.size);
      const trusted = acceptCheckpoint(
        trust,
        seen,
        next.checkpoint!,
        next.consistencyProof.map((h) => b64(h)!),
      ).trusted;
      const [left] = await audit.sequenced(logId, { from: 0, limit: 1000 });
      const [proof] = await transparency.inclusionProofs(logId, [left!.index!], trusted.size);
      expect(
        isIncluded(
          trusted,
          auditLeafData(left!.salt, left!.event),
          left!.index!,
          proof!.map((h) => b64(h)!),
        ),
      ).toBe(true);
      expect((await createFirestoreLogRegistry(firestore).state(logId)).witnessed?.size).toBeGreaterThan(
        cosigned.size,
      );
    });
  });

  describe('a crash mid-batch, then a rerun', () => {
    const FAULT_POINTS = [
      'after the ledger note',
      'between blob deletes',
      'before the metadata delete',
    ] as const;

    async function seed(hospitalId: string, count: number, expiresAt: Date): Promise<string[]> {
      const store = createFirestoreRecordStore(firestore);
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const recordId = newRandomId();
        const objectName = recordObjectName(hospitalId, recordId);
        const info = await blobs.writeSmall(
          stack.env.RECORDS_BUCKET!,
          objectName,
          new Uint8Array(randomBytes(64)),
        );
        await store.create({
          recordId,
          uploadId: newRandomId(),
          hospitalId,
          patientRef: newRandomId(),
          contentClass: 'document',
          createdAt: new Date(),
          expiresAt,
          acceptedAt: new Date(),
          size: info.size,
          objectName,
          generation: info.generation,
          recipients: [],
        });
        ids.push(recordId);
      }
      return ids;
    }

    for (const [index, point] of FAULT_POINTS.entries()) {
      it(`${point}: ends as an uninterrupted run would, every deletion counted once`, async () => {
        const hospitalId = `retention-crash-${index}`;
        const soon = new Date(Date.now() + 1000 * DAY);
        const later = new Date(Date.now() + 3000 * DAY);
        const due = await seed(hospitalId, 12, soon);
        const kept = await seed(hospitalId, 3, later);
        const clock = new ManualClock(new Date(soon.getTime() + DAY));
        const realStore = createFirestorePurgeStore(firestore);
        let armed = true;
        let blobDeletes = 0;
        const crash = () => {
          armed = false;
          throw new Error(`injected crash ${point}`);
        };
        // Faults are injected around the real adapters; nothing is simulated.
        const faultyStore: PurgeStore = {
          ...realStore,
          async note(jobId, kind, ids) {
            await realStore.note(jobId, kind, ids);
            if (armed && point === 'after the ledger note' && kind === 'records' && ids.length > 0) {
              // the second batch: the first one is done by now
              if ((await realStore.ledger(jobId)).records.length > 5) crash();
            }
          },
          async removeDocuments(items) {
            if (
              armed &&
              point === 'before the metadata delete' &&
              (await realStore.ledger(`crash-${index}`)).records.length > 5
            )
              crash();
            await realStore.removeDocuments(items);
          },
        };
        const faultyBlobs = new Proxy(blobs, {
          get(target, property) {
            if (property === 'delete') {
              return async (...args: Parameters<BlobStore['delete']>) => {
                if (armed && point === 'between blob deletes' && ++blobDeletes === 8) crash();
                return target.delete(...args);
              };
            }
            const value: unknown = Reflect.get(target, property);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
        const limits = { batchSize: 5 };
        await expect(
          service(clock, { store: faultyStore, blobs: faultyBlobs, limits }).run({ jobId: `crash-${index}` }),
        ).rejects.toThrow('injected crash');
        expect(armed).toBe(false);
        const rerun = await service(clock, { limits }).run({ jobId: `crash-${index}` });
        const receipt = checked(rerun.receipt);
        const mine = receipt.deleted.records.filter((id) => due.includes(id) || kept.includes(id));
        expect(mine.sort()).toEqual([...due].sort());
        expect(new Set(receipt.deleted.records).size).toBe(receipt.deleted.records.length);
        for (const id of due) {
          expect(await exists(RECORDS_COLLECTION, id)).toBe(false);
          expect(await blobExists(stack.env.RECORDS_BUCKET!, recordObjectName(hospitalId, id))).toBe(false);
        }
        for (const id of kept) {
          expect(await exists(RECORDS_COLLECTION, id)).toBe(true);
          expect(await blobExists(stack.env.RECORDS_BUCKET!, recordObjectName(hospitalId, id))).toBe(true);
        }
        const events = await hospitalEvents(hospitalId);
        const logged = events
          .filter((e) => e.fields.action === 'record.deleted')
          .map((e) => e.fields.recordId!);
        expect(logged.sort()).toEqual([...due].sort());
        // Calling again with the same id hands back the same receipt and deletes nothing more.
        const again = await service(clock, { limits }).run({ jobId: `crash-${index}` });
        expect(again.alreadyDone).toBe(true);
        expect(Buffer.from(again.receipt).equals(Buffer.from(rerun.receipt))).toBe(true);
      });
    }
  });

  describe('a bounded run', () => {
    it('stops at its budget, says so in the receipt, and the next run finishes', async () => {
      const store = createFirestoreRecordStore(firestore);
      const due: string[] = [];
      const soon = new Date(Date.now() + 2000 * DAY); // after the crash tests, before what they kept
      for (let i = 0; i < 7; i++) {
        const recordId = newRandomId();
        await store.create({
          recordId,
          uploadId: newRandomId(),
          hospitalId: 'retention-budget',
          patientRef: newRandomId(),
          contentClass: 'document',
          createdAt: new Date(),
          expiresAt: soon,
          acceptedAt: new Date(),
          size: 1,
          objectName: recordObjectName('retention-budget', recordId),
          generation: '1',
          recipients: [],
        });
        due.push(recordId);
      }
      const clock = new ManualClock(new Date(soon.getTime() + DAY));
      const first = checked(
        (await service(clock, { limits: { maxDeletions: 5, batchSize: 2 } }).run({ jobId: 'budget-1' }))
          .receipt,
      );
      const second = checked(
        (await service(clock, { limits: { maxDeletions: 5, batchSize: 2 } }).run({ jobId: 'budget-2' }))
          .receipt,
      );
      const mine = (receipt: DeletionReceipt) => receipt.deleted.records.filter((id) => due.includes(id));
      expect(first.complete).toBe(false);
      expect(mine(first)).toHaveLength(5);
      expect(second.complete).toBe(true);
      expect([...mine(first), ...mine(second)].sort()).toEqual([...due].sort());
    });
  });

  describe('the deployed function, called as Cloud Scheduler calls it', () => {
    it('signs a receipt that verifies with its published key, once per scheduled slot', async () => {
      const slot = new Date(Date.now() - 60_000).toISOString();
      const call = async () => {
        const response = await fetch(`${stack.functions.url}/retention`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-cloudscheduler': 'true',
            'x-cloudscheduler-scheduletime': slot,
          },
          body: '{}',
        });
        expect(response.status).toBe(200);
        return (await response.json()) as { jobId: string; alreadyDone: boolean; receipt: string };
      };
      const first = await call();
      const receipt = verifyDeletionReceipt(deletionReceiptFromText(first.receipt), retentionKey);
      expect(receipt.jobId).toBe(`retention-${slot}`);
      expect(receipt.reason).toBe('retention');
      const second = await call();
      expect(second).toMatchObject({ alreadyDone: true, receipt: first.receipt });
    });

    it("the local scheduler's own job runs it", async () => {
      const response = await fetch(`${stack.functions.url}/_scheduler/jobs/retention:run`, {
        method: 'POST',
      });
      expect(((await response.json()) as { status: number }).status).toBe(200);
    });

    it("records its run in the platform's audit log, which the sequencer then commits", async () => {
      const runs = await storedAuditEvents(firestore, { action: 'retention.run' });
      expect(runs.length).toBeGreaterThan(0);
      await runSequencer(stack);
      const logs = await createFirestoreLogRegistry(firestore).logs();
      expect(logs).toContain('platform');
    });
  });
});
