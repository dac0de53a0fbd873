// Fault injection into ingest (threat model F2). The ingest service is built over the real
// adapters on the local stack, each wrapped by a FaultPlan; a fault is injected before and after
// every step of a fault-free run, then the event is delivered again, as Eventarc redelivers an
// event whose handler failed. The end state must equal the fault-free one: one record and its
// blob, the upload gone, the receipt there, one audit event, and at most one extra ping.
import { randomBytes } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../emulator/stack.ts';
import { createFcmNotifier, type FcmNotifier } from '../../shared/adapters/fcm-notifier.ts';
import { storedAuditEvents } from '../helpers/audit-logs.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { createStorage } from '../../shared/adapters/google-clients.ts';
import { cloudLogger } from '../../shared/adapters/cloud-logger.ts';
import { generateKeyPair, type PublicKey } from '../../shared/core/crypto/index.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import { receiptObjectName, recordObjectName, verifyReceipt } from '../../shared/core/protocol/index.ts';
import {
  collectBytes,
  functionPublicKey,
  pairTestDevice,
  pushCount,
  registerTestHospital,
  sealTestUpload,
  stackBlobStore,
  type TestDevice,
  type TestHospital,
} from '../helpers/delivery-fixture.ts';
import { recordEvidence } from '../helpers/evidence.ts';
import { FaultPlan, faultPointsOf, type FaultPoint } from '../helpers/faults.ts';
import { stackIngestService } from '../helpers/stack-services.ts';
import { useLocalStack } from '../helpers/local-stack.ts';

/**
 * The steps of a fault-free accepted upload, in the order they start (the first test checks this
 * list). Some run side by side: the hospital lookup with the container's read, the devices with
 * the record lookup, and the audit event, the receipt and the push once the record is filed.
 */
const ACCEPT_STEPS = [
  'blobs.stat',
  'hospitals.getHospital',
  'blobs.read',
  'devices.listActive',
  'records.get',
  'blobs.createOnly',
  'records.create',
  'audit.append',
  'fcm.send',
  'kms.decrypt',
  'blobs.writeSmall',
  'blobs.delete',
];

/**
 * The steps of a fault-free rejected upload (a recipient that is no device of the patient). Its
 * first read stops after the manifest, so it has no "after" (it never reaches its end).
 */
const REJECT_STEPS = [
  'blobs.stat',
  'hospitals.getHospital',
  'blobs.read',
  'devices.listActive',
  'records.get',
  'devices.get',
  'kms.decrypt',
  'blobs.writeSmall',
  'blobs.read#2',
  'blobs.createOnly',
  'blobs.delete',
];

interface EndState {
  readonly records: number;
  readonly recordBlob: boolean;
  readonly receipt: string;
  readonly uploadLeft: boolean;
  readonly quarantined: boolean;
  readonly createdEvents: number;
}

