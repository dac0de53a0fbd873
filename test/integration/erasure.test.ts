// Erasure, recall and the patient's access log on the whole local stack, through the real
// functions: a patient's signed request erases everything about them at one hospital and gets
// a receipt that verifies with the records function's published key, after which nothing of
// theirs is left in Storage or Firestore (outside the audit trail, which NEN 7513 keeps) while
// another patient is untouched; a hospital recalls a record it sent and only that one; and a
// patient's access log shows their own events and nobody else's.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { responseBytes } from '../../clients/lib/api-client.ts';
import { startStack, type Stack } from '../../emulator/stack.ts';
import { AUDIT_COLLECTIONS } from '../../shared/adapters/firestore-audit.ts';
import { storedAuditEvents } from '../helpers/audit-logs.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { type PublicKey } from '../../shared/core/crypto/index.ts';
import {
  accessLogResponseSchema,
  deletionResponseSchema,
  fromBase64Url,
  recordListResponseSchema,
  signingKeyResponseSchema,
  verifyDeletionReceipt,
} from '../../shared/core/protocol/index.ts';
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
import { refusal } from '../helpers/refusal.ts';
import { asText, storedData } from '../helpers/stored-data.ts';

/** Everything stored, as text, outside the audit trail: every Firestore document and every object. */
async function storedText(stack: Stack, firestore: Firestore): Promise<string> {
  return asText(
    await storedData(firestore, stackBlobStore(stack), stack.env.GCLOUD_PROJECT!, {
      skipCollections: Object.values(AUDIT_COLLECTIONS),
      buckets: ['ingest', 'records', 'outbox', 'quarantine'],
    }),
  );
}

