// The attacks on ingest and on the records API in the threat model (I2, I3, R1–R3), tried on the
// whole local stack, followed by the leak checks (L1, L2) over everything this file made the stack
// do: no log line, error body or push payload carries a secret, a token or the plaintext canary.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, createApiClient } from '../../clients/lib/api-client.ts';
import { startStack, type Stack } from '../../emulator/stack.ts';
import { createFcmNotifier, type FcmNotifier } from '../../shared/adapters/fcm-notifier.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { createFirestore, createStorage } from '../../shared/adapters/google-clients.ts';
import { cloudLogger } from '../../shared/adapters/cloud-logger.ts';
import { exportPrivateKey, type PublicKey } from '../../shared/core/crypto/index.ts';
import {
  deviceKeyId,
  framedCiphertextLength,
  newRandomId,
  recordListResponseSchema,
  revokeResponseSchema,
  signRequest,
  toBase64Url,
  uploadObjectName,
  type UploadManifest,
} from '../../shared/core/protocol/index.ts';
import {
  collectBytes,
  deliver,
  dropUpload,
  functionPublicKey,
  inviteTestPatient,
  pairTestDevice,
  pairWithInvitation,
  registerTestHospital,
  sealTestUpload,
  stackBlobStore,
  waitForReceipt,
  type TestDevice,
  type TestHospital,
} from '../helpers/delivery-fixture.ts';
import { textContainsCanary } from '../helpers/canary.ts';
import {
  chunkSectionAt,
  MANIFEST_LENGTH_OFFSET,
  withManifest,
  withUint32,
} from '../helpers/container-bytes.ts';
import { recordEvidence } from '../helpers/evidence.ts';
import { captureStdout, type StdoutCapture } from '../helpers/stdout-capture.ts';
import { stackIngestService } from '../helpers/stack-services.ts';

const CANARY = `CANARY-${randomBytes(12).toString('hex')}-PATIENT-LETTER`;
const encoder = new TextEncoder();