describe('F2 faults in ingest, then the event redelivered', () => {
  const local = useLocalStack('faults-ingest');
  let stack: Stack;
  let firestore: Firestore;
  let blobs: BlobStore;
  let notifier: FcmNotifier;
  let hospital: TestHospital;
  let device: TestDevice;
  let ingestKey: PublicKey;
  // Uploads land in a bucket without a trigger, so the deployed ingest function leaves them to
  // the service under test.
  const uploadBucket = 'cb-faults-ingest-uploads';
  const silent = cloudLogger({ functionName: 'ingest', sink: () => undefined });

  beforeAll(async () => {
    ({ stack, firestore } = local);
    blobs = stackBlobStore(stack);
    await createStorage(stack.env.GCLOUD_PROJECT!, stack.env).createBucket(uploadBucket);
    notifier = createFcmNotifier({
      projectId: stack.env.GCLOUD_PROJECT!,
      env: stack.env,
      collapseKey: 'records',
    });
    hospital = await registerTestHospital(firestore, stack, 'st-faults-ingest');
    device = await pairTestDevice(stack, hospital, 'faults-patient');
    ingestKey = await functionPublicKey(firestore, 'ingest');
  });

  afterAll(async () => {
    await notifier?.close();
  });

  async function blobExists(bucket: string, name: string): Promise<boolean> {
    return (await blobs.stat(bucket, name)) !== undefined;
  }

  /**
   * Drops one upload and handles its event until the handler returns, as Eventarc retries a
   * failed delivery. Returns the end state and the pings the device got.
   */
  async function run(
    plan: FaultPlan,
    options: { rejected: boolean },
  ): Promise<{ state: EndState; pings: number; deliveries: number }> {
    const stranger = generateKeyPair();
    const recipients = options.rejected
      ? [device, { ...device, deviceId: stranger.publicKey.fingerprint, keys: stranger }]
      : [device];
    const sealed = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients,
      file: new Uint8Array(randomBytes(5000)),
    });
    const { recordId, uploadId } = sealed.manifest;
    const upload = await blobs.createOnly(uploadBucket, sealed.objectName, sealed.bytes());
    const event = {
      bucket: uploadBucket,
      name: upload.name,
      generation: upload.generation,
      size: String(upload.size),
    };
    const pingsBefore = await pushCount(stack, device.fcmToken);
    const service = stackIngestService(stack, { firestore, notifier, uploadBucket, plan });
    let deliveries = 0;
    for (;;) {
      deliveries++;
      try {
        await service.handle(event, silent);
        break;
      } catch (error) {
        if (deliveries >= 3) throw error;
      }
    }
    const receiptName = receiptObjectName(hospital.hospitalId, uploadId);
    const receipt = (await blobExists(stack.env.OUTBOX_BUCKET!, receiptName))
      ? verifyReceipt(await collectBytes(blobs.read(stack.env.OUTBOX_BUCKET!, receiptName)), ingestKey)
      : undefined;
    const created = await storedAuditEvents(firestore, { recordId, action: 'record.created' });
    const state: EndState = {
      records: (await firestore.collection(RECORDS_COLLECTION).doc(recordId).get()).exists ? 1 : 0,
      recordBlob: await blobExists(
        stack.env.RECORDS_BUCKET!,
        recordObjectName(hospital.hospitalId, recordId),
      ),
      receipt:
        receipt === undefined ? 'none' : receipt.status === 'accepted' ? 'accepted' : receipt.errorCode,
      uploadLeft: await blobExists(uploadBucket, upload.name),
      quarantined: await blobExists(stack.env.QUARANTINE_BUCKET!, upload.name),
      createdEvents: created.length,
    };
    return { state, pings: (await pushCount(stack, device.fcmToken)) - pingsBefore, deliveries };
  }

  const cases: [string, readonly string[], boolean, FaultPoint[]][] = [
    ['an accepted upload', ACCEPT_STEPS, false, faultPointsOf(ACCEPT_STEPS)],
    [
      'a rejected upload',
      REJECT_STEPS,
      true,
      faultPointsOf(REJECT_STEPS).filter((point) => !(point.step === 'blobs.read' && point.when === 'after')),
    ],
  ];

  for (const [what, steps, rejected, points] of cases) {
    describe(what, () => {
      let baseline: { state: EndState; pings: number };

      beforeAll(async () => {
        baseline = await run(new FaultPlan(), { rejected });
      });

      it('the fault-free run takes exactly the steps faulted below', async () => {
        const plan = new FaultPlan();
        await run(plan, { rejected });
        expect(plan.trace).toEqual(steps);
        expect(baseline.state).toEqual(
          rejected
            ? {
                records: 0,
                recordBlob: false,
                receipt: 'UNKNOWN_DEVICE',
                uploadLeft: false,
                quarantined: true,
                createdEvents: 0,
              }
            : {
                records: 1,
                recordBlob: true,
                receipt: 'accepted',
                uploadLeft: false,
                quarantined: false,
                createdEvents: 1,
              },
        );
        expect(baseline.pings).toBe(rejected ? 0 : 1);
      });

      for (const point of points) {
        it(`${point.when} ${point.step}: the redelivered event ends where a fault-free run does`, async () => {
          const plan = new FaultPlan(point);
          const { state, pings, deliveries } = await run(plan, { rejected });
          expect(plan.fired).toBe(true);
          expect(state).toEqual(baseline.state);
          expect(pings).toBeLessThanOrEqual(baseline.pings + 1);
          // A push is a courtesy (shared/services/push-hints.ts): when FCM fails the ping is
          // lost and the device finds the record at its next sync; nothing else may lose it.
          if (!isLostPing(point)) expect(pings).toBeGreaterThanOrEqual(baseline.pings);
          recordEvidence({
            kind: 'fault',
            flow: `ingest (${what})`,
            point: `${point.when} ${point.step}`,
            outcome: `${deliveries === 1 ? 'one delivery' : `${deliveries} deliveries`}, end state equal, ${pings} ping(s)`,
          });
        });
      }
    });
  }
});

function isLostPing(point: FaultPoint): boolean {
  return point.step === 'fcm.send' && point.when === 'before';
}
