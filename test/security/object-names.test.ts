// Threat I1 (docs/THREAT_MODEL.md): path tricks in upload object names. A genuine, correctly
// sealed container is dropped under names that only look like its upload name — dot segments,
// percent-encoding, unicode look-alikes, a fullwidth solidus, another case, a trailing slash — on
// the whole local stack. Ingest must go by the name's exact grammar: nothing is filed, no device
// is pinged, no acceptance receipt appears, and the object leaves the ingest bucket for quarantine.
import { randomBytes } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../emulator/stack.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import { receiptObjectName } from '../../shared/core/protocol/index.ts';
import {
  collectBytes,
  dropUpload,
  pairTestDevice,
  pushCount,
  registerTestHospital,
  sealTestUpload,
  stackBlobStore,
  type TestDevice,
  type TestHospital,
  waitUntilGone,
} from '../helpers/delivery-fixture.ts';
import { useLocalStack } from '../helpers/local-stack.ts';

describe('I1 path tricks in upload object names', () => {
  const local = useLocalStack('names');
  let stack: Stack;
  let firestore: Firestore;
  let blobs: BlobStore;
  let hospital: TestHospital;
  let device: TestDevice;

  beforeAll(async () => {
    ({ stack, firestore } = local);
    blobs = stackBlobStore(stack);
    hospital = await registerTestHospital(firestore, stack, 'st-names-zh');
    device = await pairTestDevice(stack, hospital, 'names-patient');
  });

  const tricks: [string, (hospitalId: string, uploadId: string) => string][] = [
    ['dot segments', (h, u) => `hospitals/${h}/uploads/../uploads/${u}.cbr`],
    ['a dot segment in front', (h, u) => `hospitals/${h}/./uploads/${u}.cbr`],
    ['percent-encoded dots', (h, u) => `hospitals/${h}/uploads/%2e%2e/${u}.cbr`],
    ['a Cyrillic look-alike in "hospitals"', (h, u) => `h\u043Espitals/${h}/uploads/${u}.cbr`],
    ['look-alikes in the hospital id', (h, u) => `hospitals/${h.replace('e', '\u0435')}/uploads/${u}.cbr`],
    ['a fullwidth solidus', (h, u) => `hospitals\uFF0F${h}/uploads/${u}.cbr`],
    ['another case', (h, u) => `Hospitals/${h.toUpperCase()}/uploads/${u}.cbr`],
    ['a trailing slash', (h, u) => `hospitals/${h}/uploads/${u}.cbr/`],
    ['a doubled slash', (h, u) => `hospitals//${h}/uploads/${u}.cbr`],
  ];

  for (const [what, nameOf] of tricks) {
    it(`${what}: nothing filed, nobody pinged, quarantined`, async () => {
      const sealed = await sealTestUpload(hospital, {
        patientRef: device.patientRef,
        recipients: [device],
        file: new Uint8Array(randomBytes(3000)),
      });
      const name = nameOf(hospital.hospitalId, sealed.manifest.uploadId);
      const pushesBefore = await pushCount(stack, device.fcmToken);
      await dropUpload(stack, name, await collectBytes(sealed.bytes()));
      expect(await waitUntilGone(stack, stack.env.INGEST_BUCKET!, name)).toBe(true);
      expect(await blobs.stat(stack.env.QUARANTINE_BUCKET!, name)).toBeDefined();
      expect(
        (await firestore.collection(RECORDS_COLLECTION).doc(sealed.manifest.recordId).get()).exists,
      ).toBe(false);
      const receipt = await blobs.stat(
        stack.env.OUTBOX_BUCKET!,
        receiptObjectName(hospital.hospitalId, sealed.manifest.uploadId),
      );
      expect(receipt).toBeUndefined(); // no name to receipt under: the hospital's own upload name was never used
      expect(await pushCount(stack, device.fcmToken)).toBe(pushesBefore);
    });
  }

  it('the genuine name, for contrast, files the same kind of container', async () => {
    const sealed = await sealTestUpload(hospital, {
      patientRef: device.patientRef,
      recipients: [device],
      file: new Uint8Array(randomBytes(3000)),
    });
    await dropUpload(stack, sealed.objectName, await collectBytes(sealed.bytes()));
    let filed = false;
    for (let i = 0; i < 150 && !filed; i++) {
      filed = (await firestore.collection(RECORDS_COLLECTION).doc(sealed.manifest.recordId).get()).exists;
      if (!filed) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(filed).toBe(true);
  });
});
