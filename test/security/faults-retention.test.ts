// Fault injection into retention (threat model F3). The retention service is built over the real
// adapters on the local stack, each wrapped by a FaultPlan; a fault is injected before and after
// the first call of every step a fault-free run makes, then the run is started again under the
// same job id, as Cloud Scheduler retries a failed slot. The end state must equal the fault-free
// one: every due record, blob and receipt gone, the others kept, each deletion once in the signed
// receipt and once in the audit trail, and the same receipt handed back on a third call.
// (test/integration/retention.test.ts adds faults in the middle of batches.)
import { randomBytes } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../emulator/stack.ts';
import { ManualClock } from '../../shared/adapters/clock.ts';
import { stackSequencer, storedAuditEvents } from '../helpers/audit-logs.ts';
import { createFirestoreAuditLog } from '../../shared/adapters/firestore-audit.ts';
import { createFirestoreRecordStore, RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { createStorage } from '../../shared/adapters/google-clients.ts';
import { type PublicKey } from '../../shared/core/crypto/index.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import {
  newRandomId,
  receiptObjectName,
  recordObjectName,
  verifyDeletionReceipt,
} from '../../shared/core/protocol/index.ts';
import type { RetentionService } from '../../shared/services/retention.ts';
import { functionPublicKey, registerTestHospital, stackBlobStore } from '../helpers/delivery-fixture.ts';
import { recordEvidence } from '../helpers/evidence.ts';
import { FaultPlan, faultPointsOf } from '../helpers/faults.ts';
import { stackRetentionService } from '../helpers/stack-services.ts';
import { useLocalStack } from '../helpers/local-stack.ts';

const DAY = 24 * 3600_000;

/** The distinct steps of a fault-free run over this file's data, in first-call order. */
const RETENTION_STEPS = [
  'store.openJob',
  'store.ledger',
  'hospitals.listHospitals',
  'policies.get',
  'store.findExpired',
  'store.note',
  'audit.append',
  'blobs.delete',
  'store.removeDocuments',
  'blobs.list',
  'store.cursor',
  'store.existingRecords',
  'store.setCursor',
  'audit-logs.logs',
  'audit-logs.witnessedBefore',
  'kms.decrypt',
  'store.finishJob',
];

interface EndState {
  readonly due: number;
  readonly kept: number;
  readonly receiptsLeft: number;
  readonly inReceipt: number;
  readonly deletedEvents: number;
  readonly sameReceiptAgain: boolean;
}

