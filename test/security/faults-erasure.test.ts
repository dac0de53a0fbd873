// Fault injection into erasure (threat model F4). The records service is built over the real
// adapters on the local stack, each wrapped by a FaultPlan; a fault is injected before and after
// the first call of every step of a fault-free erasure, then the phone signs its request again.
// Whatever the point, nothing of the patient is left (records, containers, receipts, invitation,
// devices) and the other patient is untouched. What the phone gets back is checked too: the full
// signed receipt, except after the last write (the ledger and the phone's own device together),
// when the phone can no longer sign; the threat model accepts that.
import { randomBytes } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../emulator/stack.ts';
import { systemClock } from '../../shared/adapters/clock.ts';
import { createFirestoreAuditLog } from '../../shared/adapters/firestore-audit.ts';
import {
  createFirestorePairingStores,
  PAIRING_COLLECTIONS,
} from '../../shared/adapters/firestore-pairing.ts';
import { createFirestorePurgeStore } from '../../shared/adapters/firestore-purge.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { type PublicKey } from '../../shared/core/crypto/index.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import {
  deviceKeyId,
  fromBase64Url,
  isProtocolError,
  receiptObjectName,
  recordObjectName,
  verifyDeletionReceipt,
} from '../../shared/core/protocol/index.ts';
import { createDeviceCaller } from '../../shared/services/device-caller.ts';
import { createErasureService, type ErasureService } from '../../shared/services/erasure.ts';
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
import { recordEvidence } from '../helpers/evidence.ts';
import { FaultPlan, faultPointsOf, type FaultPoint } from '../helpers/faults.ts';
import { signedCall, stackFunctionKeys } from '../helpers/stack-services.ts';
import { useLocalStack } from '../helpers/local-stack.ts';

/** The distinct steps of a fault-free erasure, in first-call order. */
const ERASURE_STEPS = [
  'devices.get',
  'nonces.remember',
  'purge.openJob',
  'audit.append',
  'purge.findForPatient',
  'purge.note',
  'blobs.delete',
  'purge.removeDocuments',
  'kms.decrypt',
  'purge.ledger',
  'purge.discardJob',
];

/** How a fault-free erasure ends: the caller's own device noted, signed, logged, then deleted with the ledger. */
const ERASURE_TAIL = ['purge.note#4', 'kms.decrypt', 'purge.ledger', 'audit.append#5', 'purge.discardJob'];

/**
 * Where a retry cannot give the phone its receipt (docs/THREAT_MODEL.md, F4): the ledger and the
 * phone's own device go in one write, and after it the phone can no longer sign a request.
 */
function receiptLost(point: FaultPoint): boolean {
  return point.step === 'purge.discardJob' && point.when === 'after';
}

