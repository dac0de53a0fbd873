// Threat I4 (docs/THREAT_MODEL.md): a protocol downgrade or an unknown version, end to end on
// the local stack. A genuine container whose version byte says 0 or 2, and a manifest re-signed
// with the hospital's own key but naming another manifest version, are rejected with a signed
// receipt and a stable code; nothing is filed and no device is pinged. The two version bytes
// only the device can see, the record chunk context's and the key-wrap payload's, are checked
// by the device: an upload signed by the hospital's key whose chunks are sealed under another
// context version, or whose wrapped key carries another key-wrap version, is accepted by ingest
// (which can open neither) and refused on the device with a stable code.
import { randomBytes } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../emulator/stack.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { responseBytes } from '../../clients/lib/api-client.ts';
import { KEY_WRAP_VERSION, RECORD_CELL_VERSION, type PublicKey } from '../../shared/core/crypto/index.ts';
import { isProtocolError, openRecord, uploadObjectName } from '../../shared/core/protocol/index.ts';
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
import {
  craftUpload,
  keyWrapPayload,
  plaintextPieces,
  sealChunk,
  wrapPayload,
  type ChunkMaker,
  type CraftOptions,
  type WrapMaker,
} from '../helpers/crafted-upload.ts';
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
    it(`I4 a container claiming version ${version} is rejected: UPLOAD_VERSION_UNSUPPORTED`, async () => {
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

  it("I4 a manifest of another version, signed with the hospital's real key, is rejected", async () => {
    const { upload, bytes } = await sealed();
    const rebuilt = withManifest(
      bytes,
      { ...upload.manifest, type: 'cb/upload-manifest/v0' },
      hospital.keys.privateKey,
    );
    await expectRejected(upload.manifest.uploadId, upload.manifest.recordId, rebuilt, 'MANIFEST_INVALID');
  });

  /**
   * Delivers a hand-built upload (manifest signed by the hospital's real key over exactly its
   * chunks, so the digest matches) and opens it on the device: the error code, or 'opened'.
   */
  async function deliverCraftedAndOpen(options: Pick<CraftOptions, 'chunks' | 'wrappedKey'>) {
    const file = new Uint8Array(randomBytes(100));
    const crafted = await craftUpload(hospital, {
      patientRef: device.patientRef,
      device,
      header: { filename: 'f.pdf', mediaType: 'application/pdf', size: file.length },
      file,
      chunkSize: 64,
      ...options,
    });
    await dropUpload(stack, crafted.objectName, crafted.bytes);
    const receipt = await waitForReceipt(stack, hospital.hospitalId, crafted.manifest.uploadId, ingestKey);
    expect(receipt).toMatchObject({ status: 'accepted' }); // ingest cannot see either version byte
    const recordId = crafted.manifest.recordId;
    try {
      const response = await device.api.raw({
        method: 'GET',
        target: `/records/v1/records/${recordId}/content`,
      });
      const opened = await openRecord(responseBytes(response), {
        device: device.keys,
        hospitalPublicKey: hospital.keys.publicKey,
        hospitalId: hospital.hospitalId,
        recordId,
      });
      expect(Buffer.from(await collectBytes(opened.file)).equals(Buffer.from(file))).toBe(true);
      return 'opened';
    } catch (error) {
      if (isProtocolError(error)) return error.code;
      throw error;
    }
  }

  it('I4 chunks sealed under another record-cell context version are refused on the device: CHUNK_INVALID', async () => {
    const sealedAs = (version: number) => (make: ChunkMaker) =>
      plaintextPieces(make).map((data, index, all) =>
        sealChunk(make.key, data, {
          recordId: make.recordId,
          index,
          last: index === all.length - 1,
          version,
        }),
      );
    // The same hand-sealed path with today's version opens: only the version byte differs below.
    expect(await deliverCraftedAndOpen({ chunks: sealedAs(RECORD_CELL_VERSION) })).toBe('opened');
    for (const version of [0, RECORD_CELL_VERSION + 1, 0xff]) {
      expect([version, await deliverCraftedAndOpen({ chunks: sealedAs(version) })]).toEqual([
        version,
        'CHUNK_INVALID',
      ]);
    }
  });

  it('I4 a wrapped key whose payload carries another key-wrap version is refused on the device: KEY_UNWRAP_FAILED', async () => {
    const wrappedAs = (version: number) => (make: WrapMaker) =>
      wrapPayload(make, keyWrapPayload(make, { version }));
    // The hand-built payload with today's version opens: only the version byte differs below.
    expect(await deliverCraftedAndOpen({ wrappedKey: wrappedAs(KEY_WRAP_VERSION) })).toBe('opened');
    for (const version of [0, KEY_WRAP_VERSION - 1, KEY_WRAP_VERSION + 1, 0xff]) {
      expect([version, await deliverCraftedAndOpen({ wrappedKey: wrappedAs(version) })]).toEqual([
        version,
        'KEY_UNWRAP_FAILED',
      ]);
    }
  });
});
