// The ingest function on the whole local stack: an upload dropped into the ingest bucket is
// filed (record, blob, receipt, push, upload gone) or rejected (quarantined, signed rejection
// receipt with a stable code, nothing filed), and a finalize event delivered again — after the
// first or at the same time — still gives one record and one receipt (invariants 2, 5, 6).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../emulator/stack.ts';
import { PAIRING_COLLECTIONS } from '../../shared/adapters/firestore-pairing.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { createFirestore, createStorage } from '../../shared/adapters/google-clients.ts';
import { type PublicKey } from '../../shared/core/crypto/index.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import {
  newRandomId,
  recordObjectName,
  revokeResponseSchema,
  uploadObjectName,
  type SealedUpload,
} from '../../shared/core/protocol/index.ts';
import {
  collectBytes,
  deliver,
  dropUpload,
  functionPublicKey,
  pairTestDevice,
  registerTestHospital,
  sealTestUpload,
  stackBlobStore,
  waitForReceipt,
  type TestDevice,
  type TestHospital,
  waitUntilGone,
} from '../helpers/delivery-fixture.ts';

const DAY_MS = 24 * 3600 * 1000;

describe('ingest function', () => {
  let dataDir: string;
  let stack: Stack;
  let firestore: Firestore;
  let blobs: BlobStore;
  let hospital: TestHospital;
  let otherHospital: TestHospital;
  let device: TestDevice;
  let otherPatientDevice: TestDevice;
  let ingestKey: PublicKey;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cb-ingest-'));
    stack = await startStack({ dataDir, portBase: 0 });
    firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
    blobs = stackBlobStore(stack);
    hospital = await registerTestHospital(firestore, stack, 'ingest-hospital');
    otherHospital = await registerTestHospital(firestore, stack, 'other-hospital');
    device = await pairTestDevice(stack, hospital, 'patient-1');
    otherPatientDevice = await pairTestDevice(stack, otherHospital, 'patient-of-other');
    ingestKey = await functionPublicKey(firestore, 'ingest');
  });

  afterAll(async () => {
    await firestore?.terminate();
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const file = () => new Uint8Array(randomBytes(5000));

  async function objectNames(bucket: string, prefix = 'hospitals/'): Promise<string[]> {
    return (await blobs.list(bucket, prefix)).items.map((item) => item.name);
  }

  async function pushesTo(token: string): Promise<{ data: Record<string, string> }[]> {
    const response = await fetch(
      `${stack.env.FCM_EMULATOR_URL}/_recorder/messages?token=${encodeURIComponent(token)}`,
    );
    const body = (await response.json()) as { messages: { message: { data: Record<string, string> } }[] };
    return body.messages.map((entry) => ({ data: entry.message.data }));
  }

  /** Drops bytes at an upload name and expects a rejection with `code`, leaving nothing filed. */
  async function expectRejected(
    sealed: SealedUpload,
    bytes: Uint8Array,
    code: string | RegExp,
    hospitalId = sealed.manifest.hospitalId,
  ) {
    const name = uploadObjectName(hospitalId, sealed.manifest.uploadId);
    await dropUpload(stack, name, bytes);
    const receipt = await waitForReceipt(stack, hospitalId, sealed.manifest.uploadId, ingestKey);
    expect(receipt.status).toBe('rejected');
    expect(receipt.status === 'rejected' && receipt.errorCode).toMatch(code);
    expect(await waitUntilGone(stack, stack.env.INGEST_BUCKET!, name)).toBe(true);
    const quarantined = await blobs.stat(stack.env.QUARANTINE_BUCKET!, name);
    expect(quarantined?.size).toBe(bytes.length);
    const [quarantineMeta] = await createStorage(stack.env.GCLOUD_PROJECT!, stack.env)
      .bucket(stack.env.QUARANTINE_BUCKET!)
      .file(name)
      .getMetadata();
    expect(Date.parse(quarantineMeta.customTime!)).toBeGreaterThan(Date.now() + 20 * DAY_MS);
    const recordDoc = await firestore.collection(RECORDS_COLLECTION).doc(sealed.manifest.recordId).get();
    expect(recordDoc.exists).toBe(false);
    expect(
      await blobs.stat(stack.env.RECORDS_BUCKET!, recordObjectName(hospitalId, sealed.manifest.recordId)),
    ).toBeUndefined();
    return receipt;
  }

  it('files a good upload: record, identical blob, signed receipt, one push, upload gone', async () => {
    const { sealed, receipt } = await deliver(stack, hospital, ingestKey, {
      patientRef: device.patientRef,
      recipients: [device],
      file: file(),
    });
    const { recordId, uploadId } = sealed.manifest;
    expect(receipt).toMatchObject({
      status: 'accepted',
      recordId,
      uploadId,
      hospitalId: hospital.hospitalId,
    });
    const record = (await firestore.collection(RECORDS_COLLECTION).doc(recordId).get()).data()!;
    expect(record).toMatchObject({
      uploadId,
      hospitalId: hospital.hospitalId,
      patientRef: device.patientRef,
      contentClass: 'document',
      recipients: [device.deviceId],
      objectName: recordObjectName(hospital.hospitalId, recordId),
      size: sealed.size,
    });
    const stored = await collectBytes(blobs.read(stack.env.RECORDS_BUCKET!, record.objectName as string));
    expect(Buffer.from(stored).equals(Buffer.from(await collectBytes(sealed.bytes())))).toBe(true);
    expect(await blobs.stat(stack.env.INGEST_BUCKET!, sealed.objectName)).toBeUndefined();
    expect(await pushesTo(device.fcmToken)).toEqual([{ data: { cb: '1', hint: 'records' } }]);
    // Every object carries its expiry for the buckets' lifecycle backstop.
    const storage = createStorage(stack.env.GCLOUD_PROJECT!, stack.env);
    const [recordMeta] = await storage
      .bucket(stack.env.RECORDS_BUCKET!)
      .file(record.objectName as string)
      .getMetadata();
    expect(recordMeta.customTime && new Date(recordMeta.customTime).toISOString()).toBe(
      new Date(sealed.manifest.expiresAt).toISOString(),
    );
    const [receiptMeta] = await storage
      .bucket(stack.env.OUTBOX_BUCKET!)
      .file(`hospitals/${hospital.hospitalId}/receipts/${uploadId}.cbreceipt`)
      .getMetadata();
    expect(Date.parse(receiptMeta.customTime!)).toBeGreaterThan(Date.now() + 80 * DAY_MS);
  });

  it('forgets a push token FCM reports dead, and still files the record', async () => {
    const phone = await pairTestDevice(stack, hospital, 'patient-dead-token');
    await fetch(
      `${stack.env.FCM_EMULATOR_URL}/_recorder/tokens/${encodeURIComponent(phone.fcmToken)}:unregister`,
      {
        method: 'POST',
      },
    );
    const { receipt, sealed } = await deliver(stack, hospital, ingestKey, {
      patientRef: phone.patientRef,
      recipients: [phone],
      file: file(),
    });
    expect(receipt.status).toBe('accepted');
    // The push (which forgets the dead token) runs after the receipt; the upload goes after it.
    expect(await waitUntilGone(stack, stack.env.INGEST_BUCKET!, sealed.objectName)).toBe(true);
    const stored = await firestore.collection(PAIRING_COLLECTIONS.devices).doc(phone.deviceId).get();
    expect(stored.get('fcmToken')).toBe('');
  });

  it('rejects a flipped byte in a chunk with DIGEST_MISMATCH', async () => {
    const sealed = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients: [device],
      file: file(),
    });
    const bytes = await collectBytes(sealed.bytes());
    bytes[bytes.length - 100]! ^= 0x40;
    await expectRejected(sealed, bytes, 'DIGEST_MISMATCH');
  });

  it('rejects a flipped byte in the signed manifest message', async () => {
    const sealed = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients: [device],
      file: file(),
    });
    const bytes = await collectBytes(sealed.bytes());
    const at = 9 + 12 + sealed.signedManifest.length - 12 - 80; // inside the message, before the signature
    bytes[at]! ^= 0x01;
    await expectRejected(sealed, bytes, /^MANIFEST_(SIGNATURE_)?INVALID$/);
  });

  it('rejects truncated, extended and garbage objects', async () => {
    const truncated = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients: [device],
      file: file(),
    });
    const whole = await collectBytes(truncated.bytes());
    await expectRejected(truncated, whole.subarray(0, whole.length - 7), 'UPLOAD_TRUNCATED');
    const extended = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients: [device],
      file: file(),
    });
    await expectRejected(
      extended,
      new Uint8Array(Buffer.concat([await collectBytes(extended.bytes()), Buffer.from('extra')])),
      'UPLOAD_TRAILING_DATA',
    );
    const garbage = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients: [device],
      file: file(),
    });
    await expectRejected(garbage, new Uint8Array(randomBytes(300)), 'UPLOAD_MALFORMED');
  });

  it('rejects an upload under another hospital’s prefix, from an unknown hospital, and a non-upload name', async () => {
    const misplaced = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients: [device],
      file: file(),
    });
    await expectRejected(
      misplaced,
      await collectBytes(misplaced.bytes()),
      'MANIFEST_SIGNATURE_INVALID',
      otherHospital.hospitalId,
    );

    const stranger = { ...hospital, hospitalId: 'never-registered' };
    const unknown = await sealTestUpload(stranger, {
      patientRef: device.patientRef,
      recipients: [device],
      file: file(),
    });
    await expectRejected(unknown, await collectBytes(unknown.bytes()), 'UNKNOWN_HOSPITAL');

    // Not an upload name: no upload id, so no receipt; quarantined and removed.
    const stray = `hospitals/${hospital.hospitalId}/uploads/../notes.txt`;
    await dropUpload(stack, stray, new Uint8Array(randomBytes(64)));
    expect(await waitUntilGone(stack, stack.env.INGEST_BUCKET!, stray)).toBe(true);
    expect((await blobs.stat(stack.env.QUARANTINE_BUCKET!, stray))?.size).toBe(64);
  });

  it('keeps hospitals apart: X cannot deliver to a patient it never invited', async () => {
    const sealed = await sealTestUpload(hospital, {
      patientRef: otherPatientDevice.patientRef,
      recipients: [otherPatientDevice],
      file: file(),
    });
    await expectRejected(sealed, await collectBytes(sealed.bytes()), 'UNKNOWN_PATIENT');
    // Naming its own patient but another hospital's device as recipient.
    const smuggled = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients: [device, otherPatientDevice],
      file: file(),
    });
    await expectRejected(smuggled, await collectBytes(smuggled.bytes()), 'UNKNOWN_DEVICE');
  });

  it('rejects a revoked recipient and an expired manifest', async () => {
    const doomed = await pairTestDevice(stack, hospital, 'patient-2');
    const sibling = await pairTestDevice(stack, hospital, 'patient-2');
    await hospital.api.call(
      {
        method: 'POST',
        target: `/pairing/v1/devices/${doomed.deviceId}/revoke`,
        json: { operatorRef: hospital.operatorRef },
      },
      revokeResponseSchema,
    );
    const revoked = await sealTestUpload(hospital, {
      patientRef: doomed.patientRef,
      recipients: [sibling, doomed],
      file: file(),
    });
    await expectRejected(revoked, await collectBytes(revoked.bytes()), 'DEVICE_REVOKED');

    const expired = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients: [device],
      file: file(),
      createdAt: new Date(Date.now() - 10 * DAY_MS),
      expiresAt: new Date(Date.now() - DAY_MS),
    });
    await expectRejected(expired, await collectBytes(expired.bytes()), 'UPLOAD_EXPIRED');
  });

  it('refuses a second upload reusing a record id, leaving the first record untouched', async () => {
    const { sealed: first } = await deliver(stack, hospital, ingestKey, {
      patientRef: device.patientRef,
      recipients: [device],
      file: file(),
    });
    const recordId = first.manifest.recordId;
    const before = (await firestore.collection(RECORDS_COLLECTION).doc(recordId).get()).data();
    const blobBefore = await blobs.stat(
      stack.env.RECORDS_BUCKET!,
      recordObjectName(hospital.hospitalId, recordId),
    );
    const second = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients: [device],
      file: file(),
      recordId,
    });
    const name = second.objectName;
    await dropUpload(stack, name, await collectBytes(second.bytes()));
    const receipt = await waitForReceipt(stack, hospital.hospitalId, second.manifest.uploadId, ingestKey);
    expect(receipt).toMatchObject({ status: 'rejected', errorCode: 'RECORD_EXISTS' });
    expect((await firestore.collection(RECORDS_COLLECTION).doc(recordId).get()).data()).toEqual(before);
    expect(
      await blobs.stat(stack.env.RECORDS_BUCKET!, recordObjectName(hospital.hospitalId, recordId)),
    ).toEqual(blobBefore);
  });

  it('a finalize event delivered again, later or at once, gives one record and one receipt', async () => {
    // Filed once by the trigger, then its event re-sent by hand.
    const sealed = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients: [device],
      file: file(),
    });
    const bytes = await collectBytes(sealed.bytes());
    await dropUpload(stack, sealed.objectName, bytes);
    const receipt = await waitForReceipt(stack, hospital.hospitalId, sealed.manifest.uploadId, ingestKey);
    expect(receipt.status).toBe('accepted');
    const info = {
      name: sealed.objectName,
      bucket: stack.env.INGEST_BUCKET!,
      generation: '1',
      size: String(bytes.length),
    };

    const send = (id: string, data: Record<string, string>) =>
      fetch(`${stack.env.FUNCTIONS_BASE_URL}/ingest`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'ce-specversion': '1.0',
          'ce-type': 'google.cloud.storage.object.v1.finalized',
          'ce-source': `//storage.googleapis.com/projects/_/buckets/${data.bucket}`,
          'ce-subject': `objects/${data.name}`,
          'ce-id': id,
          'ce-time': new Date().toISOString(),
        },
        body: JSON.stringify(data),
      });
    // Later: the upload is gone, so the repeat is acknowledged and changes nothing.
    expect((await send(newRandomId(), info)).status).toBeLessThan(300);

    // At once: two deliveries of one new upload's event race each other.
    const racer = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients: [device],
      file: file(),
    });
    const racerBytes = await collectBytes(racer.bytes());
    await dropUpload(stack, racer.objectName, racerBytes);
    const uploaded = await blobs.stat(stack.env.INGEST_BUCKET!, racer.objectName);
    const event = {
      name: racer.objectName,
      bucket: stack.env.INGEST_BUCKET!,
      generation: uploaded?.generation ?? '0',
      size: String(racerBytes.length),
    };
    const statuses = await Promise.all([send('race-1', event), send('race-2', event)]);
    for (const response of statuses) expect(response.status).toBeLessThan(300);
    await waitForReceipt(stack, hospital.hospitalId, racer.manifest.uploadId, ingestKey);

    for (const upload of [sealed, racer]) {
      const records = await firestore
        .collection(RECORDS_COLLECTION)
        .where('uploadId', '==', upload.manifest.uploadId)
        .get();
      expect(records.size).toBe(1);
      const receipts = await objectNames(
        stack.env.OUTBOX_BUCKET!,
        `hospitals/${hospital.hospitalId}/receipts/${upload.manifest.uploadId}`,
      );
      expect(receipts).toHaveLength(1);
      const blobsFiled = await objectNames(
        stack.env.RECORDS_BUCKET!,
        recordObjectName(hospital.hospitalId, upload.manifest.recordId),
      );
      expect(blobsFiled).toHaveLength(1);
    }
  });

  it('acknowledges a malformed event without touching anything', async () => {
    const before = await objectNames(stack.env.OUTBOX_BUCKET!);
    const response = await fetch(`${stack.env.FUNCTIONS_BASE_URL}/ingest`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-type': 'google.cloud.storage.object.v1.finalized',
        'ce-source': '//storage.googleapis.com/projects/_/buckets/x',
        'ce-id': 'malformed-1',
      },
      body: JSON.stringify({ bucket: 12, name: ['x'] }),
    });
    expect(response.status).toBeLessThan(300);
    expect(await objectNames(stack.env.OUTBOX_BUCKET!)).toEqual(before);
  });
});