describe('F4 faults in erasure, then the phone asks again', () => {
  const local = useLocalStack('faults-erasure');
  let stack: Stack;
  let firestore: Firestore;
  let blobs: BlobStore;
  let hospital: TestHospital;
  let bystander: TestDevice;
  let bystanderRecord: string;
  let ingestKey: PublicKey;
  let recordsKey: PublicKey;
  let patients = 0;

  beforeAll(async () => {
    ({ stack, firestore } = local);
    blobs = stackBlobStore(stack);
    hospital = await registerTestHospital(firestore, stack, 'st-faults-erasure');
    ingestKey = await functionPublicKey(firestore, 'ingest');
    recordsKey = await functionPublicKey(firestore, 'records');
    bystander = await pairTestDevice(stack, hospital, 'erasure-bystander');
    const { sealed } = await deliver(stack, hospital, ingestKey, {
      patientRef: bystander.patientRef,
      recipients: [bystander],
      file: new Uint8Array(randomBytes(500)),
    });
    bystanderRecord = sealed.manifest.recordId;
  });

  function erasure(plan: FaultPlan): ErasureService {
    const keys = stackFunctionKeys(stack, firestore, 'records', plan);
    const stores = createFirestorePairingStores(firestore);
    return createErasureService({
      caller: createDeviceCaller({
        devices: plan.wrap('devices', stores.devices),
        nonces: plan.wrap('nonces', stores.nonces),
        clock: systemClock,
      }),
      audit: plan.wrap('audit', createFirestoreAuditLog(firestore)),
      purge: plan.wrap('purge', createFirestorePurgeStore(firestore)),
      signingKey: async () => (await keys.keyPair()).privateKey,
      blobs: plan.wrap('blobs', blobs),
      recordsBucket: stack.env.RECORDS_BUCKET!,
      outboxBucket: stack.env.OUTBOX_BUCKET!,
      clock: systemClock,
    });
  }

  /** The phone's erase call, signed afresh for each try. */
  function eraseCall(device: TestDevice) {
    return signedCall(
      { keyId: deviceKeyId(device.deviceId), privateKey: device.keys.privateKey },
      'POST',
      '/records/v1/patient/erase',
      { confirm: 'erase-everything' },
    );
  }

  async function exists(collection: string, id: string): Promise<boolean> {
    return (await firestore.collection(collection).doc(id).get()).exists;
  }

  /** A patient with two phones, one record, one open invitation; the first phone erases. */
  async function run(plan: FaultPlan) {
    patients++;
    const phone = await pairTestDevice(stack, hospital, `erasure-patient-${patients}`);
    const sibling = await pairTestDevice(stack, hospital, `erasure-patient-${patients}`);
    const invitation = await inviteTestPatient(hospital, `erasure-patient-${patients}`);
    const { sealed, receipt: accepted } = await deliver(stack, hospital, ingestKey, {
      patientRef: phone.patientRef,
      recipients: [phone, sibling],
      file: new Uint8Array(randomBytes(500)),
    });
    const recordId = sealed.manifest.recordId;
    // The invitations the two phones were paired with are the patient's too.
    const invitations = (
      await firestore
        .collection(PAIRING_COLLECTIONS.invitations)
        .where('patientRef', '==', phone.patientRef)
        .get()
    ).docs.map((doc) => doc.id);
    const service = erasure(plan);
    let answer: string | undefined;
    let refusal: string | undefined;
    let tries = 0;
    while (answer === undefined && refusal === undefined && tries < 3) {
      tries++;
      try {
        answer = (await service.erase(eraseCall(phone))).receipt;
      } catch (error) {
        // A refusal is the answer; anything else is a 5xx the phone tries again after.
        if (isProtocolError(error)) refusal = error.code;
      }
    }
    const receipt =
      answer === undefined ? undefined : verifyDeletionReceipt(fromBase64Url(answer)!, recordsKey);
    const left = {
      record: await exists(RECORDS_COLLECTION, recordId),
      container:
        (await blobs.stat(stack.env.RECORDS_BUCKET!, recordObjectName(hospital.hospitalId, recordId))) !==
        undefined,
      acceptedReceipt:
        (await blobs.stat(
          stack.env.OUTBOX_BUCKET!,
          receiptObjectName(hospital.hospitalId, accepted.uploadId),
        )) !== undefined,
      invitation: await exists(PAIRING_COLLECTIONS.invitations, invitation.invitationId),
      phone: await exists(PAIRING_COLLECTIONS.devices, phone.deviceId),
      sibling: await exists(PAIRING_COLLECTIONS.devices, sibling.deviceId),
      bystander:
        (await exists(RECORDS_COLLECTION, bystanderRecord)) &&
        (await exists(PAIRING_COLLECTIONS.devices, bystander.deviceId)),
    };
    const listed = receipt && {
      records: receipt.deleted.records,
      invitations: [...receipt.deleted.invitations].sort(),
      devices: [...receipt.deleted.devices].sort(),
    };
    const full = {
      records: [recordId],
      invitations: invitations.sort(),
      devices: [phone.deviceId, sibling.deviceId].sort(),
    };
    return { left, listed, full, refusal, tries };
  }

  const nothingLeft = {
    record: false,
    container: false,
    acceptedReceipt: false,
    invitation: false,
    phone: false,
    sibling: false,
    bystander: true,
  };

  it('the fault-free run takes exactly the steps faulted below', async () => {
    const plan = new FaultPlan();
    const outcome = await run(plan);
    const firstCalls = plan.trace.filter((step) => !step.includes('#'));
    expect(firstCalls).toEqual(ERASURE_STEPS);
    expect(plan.trace.slice(-ERASURE_TAIL.length)).toEqual(ERASURE_TAIL);
    expect(outcome.left).toEqual(nothingLeft);
    expect(outcome.listed).toEqual(outcome.full);
  });

  for (const point of faultPointsOf([...ERASURE_STEPS, 'purge.note#4', 'audit.append#5'])) {
    it(`${point.when} ${point.step}: nothing of the patient is left after the phone asks again`, async () => {
      const plan = new FaultPlan(point);
      const outcome = await run(plan);
      expect(plan.fired).toBe(true);
      expect(outcome.left).toEqual(nothingLeft);
      if (receiptLost(point)) expect(outcome.refusal).toBe('UNKNOWN_KEY');
      else expect(outcome.listed).toEqual(outcome.full);
      recordEvidence({
        kind: 'fault',
        flow: 'erasure',
        point: `${point.when} ${point.step}`,
        outcome: `${outcome.tries} tries, nothing left; ${
          outcome.listed === undefined
            ? `no receipt (${outcome.refusal ?? 'none'})`
            : JSON.stringify(outcome.listed) === JSON.stringify(outcome.full)
              ? 'full receipt'
              : 'partial receipt'
        }`,
      });
    });
  }
});
