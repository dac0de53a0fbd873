// Threat I4 (docs/THREAT_MODEL.md): a protocol downgrade or an unknown version, end to end on
// the local stack. A genuine container whose version byte says 0 or 2, and a manifest re-signed
// with the hospital's own key but naming another manifest version, are rejected with a signed
// receipt and a stable code; nothing is filed and no device is pinged.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../emulator/stack.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { loadThemis, type PublicKey } from '../../shared/crypto/index.ts';
import { uploadObjectName } from '../../shared/protocol/index.ts';
import {
  collectBytes,
  dropUpload,
  functionPublicKey,
  pairTestDevice,
  registerTestHospital,
  sealTestUpload,
  waitForReceipt,
  type TestDevice,
  type TestHospital,
} from '../helpers/delivery-fixture.ts';
import { VERSION_OFFSET, withManifest } from '../helpers/container-bytes.ts';

describe('I4 protocol downgrade and unknown versions', () => {
  let dataDir: string;
  let stack: Stack;
  let firestore: Firestore;
  let hospital: TestHospital;
  let device: TestDevice;
  let ingestKey: PublicKey;

  beforeAll(async () => {
    await loadThemis();
    dataDir = await mkdtemp(join(tmpdir(), 'cb-downgrade-'));
    stack = await startStack({ dataDir, portBase: 0 });
    firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
    hospital = await registerTestHospital(firestore, stack, 'st-downgrade-zh');
    device = await pairTestDevice(stack, hospital, 'downgrade-patient');
    ingestKey = await functionPublicKey(firestore, 'ingest');
  });

  afterAll(async () => {
    await firestore?.terminate();
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function sealed() {
    const upload = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients: [device],
      file: new Uint8Array(randomBytes(2000)),
    });
    return { upload, bytes: await collectBytes(upload.bytes()) };
  }

  async function expectRejected(uploadId: string, recordId: string, bytes: Uint8Array, code: string) {
    await dropUpload(stack, uploadObjectName(hospital.hospitalId, uploadId), bytes);
    const receipt = await waitForReceipt(stack, hospital.hospitalId, uploadId, ingestKey);
    expect(receipt).toMatchObject({ status: 'rejected', errorCode: code });
    expect((await firestore.collection(RECORDS_COLLECTION).doc(recordId).get()).exists).toBe(false);
  }

  for (const version of [0, 2]) {
    it(`a container claiming version ${version} is rejected: UPLOAD_VERSION_UNSUPPORTED`, async () => {
      const { upload, bytes } = await sealed();
      expect(bytes[VERSION_OFFSET]).toBe(1);
      bytes[VERSION_OFFSET] = version;
      await expectRejected(
        upload.manifest.uploadId,
        upload.manifest.recordId,
        bytes,
        'UPLOAD_VERSION_UNSUPPORTED',
      );
    });
  }

  it("a manifest of another version, signed with the hospital's real key, is rejected", async () => {
    const { upload, bytes } = await sealed();
    const rebuilt = withManifest(
      bytes,
      { ...upload.manifest, type: 'cb/upload-manifest/v0' },
      hospital.keys.privateKey,
    );
    await expectRejected(upload.manifest.uploadId, upload.manifest.recordId, rebuilt, 'MANIFEST_INVALID');
  });
});
