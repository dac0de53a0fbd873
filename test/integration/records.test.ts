// The records function on the whole local stack, with records delivered through the real
// ingest function: listing with paging, download and decryption on the device, acknowledgement,
// the patient's devices and revocation, push-token rotation — and every way a request can be
// wrong: another patient's record, a device that is not a recipient, revoked, replayed, stale,
// unsigned, tampered or hospital-signed requests (invariants 1, 6, 8).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { responseBytes, type ApiCall } from '../../clients/lib/api-client.ts';
import { startStack, type Stack } from '../../emulator/stack.ts';
import { PAIRING_COLLECTIONS } from '../../shared/adapters/firestore-pairing.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { type PublicKey } from '../../shared/core/crypto/index.ts';
import {
  ackResponseSchema,
  deviceKeyId,
  deviceListResponseSchema,
  errorBodySchema,
  hospitalKeyId,
  newRandomId,
  openRecord,
  recordListResponseSchema,
  revokeResponseSchema,
  signRequest,
} from '../../shared/core/protocol/index.ts';
import {
  collectBytes,
  deliver,
  functionPublicKey,
  pairTestDevice,
  registerTestHospital,
  type TestDevice,
  type TestHospital,
} from '../helpers/delivery-fixture.ts';
import { refusal } from '../helpers/refusal.ts';