describe('erasure, recall and the access log', () => {
  let dataDir: string;
  let stack: Stack;
  let firestore: Firestore;
  let hospital: TestHospital;
  let other: TestHospital;
  let ingestKey: PublicKey;
  let alicePhone: TestDevice;
  let aliceTablet: TestDevice;
  let bob: TestDevice;
  const aliceRecords: string[] = [];
  let bobRecord: string;
  let bobSecond: string;
  let aliceInvitation: string;

  async function send(to: TestDevice[]): Promise<string> {
    const { sealed, receipt } = await deliver(stack, hospital, ingestKey, {
      patientRef: to[0]!.patientRef,
      recipients: to,
      file: new Uint8Array(randomBytes(1500)),
    });
    expect(receipt.status).toBe('accepted');
    return sealed.manifest.recordId;
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cb-erasure-'));
    stack = await startStack({ dataDir, portBase: 0 });
    firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
    hospital = await registerTestHospital(firestore, stack, 'erasure-hospital');
    other = await registerTestHospital(firestore, stack, 'erasure-other');
    ingestKey = await functionPublicKey(firestore, 'ingest');
    alicePhone = await pairTestDevice(stack, hospital, 'alice');
    aliceTablet = await pairTestDevice(stack, hospital, 'alice');
    bob = await pairTestDevice(stack, hospital, 'bob');
    aliceRecords.push(await send([alicePhone, aliceTablet]), await send([alicePhone]));
    bobRecord = await send([bob]);
    bobSecond = await send([bob]);
    aliceInvitation = (await inviteTestPatient(hospital, 'alice')).invitationId;
    // Bob downloads and stores his first record, so his access log has something to show.
    await responseBytes(
      await bob.api.raw({ method: 'GET', target: `/records/v1/records/${bobRecord}/content` }),
    );
    await bob.api.raw({
      method: 'POST',
      target: `/records/v1/records/${bobRecord}/ack`,
      json: { outcome: 'stored' },
    });
  });

  afterAll(async () => {
    await firestore?.terminate();
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('publishes the records function key, unsigned, as the directory has it', async () => {
    const { publicKey } = await bob.api.call(
      { method: 'GET', target: '/records/v1/signing-key' },
      signingKeyResponseSchema,
    );
    expect(publicKey).toBe((await functionPublicKey(firestore, 'records')).toBase64Url());
  });

  it('a patient sees only their own access log, newest first', async () => {
    const { entries } = await bob.api.call(
      { method: 'GET', target: '/records/v1/access-log?pageSize=20' },
      accessLogResponseSchema,
    );
    expect(entries.map((e) => e.action)).toEqual([
      'record.acknowledged',
      'record.downloaded',
      'record.created',
      'record.created',
      'device.paired',
      'invitation.created',
    ]);
    const mentioned = entries.flatMap((e) => [e.recordId, e.deviceId, e.actor.id]);
    for (const id of [...aliceRecords, alicePhone.deviceId, aliceTablet.deviceId]) {
      expect(mentioned).not.toContain(id);
    }
    const first = await bob.api.call(
      { method: 'GET', target: '/records/v1/access-log?pageSize=2' },
      accessLogResponseSchema,
    );
    const next = await bob.api.call(
      { method: 'GET', target: `/records/v1/access-log?pageSize=2&pageToken=${first.nextPageToken}` },
      accessLogResponseSchema,
    );
    expect([...first.entries, ...next.entries]).toEqual(entries.slice(0, 4));
    expect(
      await refusal(bob.api.raw({ method: 'GET', target: '/records/v1/access-log?pageToken=%%%' })),
    ).toEqual({
      status: 400,
      code: 'INVALID_REQUEST',
    });
  });

  it('a hospital recalls a record it sent: gone from storage and listing, with a receipt', async () => {
    expect(
      await refusal(
        other.api.raw({
          method: 'POST',
          target: `/pairing/v1/records/${bobSecond}/recall`,
          json: { operatorRef: other.operatorRef },
        }),
      ),
    ).toEqual({ status: 404, code: 'NOT_FOUND' });
    const { receipt } = await hospital.api.call(
      {
        method: 'POST',
        target: `/pairing/v1/records/${bobSecond}/recall`,
        json: { operatorRef: hospital.operatorRef },
      },
      deletionResponseSchema,
    );
    const verified = verifyDeletionReceipt(
      fromBase64Url(receipt)!,
      await functionPublicKey(firestore, 'pairing'),
    );
    expect(verified).toMatchObject({ reason: 'recall', hospitalId: hospital.hospitalId });
    expect(verified.deleted.records).toEqual([bobSecond]);
    const { records } = await bob.api.call(
      { method: 'GET', target: '/records/v1/records' },
      recordListResponseSchema,
    );
    expect(records.map((r) => r.recordId)).toEqual([bobRecord]);
    expect(
      await refusal(bob.api.raw({ method: 'GET', target: `/records/v1/records/${bobSecond}/content` })),
    ).toEqual({ status: 404, code: 'NOT_FOUND' });
    // A retry gets the same receipt; the other hospital still learns nothing.
    const again = await hospital.api.call(
      {
        method: 'POST',
        target: `/pairing/v1/records/${bobSecond}/recall`,
        json: { operatorRef: hospital.operatorRef },
      },
      deletionResponseSchema,
    );
    expect(again.receipt).toBe(receipt);
    expect(
      await refusal(
        other.api.raw({
          method: 'POST',
          target: `/pairing/v1/records/${bobSecond}/recall`,
          json: { operatorRef: other.operatorRef },
        }),
      ),
    ).toEqual({ status: 404, code: 'NOT_FOUND' });
    const log = await bob.api.call(
      { method: 'GET', target: '/records/v1/access-log' },
      accessLogResponseSchema,
    );
    expect(log.entries[0]).toMatchObject({
      action: 'record.recalled',
      recordId: bobSecond,
      actor: { kind: 'hospital', id: hospital.hospitalId },
    });
  });

  it('erasure needs its confirmation and refuses bad input without changing anything', async () => {
    const before = await storedText(stack, firestore);
    for (const json of [{}, { confirm: 'yes' }, { confirm: 'erase-everything', extra: 1 }]) {
      expect(
        await refusal(alicePhone.api.raw({ method: 'POST', target: '/records/v1/patient/erase', json })),
      ).toEqual({ status: 400, code: 'INVALID_REQUEST' });
    }
    const after = await storedText(stack, firestore);
    expect(after.length).toBe(before.length);
  });

  it("a patient's erasure leaves nothing of them in Storage or Firestore, and others untouched", async () => {
    const beforeText = await storedText(stack, firestore);
    for (const id of [alicePhone.patientRef, ...aliceRecords, alicePhone.deviceId, aliceInvitation]) {
      expect(beforeText).toContain(id); // the scan sees them while they exist
    }
    const { receipt } = await alicePhone.api.call(
      { method: 'POST', target: '/records/v1/patient/erase', json: { confirm: 'erase-everything' } },
      deletionResponseSchema,
    );
    const verified = verifyDeletionReceipt(
      fromBase64Url(receipt)!,
      await functionPublicKey(firestore, 'records'),
    );
    expect(verified).toMatchObject({
      reason: 'erasure',
      hospitalId: hospital.hospitalId,
      patientRef: alicePhone.patientRef,
      complete: true,
    });
    expect([...verified.deleted.records].sort()).toEqual([...aliceRecords].sort());
    expect([...verified.deleted.devices].sort()).toEqual([alicePhone.deviceId, aliceTablet.deviceId].sort());
    expect(verified.deleted.invitations).toContain(aliceInvitation);

    const afterText = await storedText(stack, firestore);
    for (const id of [
      alicePhone.patientRef,
      ...aliceRecords,
      alicePhone.deviceId,
      aliceTablet.deviceId,
      aliceInvitation,
    ]) {
      expect(afterText).not.toContain(id);
    }
    for (const id of [bob.patientRef, bobRecord, bob.deviceId]) expect(afterText).toContain(id);

    // Alice's still-valid signatures get her nothing; Bob's record still opens.
    expect((await refusal(alicePhone.api.raw({ method: 'GET', target: '/records/v1/records' }))).status).toBe(
      401,
    );
    expect(
      (await refusal(aliceTablet.api.raw({ method: 'GET', target: '/records/v1/records' }))).status,
    ).toBe(401);
    const content = await bob.api.raw({ method: 'GET', target: `/records/v1/records/${bobRecord}/content` });
    expect(content.status).toBe(200);
    await responseBytes(content);

    // The audit trail keeps the erasure (pseudonymous ids only), as NEN 7513 requires.
    const events = await storedAuditEvents(firestore, { patientRef: alicePhone.patientRef });
    const actions = events.map((fields) => fields.action);
    expect(actions).toContain('patient.erased');
    expect(actions.filter((a) => a === 'record.deleted')).toHaveLength(aliceRecords.length);
  });
});
