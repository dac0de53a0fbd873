// Threat I4 (docs/THREAT_MODEL.md): a protocol downgrade or an unknown version, end to end on
// the local stack. A genuine container whose version byte says 0 or 2, and a manifest re-signed
// with the hospital's own key but naming another manifest version, are rejected with a signed
// receipt and a stable code; nothing is filed and no device is pinged.
import { randomBytes } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../emulator/stack.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { type PublicKey } from '../../shared/core/crypto/index.ts';
import { uploadObjectName } from '../../shared/core/protocol/index.ts';
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
import { useLocalStack } from '../helpers/local-stack.ts';

describe('I4 protocol downgrade and unknown versions', () => {
  const local = useLocalStack('downgrade');
  let stack: Stack;
  let firestore: Firestore;
  let hospital: TestHospital;
  let device: TestDevice;
  let ingestKey: PublicKey;

  beforeAll(async () => {
    ({ stack, firestore } = local);
    hospital = await registerTestHospital(firestore, stack, 'st-downgrade-zh');
    device = await pairTestDevice(stack, hospital, 'downgrade-patient');
    ingestKey = await functionPublicKey(firestore, 'ingest');
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