describe('F3 faults in retention, then the same job again', () => {
  const local = useLocalStack('faults-retention');
  let stack: Stack;
  let firestore: Firestore;
  let blobs: BlobStore;
  let retentionKey: PublicKey;
  const uploads = 'cb-faults-retention-uploads';
  let slot = 0;
  // One registered hospital for every run, so that each run finds the same policies to apply.
  const hospitalId = 'st-faults-retention';

  beforeAll(async () => {
    ({ stack, firestore } = local);
    blobs = stackBlobStore(stack);
    retentionKey = await functionPublicKey(firestore, 'retention');
    await createStorage(stack.env.GCLOUD_PROJECT!, stack.env).createBucket(uploads);
    await registerTestHospital(firestore, stack, hospitalId);
    // A hospital with an audit log, so the run's audit pruning step has a log to look at.
    await createFirestoreAuditLog(firestore).append([
      {
        fields: {
          at: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
          actor: { kind: 'system', id: 'faults-retention' },
          action: 'record.created',
          hospitalId,
        },
      },
    ]);
    await stackSequencer(stack, firestore).run();
  });

  function retention(plan: FaultPlan, clock: ManualClock): RetentionService {
    return stackRetentionService(stack, { firestore, clock, uploadBucket: uploads, plan });
  }

  /** Records with their container and accepted-receipt, as ingest leaves them. */
  async function seed(count: number, expiresAt: Date): Promise<string[]> {
    const records = createFirestoreRecordStore(firestore);
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const recordId = newRandomId();
      const uploadId = newRandomId();
      const objectName = recordObjectName(hospitalId, recordId);
      const info = await blobs.writeSmall(
        stack.env.RECORDS_BUCKET!,
        objectName,
        new Uint8Array(randomBytes(64)),
      );
      await blobs.writeSmall(
        stack.env.OUTBOX_BUCKET!,
        receiptObjectName(hospitalId, uploadId),
        new Uint8Array(randomBytes(32)),
      );
      await records.create({
        recordId,
        uploadId,
        hospitalId,
        patientRef: newRandomId(),
        contentClass: 'document',
        // Twenty days old when due: well inside the hospital's own record lifetime (90 days).
        createdAt: new Date(expiresAt.getTime() - 20 * DAY),
        expiresAt,
        acceptedAt: new Date(expiresAt.getTime() - 20 * DAY),
        size: info.size,
        objectName,
        generation: info.generation,
        recipients: [],
      });
      ids.push(recordId);
    }
    return ids;
  }

  async function stored(recordId: string): Promise<boolean> {
    const doc = await firestore.collection(RECORDS_COLLECTION).doc(recordId).get();
    const blob = await blobs.stat(stack.env.RECORDS_BUCKET!, recordObjectName(hospitalId, recordId));
    // Never a blob without its metadata, nor metadata without its blob, once a run has finished.
    expect(doc.exists).toBe(blob !== undefined);
    return doc.exists;
  }

  /**
   * Seeds 3 due and 2 later records, then runs retention past the due ones with `plan` and, if
   * that failed, again under the same job id without a fault. Each call gets its own time slot
   * (far apart from the others), so one call's data never falls due in another's run.
   */
  async function run(plan: FaultPlan): Promise<{ state: EndState; tries: number }> {
    slot++;
    const dueAt = new Date(Date.now() + (100 + slot * 3) * DAY);
    const due = await seed(3, dueAt);
    const kept = await seed(2, new Date(dueAt.getTime() + 2 * DAY));
    const clock = new ManualClock(new Date(dueAt.getTime() + DAY));
    const jobId = `faults-${slot}`;
    let tries = 1;
    let result;
    try {
      result = await retention(plan, clock).run({ jobId });
    } catch {
      tries++;
      result = await retention(new FaultPlan(), clock).run({ jobId });
    }
    const receipt = verifyDeletionReceipt(result.receipt, retentionKey);
    const again = await retention(new FaultPlan(), clock).run({ jobId });
    const events = (await storedAuditEvents(firestore, { action: 'record.deleted' })).filter(
      (fields) => fields.recordId !== undefined && [...due, ...kept].includes(fields.recordId),
    );
    let receiptsLeft = 0;
    for (const id of [...due, ...kept]) {
      const record = await firestore.collection(RECORDS_COLLECTION).doc(id).get();
      if (record.exists) {
        const name = receiptObjectName(hospitalId, record.get('uploadId') as string);
        if ((await blobs.stat(stack.env.OUTBOX_BUCKET!, name)) !== undefined) receiptsLeft++;
      }
    }
    const states = await Promise.all([...due, ...kept].map((id) => stored(id)));
    return {
      tries,
      state: {
        due: states.slice(0, due.length).filter(Boolean).length,
        kept: states.slice(due.length).filter(Boolean).length,
        receiptsLeft,
        inReceipt: receipt.deleted.records.filter((id) => due.includes(id) || kept.includes(id)).length,
        deletedEvents: events.length,
        sameReceiptAgain: again.alreadyDone && Buffer.from(again.receipt).equals(Buffer.from(result.receipt)),
      },
    };
  }

  const expected: EndState = {
    due: 0,
    kept: 2,
    receiptsLeft: 2,
    inReceipt: 3,
    deletedEvents: 3,
    sameReceiptAgain: true,
  };

  it('the fault-free run takes exactly the steps faulted below', async () => {
    const plan = new FaultPlan();
    const { state, tries } = await run(plan);
    const firstCalls = plan.trace.filter((step) => !step.includes('#'));
    expect(firstCalls).toEqual(RETENTION_STEPS);
    expect({ state, tries }).toEqual({ state: expected, tries: 1 });
  });

  for (const point of faultPointsOf(RETENTION_STEPS)) {
    it(`${point.when} ${point.step}: the job run again ends where a fault-free run does`, async () => {
      const plan = new FaultPlan(point);
      const { state, tries } = await run(plan);
      expect(plan.fired).toBe(true);
      expect(state).toEqual(expected);
      recordEvidence({
        kind: 'fault',
        flow: 'retention',
        point: `${point.when} ${point.step}`,
        outcome: `${tries} run(s), end state equal, same receipt on a third call`,
      });
    });
  }
});