describe('records function', () => {
  let dataDir: string;
  let stack: Stack;
  let firestore: Firestore;
  let hospital: TestHospital;
  let ingestKey: PublicKey;
  let alice: TestDevice;
  let aliceTablet: TestDevice;
  let bob: TestDevice;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cb-records-'));
    stack = await startStack({ dataDir, portBase: 0 });
    firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
    hospital = await registerTestHospital(firestore, stack, 'records-hospital');
    ingestKey = await functionPublicKey(firestore, 'ingest');
    alice = await pairTestDevice(stack, hospital, 'alice');
    aliceTablet = await pairTestDevice(stack, hospital, 'alice');
    bob = await pairTestDevice(stack, hospital, 'bob');
  });

  afterAll(async () => {
    await firestore?.terminate();
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function send(to: TestDevice[], file = new Uint8Array(randomBytes(3000)), chunkSize?: number) {
    const { sealed, receipt } = await deliver(stack, hospital, ingestKey, {
      patientRef: to[0]!.patientRef,
      recipients: to,
      file,
      ...(chunkSize ? { chunkSize } : {}),
    });
    expect(receipt.status).toBe('accepted');
    return { recordId: sealed.manifest.recordId, file };
  }

  async function download(device: TestDevice, recordId: string): Promise<Uint8Array> {
    const response = await device.api.raw({
      method: 'GET',
      target: `/records/v1/records/${recordId}/content`,
    });
    expect(response.headers.get('content-type')).toBe('application/vnd.clinic-bridge.record');
    const opened = await openRecord(responseBytes(response), {
      device: device.keys,
      hospitalPublicKey: hospital.keys.publicKey,
      hospitalId: hospital.hospitalId,
      recordId,
    });
    return collectBytes(opened.file);
  }

  const list = (device: TestDevice, query = '') =>
    device.api.call({ method: 'GET', target: `/records/v1/records${query}` }, recordListResponseSchema);

  /** Sends a request with exactly these headers, bypassing the client's signing. */
  async function rawCall(call: ApiCall, headers: Record<string, string>) {
    const body = call.json === undefined ? undefined : JSON.stringify(call.json);
    const response = await fetch(`${stack.env.FUNCTIONS_BASE_URL}${call.target}`, {
      method: call.method,
      headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body ? { body } : {}),
    });
    const text = await response.text();
    return {
      status: response.status,
      code: errorBodySchema.safeParse(JSON.parse(text || '{}')).data?.error.code,
    };
  }

  function signedBy(device: TestDevice, call: ApiCall, now = new Date()) {
    return signRequest({
      audience: stack.env.FUNCTIONS_BASE_URL!,
      method: call.method,
      target: call.target,
      body: new TextEncoder().encode(call.json === undefined ? '' : JSON.stringify(call.json)),
      keyId: deviceKeyId(device.deviceId),
      privateKey: device.keys.privateKey,
      now,
    });
  }

  it('lists, downloads and decrypts a multi-chunk record, and records the acknowledgement', async () => {
    const { recordId, file } = await send([alice, aliceTablet], new Uint8Array(randomBytes(10_000)), 1024);
    const listed = await list(alice);
    expect(listed.records.map((r) => r.recordId)).toContain(recordId);
    const summary = listed.records.find((r) => r.recordId === recordId)!;
    expect(summary).toMatchObject({ hospitalId: hospital.hospitalId, contentClass: 'document' });
    expect(summary.acknowledgedAt).toBeUndefined();
    expect(Buffer.from(await download(alice, recordId)).equals(Buffer.from(file))).toBe(true);
    expect(Buffer.from(await download(aliceTablet, recordId)).equals(Buffer.from(file))).toBe(true);

    const ack = await alice.api.call(
      { method: 'POST', target: `/records/v1/records/${recordId}/ack`, json: { outcome: 'stored' } },
      ackResponseSchema,
    );
    const after = (await list(alice)).records.find((r) => r.recordId === recordId)!;
    expect(after.acknowledgedAt).toBe(ack.acknowledgedAt);
    // Acknowledgements are per device.
    expect(
      (await list(aliceTablet)).records.find((r) => r.recordId === recordId)!.acknowledgedAt,
    ).toBeUndefined();
    // A 'stored' acknowledgement is final.
    await alice.api.call(
      {
        method: 'POST',
        target: `/records/v1/records/${recordId}/ack`,
        json: { outcome: 'failed', errorCode: 'CHUNK_INVALID' },
      },
      ackResponseSchema,
    );
    expect((await list(alice)).records.find((r) => r.recordId === recordId)!.acknowledgedAt).toBe(
      ack.acknowledgedAt,
    );
  });

  it('pages through every record exactly once', async () => {
    const carol = await pairTestDevice(stack, hospital, 'carol');
    const sent: string[] = [];
    for (let i = 0; i < 7; i++) sent.push((await send([carol])).recordId);
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await list(carol, `?pageSize=3${token ? `&pageToken=${token}` : ''}`);
      expect(page.records.length).toBeLessThanOrEqual(3);
      seen.push(...page.records.map((r) => r.recordId));
      token = page.nextPageToken;
      pages++;
    } while (token);
    expect(pages).toBe(3);
    expect(seen).toEqual(sent); // in delivery order, no duplicates, none lost
  });

  it("keeps patients apart: another patient's record is NOT_FOUND, like an unknown id", async () => {
    const { recordId } = await send([alice]);
    const unknown = newRandomId();
    for (const [target, method, json] of [
      [`/records/v1/records/${recordId}/content`, 'GET', undefined],
      [`/records/v1/records/${recordId}/ack`, 'POST', { outcome: 'stored' }],
    ] as const) {
      expect(await refusal(bob.api.call({ method, target, json }, ackResponseSchema))).toEqual({
        status: 404,
        code: 'NOT_FOUND',
      });
      expect(
        await refusal(
          bob.api.call({ method, target: target.replace(recordId, unknown), json }, ackResponseSchema),
        ),
      ).toEqual({ status: 404, code: 'NOT_FOUND' });
    }
    expect((await list(bob)).records.map((r) => r.recordId)).not.toContain(recordId);
    // A device of the same patient paired after the record holds no key for it.
    const late = await pairTestDevice(stack, hospital, 'alice');
    expect(
      await refusal(late.api.raw({ method: 'GET', target: `/records/v1/records/${recordId}/content` })),
    ).toEqual({ status: 404, code: 'NOT_FOUND' });
  });

  it('lists the patient’s devices and lets a sibling revoke a lost one, refused at once', async () => {
    const phone = await pairTestDevice(stack, hospital, 'dave');
    const lost = await pairTestDevice(stack, hospital, 'dave');
    const devices = await phone.api.call(
      { method: 'GET', target: '/records/v1/devices' },
      deviceListResponseSchema,
    );
    expect(devices.devices.map((d) => [d.deviceId, d.current]).sort()).toEqual(
      [
        [phone.deviceId, true],
        [lost.deviceId, false],
      ].sort(),
    );
    // Another patient's device cannot be revoked, and looks like an unknown one.
    expect(
      await refusal(
        phone.api.call(
          { method: 'POST', target: `/records/v1/devices/${bob.deviceId}/revoke`, json: {} },
          revokeResponseSchema,
        ),
      ),
    ).toEqual({ status: 404, code: 'NOT_FOUND' });
    await phone.api.call(
      { method: 'POST', target: `/records/v1/devices/${lost.deviceId}/revoke`, json: {} },
      revokeResponseSchema,
    );
    expect(await refusal(list(lost))).toEqual({ status: 403, code: 'DEVICE_REVOKED' });

    // Revoked by the hospital: refused at once too.
    await hospital.api.call(
      {
        method: 'POST',
        target: `/pairing/v1/devices/${phone.deviceId}/revoke`,
        json: { operatorRef: hospital.operatorRef },
      },
      revokeResponseSchema,
    );
    expect(await refusal(list(phone))).toEqual({ status: 403, code: 'DEVICE_REVOKED' });
  });

  it('rotates the push token', async () => {
    const erin = await pairTestDevice(stack, hospital, 'erin');
    await erin.api.raw({
      method: 'PUT',
      target: '/records/v1/devices/self/push-token',
      json: { fcmToken: 'rotated-1' },
    });
    const stored = await firestore.collection(PAIRING_COLLECTIONS.devices).doc(erin.deviceId).get();
    expect(stored.get('fcmToken')).toBe('rotated-1');
  });

  it('refuses replayed, stale, unsigned, tampered and hospital-signed requests, changing nothing', async () => {
    const { recordId } = await send([alice]);
    const ack: ApiCall = {
      method: 'POST',
      target: `/records/v1/records/${recordId}/ack`,
      json: { outcome: 'stored' },
    };
    const before = (await firestore.collection(RECORDS_COLLECTION).doc(recordId).get()).data();

    const headers = signedBy(alice, { method: 'GET', target: '/records/v1/records' });
    expect((await rawCall({ method: 'GET', target: '/records/v1/records' }, headers)).status).toBe(200);
    expect(await rawCall({ method: 'GET', target: '/records/v1/records' }, headers)).toEqual({
      status: 401,
      code: 'REQUEST_REPLAYED',
    });

    const stale = signedBy(alice, ack, new Date(Date.now() - 10 * 60 * 1000));
    expect(await rawCall(ack, stale)).toEqual({ status: 401, code: 'REQUEST_EXPIRED' });
    expect(await rawCall(ack, {})).toEqual({ status: 401, code: 'SIGNATURE_MISSING' });
    const tamperedBody = signedBy(alice, ack);
    expect(
      await rawCall({ ...ack, json: { outcome: 'failed', errorCode: 'CHUNK_INVALID' } }, tamperedBody),
    ).toEqual({
      status: 401,
      code: 'SIGNATURE_INVALID',
    });
    const listing: ApiCall = { method: 'GET', target: '/records/v1/records?pageSize=5' };
    expect(
      await rawCall({ ...listing, target: '/records/v1/records?pageSize=6' }, signedBy(alice, listing)),
    ).toEqual({
      status: 401,
      code: 'SIGNATURE_INVALID',
    });
    const asHospital = signRequest({
      audience: stack.env.FUNCTIONS_BASE_URL!,
      method: 'GET',
      target: '/records/v1/records',
      body: new Uint8Array(0),
      keyId: hospitalKeyId(hospital.hospitalId, hospital.keys.publicKey),
      privateKey: hospital.keys.privateKey,
      now: new Date(),
    });
    expect(await rawCall({ method: 'GET', target: '/records/v1/records' }, asHospital)).toEqual({
      status: 401,
      code: 'UNKNOWN_KEY',
    });
    expect((await firestore.collection(RECORDS_COLLECTION).doc(recordId).get()).data()).toEqual(before);
  });

  it('answers malformed input with 400 and a stable code', async () => {
    const { recordId } = await send([alice]);
    for (const query of [
      '?pageSize=0',
      '?pageSize=101',
      '?pageSize=abc',
      '?pageToken=%21%21',
      '?pageToken=AAAA',
      '?other=1',
    ]) {
      expect(await refusal(list(alice, query))).toEqual({ status: 400, code: 'INVALID_REQUEST' });
    }
    for (const json of [{ outcome: 'maybe' }, { outcome: 'failed', errorCode: 'NOT_A_REAL_CODE' }, {}]) {
      expect(
        await refusal(
          alice.api.call(
            { method: 'POST', target: `/records/v1/records/${recordId}/ack`, json },
            ackResponseSchema,
          ),
        ),
      ).toEqual({ status: 400, code: 'INVALID_REQUEST' });
    }
    expect(
      await refusal(alice.api.raw({ method: 'GET', target: '/records/v1/records/not-an-id/content' })),
    ).toEqual({ status: 400, code: 'INVALID_REQUEST' });
    expect(
      await refusal(alice.api.raw({ method: 'GET', target: `/records/v1/records/${recordId}/content?x=1` })),
    ).toEqual({ status: 400, code: 'INVALID_REQUEST' });
  });
});