describe('attacks on delivery', () => {
  let dataDir: string;
  let stack: Stack;
  let firestore: Firestore;
  let hospital: TestHospital;
  let alice: TestDevice;
  let bob: TestDevice;
  let ingestKey: PublicKey;
  let stdout: StdoutCapture;
  /** Every secret this file holds: none may reach a log line, an error body or a push. */
  const secrets: string[] = [];
  /** The body of every refusal the stack answered. */
  const refusalBodies: string[] = [];

  beforeAll(async () => {
    stdout = captureStdout();
    dataDir = await mkdtemp(join(tmpdir(), 'cb-attacks-delivery-'));
    stack = await startStack({ dataDir, portBase: 0 });
    firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
    hospital = await registerTestHospital(firestore, stack, 'st-attacks-delivery');
    const invitation = await inviteTestPatient(hospital, 'patient-number-alice-9931');
    alice = await pairWithInvitation(stack, invitation);
    bob = await pairTestDevice(stack, hospital, 'patient-number-bob-4417');
    ingestKey = await functionPublicKey(firestore, 'ingest');
    secrets.push(
      invitation.token,
      toBase64Url(invitation.bindingSecret),
      ...hospital.secretBytes.map((bytes) => toBase64Url(bytes)),
      toBase64Url(exportPrivateKey(hospital.keys.privateKey)),
      toBase64Url(exportPrivateKey(alice.keys.privateKey)),
      toBase64Url(exportPrivateKey(bob.keys.privateKey)),
      'patient-number-alice-9931',
      'patient-number-bob-4417',
    );
  });

  afterAll(async () => {
    stdout?.restore();
    await firestore?.terminate();
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** A refused call: its status and code, its body kept for the leak check. */
  async function tried(threat: string, attack: string, promise: Promise<unknown>) {
    try {
      await promise;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      refusalBodies.push(`${error.code} ${error.message}`);
      recordEvidence({ kind: 'attack', threat, attack, outcome: `${error.status} ${error.code}` });
      return { status: error.status, code: error.code };
    }
    throw new Error(`${attack}: accepted`);
  }

  async function letter(recipients: TestDevice[], patient = recipients[0]!) {
    return deliver(stack, hospital, ingestKey, {
      patientRef: patient.patientRef,
      recipients,
      file: encoder.encode(`${CANARY} ${randomBytes(8).toString('hex')}`),
    });
  }

  /**
   * Seals an upload for alice, breaks its bytes with `mutate`, drops them under the upload's own
   * name and returns the code of the receipt; nothing may be filed.
   */
  async function rejectedAs(
    threat: string,
    attack: string,
    mutate: (bytes: Uint8Array, manifest: UploadManifest) => Uint8Array | Promise<Uint8Array>,
  ): Promise<string> {
    const { upload, bytes } = await sealedBytes(alice);
    const { uploadId, recordId } = upload.manifest;
    await dropUpload(
      stack,
      uploadObjectName(hospital.hospitalId, uploadId),
      await mutate(bytes, upload.manifest),
    );
    const receipt = await waitForReceipt(stack, hospital.hospitalId, uploadId, ingestKey);
    const outcome = receipt.status === 'rejected' ? receipt.errorCode : 'accepted';
    recordEvidence({ kind: 'attack', threat, attack, outcome: `rejection receipt ${outcome}` });
    expect((await firestore.collection(RECORDS_COLLECTION).doc(recordId).get()).exists).toBe(false);
    return outcome;
  }

  async function sealedBytes(patient: TestDevice, size = 3000) {
    const upload = await sealTestUpload(hospital, {
      patientRef: patient.patientRef,
      recipients: [patient],
      file: encoder.encode(`${CANARY} ${randomBytes(size).toString('hex')}`),
      chunkSize: 1024,
    });
    return { upload, bytes: await collectBytes(upload.bytes()) };
  }

  /** The same container with `manifest`, signed with the hospital's real key. */
  function resigned(bytes: Uint8Array, manifest: UploadManifest): Uint8Array {
    return withManifest(bytes, manifest, hospital.keys.privateKey);
  }

  /** The manifest, consistent in itself, claiming a file of `plaintextLength` bytes. */
  function claiming(manifest: UploadManifest, plaintextLength: number): UploadManifest {
    return {
      ...manifest,
      plaintextLength,
      chunkCount: Math.max(1, Math.ceil(plaintextLength / manifest.chunkSize)),
      ciphertextLength: framedCiphertextLength(plaintextLength, manifest.chunkSize),
    };
  }

  it('I2 oversized claims, truncation and trailing bytes are refused before anything is filed', async () => {
    const cases: [string, (bytes: Uint8Array, manifest: UploadManifest) => Uint8Array, string][] = [
      [
        'a header claiming a 4 GiB manifest',
        (bytes) => withUint32(bytes, MANIFEST_LENGTH_OFFSET, 0xfffffff0),
        'MANIFEST_TOO_LARGE',
      ],
      [
        'a signed manifest claiming 3 GiB of chunks',
        (bytes, manifest) => resigned(bytes, claiming(manifest, 3 * 1024 ** 3)),
        'UPLOAD_TOO_LARGE',
      ],
      [
        'a chunk frame claiming 4 GiB',
        (bytes) => withUint32(bytes, chunkSectionAt(bytes), 0xffffffff),
        'UPLOAD_MALFORMED',
      ],
      ['a container cut 7 bytes short', (bytes) => bytes.subarray(0, bytes.length - 7), 'UPLOAD_TRUNCATED'],
      [
        '4 KiB after the last chunk',
        (bytes) => new Uint8Array(Buffer.concat([bytes, randomBytes(4096)])),
        'UPLOAD_TRAILING_DATA',
      ],
    ];
    for (const [attack, mutate, code] of cases) expect(await rejectedAs('I2', attack, mutate)).toBe(code);
  });

  it('I2 an upload larger than the cap is refused by its size alone, not read, not kept', async () => {
    // The deployed function's cap is 2 GiB; the same service with a 64 KiB cap, over the same
    // emulators, shows the path without writing gigabytes.
    const uploadBucket = 'cb-attacks-oversize';
    await createStorage(stack.env.GCLOUD_PROJECT!, stack.env).createBucket(uploadBucket);
    const notifier: FcmNotifier = createFcmNotifier({
      projectId: stack.env.GCLOUD_PROJECT!,
      env: stack.env,
      collapseKey: 'records',
    });
    try {
      const blobs = stackBlobStore(stack);
      const { upload, bytes } = await sealedBytes(alice, 150_000);
      const dropped = await blobs.createOnly(
        uploadBucket,
        upload.objectName,
        (async function* () {
          yield bytes;
        })(),
      );
      const service = stackIngestService(stack, {
        firestore,
        notifier,
        uploadBucket,
        maxCiphertextLength: 64 * 1024,
      });
      const outcome = await service.handle(
        {
          bucket: uploadBucket,
          name: dropped.name,
          generation: dropped.generation,
          size: String(dropped.size),
        },
        cloudLogger({ functionName: 'ingest', sink: () => undefined }),
      );
      expect(outcome).toEqual({ status: 'rejected', code: 'UPLOAD_TOO_LARGE' });
      expect(await blobs.stat(uploadBucket, dropped.name)).toBeUndefined();
      expect(await blobs.stat(stack.env.QUARANTINE_BUCKET!, dropped.name)).toBeUndefined();
      const receipt = await waitForReceipt(stack, hospital.hospitalId, upload.manifest.uploadId, ingestKey);
      expect(receipt).toMatchObject({ status: 'rejected', errorCode: 'UPLOAD_TOO_LARGE' });
      recordEvidence({
        kind: 'attack',
        threat: 'I2',
        attack: `an upload of ${dropped.size} bytes against a 64 KiB cap`,
        outcome: 'rejection receipt UPLOAD_TOO_LARGE, upload deleted unread, no quarantine copy',
      });
    } finally {
      await notifier.close();
    }
  });

  it("I3 chunks that do not match their manifest are refused: another upload's chunks, a miscounted manifest", async () => {
    expect(
      await rejectedAs('I3', "another upload's chunks under a genuine manifest", async (bytes) => {
        const other = (await sealedBytes(alice)).bytes;
        expect(other.length - chunkSectionAt(other)).toBe(bytes.length - chunkSectionAt(bytes));
        return new Uint8Array(
          Buffer.concat([bytes.subarray(0, chunkSectionAt(bytes)), other.subarray(chunkSectionAt(other))]),
        );
      }),
    ).toBe('DIGEST_MISMATCH');
    expect(
      await rejectedAs('I3', 'a re-signed manifest counting one chunk more', (bytes, manifest) =>
        resigned(bytes, claiming(manifest, manifest.plaintextLength + manifest.chunkSize)),
      ),
    ).toBe('UPLOAD_TRUNCATED');
  });

  it("R1 another patient's record, a record without this device's key and an unknown id look the same", async () => {
    const { sealed: bobs } = await letter([bob]);
    const answers = [];
    for (const [attack, id] of [
      ["alice asks for bob's record", bobs.manifest.recordId],
      ['alice asks for an id that was never issued', newRandomId()],
    ] as const) {
      answers.push(
        await tried(
          'R1',
          attack,
          alice.api.raw({ method: 'GET', target: `/records/v1/records/${id}/content` }),
        ),
      );
      answers.push(
        await tried(
          'R1',
          `${attack} (ack)`,
          alice.api.raw({
            method: 'POST',
            target: `/records/v1/records/${id}/ack`,
            json: { outcome: 'stored' },
          }),
        ),
      );
    }
    expect(new Set(answers.map((answer) => `${answer.status} ${answer.code}`))).toEqual(
      new Set(['404 NOT_FOUND']),
    );
    expect(
      await tried(
        'R1',
        "alice revokes bob's device",
        alice.api.raw({ method: 'POST', target: `/records/v1/devices/${bob.deviceId}/revoke`, json: {} }),
      ),
    ).toEqual({ status: 404, code: 'NOT_FOUND' });
    const listed = await alice.api.call(
      { method: 'GET', target: '/records/v1/records' },
      recordListResponseSchema,
    );
    expect(listed.records.map((record) => record.recordId)).not.toContain(bobs.manifest.recordId);
  });

  it('R2 a revoked device is refused everywhere at once, with a signature that is still valid', async () => {
    const sibling = await pairTestDevice(stack, hospital, 'patient-number-alice-9931');
    await letter([alice, sibling]);
    await hospital.api.call(
      {
        method: 'POST',
        target: `/pairing/v1/devices/${sibling.deviceId}/revoke`,
        json: { operatorRef: hospital.operatorRef },
      },
      revokeResponseSchema,
    );
    const calls = [
      { method: 'GET', target: '/records/v1/records' },
      { method: 'GET', target: '/records/v1/devices' },
      { method: 'GET', target: '/records/v1/access-log' },
      { method: 'POST', target: '/records/v1/patient/erase', json: { confirm: 'erase-everything' } },
      {
        method: 'PUT',
        target: '/records/v1/devices/self/push-token',
        json: { fcmToken: 'fcm-stolen-phone' },
      },
      { method: 'POST', target: `/records/v1/devices/${alice.deviceId}/revoke`, json: {} },
    ] as const;
    for (const call of calls) {
      expect(
        await tried(
          'R2',
          `revoked device: ${call.method} ${call.target.replace(alice.deviceId, '{id}')}`,
          sibling.api.raw(call),
        ),
      ).toEqual({
        status: 403,
        code: 'DEVICE_REVOKED',
      });
    }
    // Nothing the revoked device asked for happened: alice's records and device are intact.
    const listed = await alice.api.call(
      { method: 'GET', target: '/records/v1/records' },
      recordListResponseSchema,
    );
    expect(listed.records.length).toBeGreaterThan(0);
  });

  it('R3 a replayed request and a clock outside ±300 s are refused; inside the window is accepted', async () => {
    const signer = { keyId: deviceKeyId(alice.deviceId), privateKey: alice.keys.privateKey };
    const target = '/records/v1/records';
    const headers = signRequest({
      audience: stack.env.FUNCTIONS_BASE_URL!,
      method: 'GET',
      target,
      body: new Uint8Array(0),
      ...signer,
      now: new Date(),
    });
    const send = () => fetch(`${stack.env.FUNCTIONS_BASE_URL}${target}`, { headers });
    expect((await send()).status).toBe(200);
    const replayed = await send();
    const replayBody = (await replayed.json()) as { error: { code: string } };
    refusalBodies.push(JSON.stringify(replayBody));
    recordEvidence({
      kind: 'attack',
      threat: 'R3',
      attack: 'the same signed request twice',
      outcome: `${replayed.status} ${replayBody.error.code}`,
    });
    expect([replayed.status, replayBody.error.code]).toEqual([401, 'REQUEST_REPLAYED']);
    for (const skew of [-305, 305, -3600, 86_400]) {
      const skewed = createApiClient({
        apiBase: stack.env.FUNCTIONS_BASE_URL!,
        signer,
        now: () => new Date(Date.now() + skew * 1000),
      });
      expect(await tried('R3', `a clock ${skew} s off`, skewed.raw({ method: 'GET', target }))).toEqual({
        status: 401,
        code: 'REQUEST_EXPIRED',
      });
    }
    for (const skew of [-240, 240]) {
      const skewed = createApiClient({
        apiBase: stack.env.FUNCTIONS_BASE_URL!,
        signer,
        now: () => new Date(Date.now() + skew * 1000),
      });
      expect((await skewed.raw({ method: 'GET', target })).status).toBe(200);
    }
  });

  it('L1 L2 no log line, error body or push payload carries a secret, a patient number or the canary', async () => {
    const logs = stdout.lines.join('');
    expect(stdout.lines.length).toBeGreaterThan(20); // the stack did log, and the scan reads it
    expect(refusalBodies.length).toBeGreaterThan(10);
    const response = await fetch(`${stack.env.FCM_EMULATOR_URL}/_recorder/messages?limit=1000`);
    const { messages } = (await response.json()) as {
      messages: { data: Record<string, string>; message: Record<string, unknown> }[];
    };
    expect(messages.length).toBeGreaterThan(0);
    for (const message of messages) {
      // Data-only and opaque: no notification block, nothing but the hint.
      expect(Object.keys(message.data).sort()).toEqual(['cb', 'hint']);
      expect(message.message.notification).toBeUndefined();
    }
    const pushes = JSON.stringify(messages.map((message) => message.data));
    const errors = refusalBodies.join('\n');
    for (const [where, text] of [
      ['logs', logs],
      ['error bodies', errors],
      ['push payloads', pushes],
    ] as const) {
      expect(textContainsCanary(text, CANARY), `canary in ${where}`).toBe(false);
      for (const secret of secrets) expect(text.includes(secret), `a secret in ${where}`).toBe(false);
      // Not even the pseudonymous patient ref: it is no log field (shared/ports/logger.ts).
      expect(text.includes(alice.patientRef), `a patient ref in ${where}`).toBe(false);
      recordEvidence({
        kind: 'attack',
        threat: where === 'push payloads' ? 'L2' : 'L1',
        attack: `scan ${where} (${text.length} characters) for the canary, ${secrets.length} secrets, patient numbers and refs`,
        outcome: 'none found',
      });
    }
  });
});
