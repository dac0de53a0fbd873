// Every endpoint a phone or a connector calls, called on the whole local stack with valid and
// invalid input, and every answer held to the OpenAPI document the stack serves (GET
// /openapi.json): an answer whose status, error code, message, content type or body the
// document does not describe fails the test. At the end, every operation of the document must
// have been seen succeeding and refusing, so a new endpoint cannot slip through unexercised.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, type PrivateKey, type Signer } from '../../shared/core/crypto/index.ts';
import {
  buildDeviceLink,
  deviceKeyId,
  errorBodySchema,
  formatTimestamp,
  hospitalKeyId,
  newInvitationToken,
  newLinkSecret,
  newRandomId,
  signRequest,
  toBase64Url,
  tokenDigest,
} from '../../shared/core/protocol/index.ts';
import type { OpenApiDocument } from '../../shared/core/protocol/openapi.ts';
import { cosignCheckpoint } from '../../shared/core/tlog/index.ts';
import { runSequencer, testWitness } from '../helpers/audit-logs.ts';
import {
  deliver,
  functionPublicKey,
  inviteTestPatient,
  pairBodyFor,
  pairTestDevice,
  registerTestHospital,
  type TestDevice,
  type TestHospital,
} from '../helpers/delivery-fixture.ts';
import { useLocalStack } from '../helpers/local-stack.ts';
import {
  answerProblems,
  observe,
  OPENAPI_FILE,
  operationFor,
  requestProblems,
  type ObservedAnswer,
} from '../helpers/openapi.ts';

interface Caller {
  readonly keyId: string;
  readonly privateKey: PrivateKey | Signer;
}

interface Call {
  readonly method: 'GET' | 'POST' | 'PUT';
  /** From the versioned prefix on, query included. */
  readonly target: string;
  readonly json?: unknown;
  /** Bytes sent as they are (instead of json). */
  readonly raw?: Uint8Array;
  readonly as?: Caller;
  /** Signs as if at another time. */
  readonly signedAt?: Date;
  /** Sends these signature headers instead of fresh ones (a replay). */
  readonly headers?: Record<string, string>;
}

const local = useLocalStack('openapi');

describe('the API on the local stack, against its OpenAPI document', { timeout: 180_000 }, () => {
  let base: string;
  let document: OpenApiDocument;
  let hospital: TestHospital;
  let alice: TestDevice;
  let recordId: string;
  /** operationId → statuses seen. */
  const seen = new Map<string, Set<number>>();

  const hospitalCaller = (): Caller => ({
    keyId: hospitalKeyId(hospital.hospitalId, hospital.keys.publicKey),
    privateKey: hospital.keys.privateKey,
  });
  const deviceCaller = (device: TestDevice): Caller => ({
    keyId: deviceKeyId(device.deviceId),
    privateKey: device.keys.privateKey,
  });

  /** Sends a call, checks its answer against the document, and records what it covered. */
  async function send(call: Call): Promise<ObservedAnswer & { headersSent: Record<string, string> }> {
    const body =
      call.raw ??
      (call.json === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(call.json)));
    const headers: Record<string, string> =
      call.json !== undefined || call.raw !== undefined ? { 'content-type': 'application/json' } : {};
    const signature =
      call.headers ??
      (call.as
        ? signRequest({
            audience: base,
            method: call.method,
            target: call.target,
            body,
            keyId: call.as.keyId,
            privateKey: call.as.privateKey,
            now: call.signedAt ?? new Date(),
          })
        : {});
    const url = `${base}${call.target}`;
    const response = await fetch(url, {
      method: call.method,
      headers: { ...headers, ...signature },
      ...(body.length > 0 ? { body: Buffer.from(body) } : {}),
    });
    const answer = await observe(call.method, url, response);
    expect(answerProblems(document, answer), `${call.method} ${call.target}`).toEqual([]);
    // What the function accepted, the document must describe: a success for a request the
    // document refuses means a handler accepts more than the document says.
    const sentBody = call.raw ? { raw: true } : call.json;
    const undescribed = requestProblems(document, {
      method: call.method,
      target: call.target,
      headers: signature,
      body: sentBody,
    });
    if (answer.status < 400) expect(undescribed, `accepted: ${call.method} ${call.target}`).toEqual([]);
    const operationId = operationFor(document, call.method, answer.path)!.operation.operationId as string;
    seen.set(operationId, (seen.get(operationId) ?? new Set()).add(answer.status));
    return { ...answer, headersSent: signature };
  }

  const codeOf = (answer: ObservedAnswer) => errorBodySchema.parse(answer.body).error.code;

  beforeAll(async () => {
    base = local.stack.env.FUNCTIONS_BASE_URL!;
    const served = await fetch(`${base}/openapi.json`);
    expect(served.status).toBe(200);
    document = (await served.json()) as OpenApiDocument;
    hospital = await registerTestHospital(local.firestore, local.stack, 'openapi-hospital');
    alice = await pairTestDevice(local.stack, hospital, 'alice');
    const ingestKey = await functionPublicKey(local.firestore, 'ingest');
    const delivered = await deliver(local.stack, hospital, ingestKey, {
      patientRef: alice.patientRef,
      recipients: [alice],
      file: new Uint8Array(randomBytes(3000)),
    });
    recordId = delivered.sealed.manifest.recordId;
  });

  it('serves the published document, naming itself as the server', async () => {
    const published = JSON.parse(await readFile(OPENAPI_FILE, 'utf8')) as OpenApiDocument;
    expect(document).toEqual({ ...published, servers: [{ url: base, description: 'This local stack.' }] });
    expect((await fetch(`${base}/openapi.json`, { method: 'POST' })).status).toBe(404);
  });

  it('pairing: invitations', async () => {
    const invitation = {
      invitationId: newRandomId(),
      patientRef: alice.patientRef,
      tokenSha256: tokenDigest(newInvitationToken()),
      expiresAt: formatTimestamp(new Date(Date.now() + 10 * 60_000)),
      maxAttempts: 3,
      operatorRef: hospital.operatorRef,
    };
    const target = '/pairing/v1/invitations';
    expect((await send({ method: 'POST', target, json: invitation, as: hospitalCaller() })).status).toBe(201);
    // The retry of a lost answer counts as created; another body under the same id does not.
    expect((await send({ method: 'POST', target, json: invitation, as: hospitalCaller() })).status).toBe(201);
    const conflict = await send({
      method: 'POST',
      target,
      json: { ...invitation, maxAttempts: 4 },
      as: hospitalCaller(),
    });
    expect(codeOf(conflict)).toBe('CONFLICT');
    expect(codeOf(await send({ method: 'POST', target, json: invitation }))).toBe('SIGNATURE_MISSING');
    const tooMany = await send({
      method: 'POST',
      target,
      json: { ...invitation, maxAttempts: 11 },
      as: hospitalCaller(),
    });
    expect(codeOf(tooMany)).toBe('INVALID_REQUEST');
    const stale = await send({
      method: 'POST',
      target,
      json: invitation,
      as: hospitalCaller(),
      signedAt: new Date(Date.now() - 3600_000),
    });
    expect(codeOf(stale)).toBe('REQUEST_EXPIRED');
    const huge = await send({
      method: 'POST',
      target,
      raw: new Uint8Array(300 * 1024).fill(0x20),
      as: hospitalCaller(),
    });
    expect(codeOf(huge)).toBe('PAYLOAD_TOO_LARGE');
    const deviceSigned = await send({ method: 'POST', target, json: invitation, as: deviceCaller(alice) });
    expect(codeOf(deviceSigned)).toBe('UNKNOWN_KEY');
  });

  it('pairing: pair', async () => {
    const invitation = await inviteTestPatient(hospital, 'carol');
    const keys = generateKeyPair();
    const body = pairBodyFor(invitation, keys, `fcm-${newRandomId()}`);
    const target = '/pairing/v1/pair';
    expect(
      codeOf(await send({ method: 'POST', target, json: { ...body, token: newInvitationToken() } })),
    ).toBe('INVALID_REQUEST');
    expect(codeOf(await send({ method: 'POST', target, json: { token: body.token } }))).toBe(
      'INVALID_REQUEST',
    );
    expect((await send({ method: 'POST', target, json: body })).status).toBe(201);
    // Another device with the same invitation.
    const other = generateKeyPair();
    expect(
      codeOf(await send({ method: 'POST', target, json: pairBodyFor(invitation, other, 'fcm-other') })),
    ).toBe('INVITATION_USED');
    const unknown = await send({
      method: 'POST',
      target,
      json: pairBodyFor({ ...invitation, invitationId: newRandomId() }, other, 'fcm-other'),
    });
    expect(codeOf(unknown)).toBe('INVITATION_INVALID');
  });

  it('pairing: a patient’s devices, revocation, delivery status and recall', async () => {
    const devices = await send({
      method: 'GET',
      target: `/pairing/v1/patients/${alice.patientRef}/devices`,
      as: hospitalCaller(),
    });
    expect(devices.status).toBe(200);
    expect((devices.body as { devices: unknown[] }).devices.length).toBeGreaterThan(0);
    expect(
      codeOf(
        await send({ method: 'GET', target: '/pairing/v1/patients/not-a-ref/devices', as: hospitalCaller() }),
      ),
    ).toBe('INVALID_REQUEST');
    expect(
      codeOf(
        await send({
          method: 'GET',
          target: `/pairing/v1/patients/${alice.patientRef}/devices?x=1`,
          as: hospitalCaller(),
        }),
      ),
    ).toBe('INVALID_REQUEST');

    const spare = await pairTestDevice(local.stack, hospital, 'dave');
    const revoke = (deviceId: string) =>
      send({
        method: 'POST',
        target: `/pairing/v1/devices/${deviceId}/revoke`,
        json: { operatorRef: hospital.operatorRef },
        as: hospitalCaller(),
      });
    expect((await revoke(spare.deviceId)).status).toBe(200);
    expect(codeOf(await revoke(spare.deviceId))).toBe('NOT_FOUND');
    // The revoked device is refused at once.
    const refused = await send({ method: 'GET', target: '/records/v1/devices', as: deviceCaller(spare) });
    expect(codeOf(refused)).toBe('DEVICE_REVOKED');

    const ingestKey = await functionPublicKey(local.firestore, 'ingest');
    const doomed = await deliver(local.stack, hospital, ingestKey, {
      patientRef: alice.patientRef,
      recipients: [alice],
      file: new Uint8Array(randomBytes(100)),
    });
    // Before the recall, the hospital asks what became of it: sealed for Alice, not yet acknowledged.
    const delivery = (id: string) =>
      send({ method: 'GET', target: `/pairing/v1/records/${id}/delivery`, as: hospitalCaller() });
    const status = await delivery(doomed.sealed.manifest.recordId);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ recipients: [{ deviceId: alice.deviceId }] });
    expect(codeOf(await delivery(newRandomId()))).toBe('NOT_FOUND');
    expect(codeOf(await delivery('not-an-id'))).toBe('INVALID_REQUEST');
    const recall = (id: string) =>
      send({
        method: 'POST',
        target: `/pairing/v1/records/${id}/recall`,
        json: { operatorRef: hospital.operatorRef },
        as: hospitalCaller(),
      });
    expect((await recall(doomed.sealed.manifest.recordId)).status).toBe(200);
    expect(codeOf(await delivery(doomed.sealed.manifest.recordId))).toBe('NOT_FOUND');
    expect(codeOf(await recall(newRandomId()))).toBe('NOT_FOUND');
    expect(
      codeOf(
        await send({
          method: 'POST',
          target: `/pairing/v1/records/${newRandomId()}/recall`,
          json: { operatorRef: hospital.operatorRef, extra: 1 },
          as: hospitalCaller(),
        }),
      ),
    ).toBe('INVALID_REQUEST');
  });

  it('records: list, content, acknowledgement', async () => {
    const me = deviceCaller(alice);
    const list = await send({ method: 'GET', target: '/records/v1/records?pageSize=10', as: me });
    expect(list.status).toBe(200);
    expect((list.body as { records: { recordId: string }[] }).records.map((r) => r.recordId)).toContain(
      recordId,
    );
    expect(codeOf(await send({ method: 'GET', target: '/records/v1/records?pageSize=0', as: me }))).toBe(
      'INVALID_REQUEST',
    );
    expect(codeOf(await send({ method: 'GET', target: '/records/v1/records' }))).toBe('SIGNATURE_MISSING');

    const content = await send({ method: 'GET', target: `/records/v1/records/${recordId}/content`, as: me });
    expect(content.status).toBe(200);
    expect(Number(content.headers!.get('content-length'))).toBeGreaterThan(3000);
    const missing = await send({
      method: 'GET',
      target: `/records/v1/records/${newRandomId()}/content`,
      as: me,
    });
    expect(codeOf(missing)).toBe('NOT_FOUND');

    const ack = (id: string, json: unknown) =>
      send({ method: 'POST', target: `/records/v1/records/${id}/ack`, json, as: me });
    expect((await ack(recordId, { outcome: 'stored' })).status).toBe(200);
    expect(codeOf(await ack(recordId, { outcome: 'failed', errorCode: 'NOT_A_CODE' }))).toBe(
      'INVALID_REQUEST',
    );
    expect(codeOf(await ack(newRandomId(), { outcome: 'stored' }))).toBe('NOT_FOUND');
    // Listed again, now with the acknowledgement.
    expect((await send({ method: 'GET', target: '/records/v1/records', as: me })).status).toBe(200);
  });

  it('records: devices, push token, signing key', async () => {
    const me = deviceCaller(alice);
    const first = await send({ method: 'GET', target: '/records/v1/devices', as: me });
    expect(first.status).toBe(200);
    // The same signed request again is a replay.
    const replay = await send({ method: 'GET', target: '/records/v1/devices', headers: first.headersSent });
    expect(codeOf(replay)).toBe('REQUEST_REPLAYED');

    const tablet = await pairTestDevice(local.stack, hospital, 'alice');
    const revoke = (deviceId: string, json: unknown) =>
      send({ method: 'POST', target: `/records/v1/devices/${deviceId}/revoke`, json, as: me });
    expect(codeOf(await revoke(tablet.deviceId, { why: 'lost' }))).toBe('INVALID_REQUEST');
    expect((await revoke(tablet.deviceId, {})).status).toBe(200);
    expect(codeOf(await revoke(tablet.deviceId, {}))).toBe('NOT_FOUND');

    const push = (json: unknown) =>
      send({ method: 'PUT', target: '/records/v1/devices/self/push-token', json, as: me });
    const done = await push({ fcmToken: `fcm-${newRandomId()}` });
    expect(done.status).toBe(204);
    expect(done.body).toBeUndefined();
    expect(codeOf(await push({ fcmToken: '' }))).toBe('INVALID_REQUEST');

    expect((await send({ method: 'GET', target: '/records/v1/signing-key' })).status).toBe(200);
    expect(codeOf(await send({ method: 'GET', target: '/records/v1/signing-key?x=1' }))).toBe(
      'INVALID_REQUEST',
    );
  });

  it('the audit log: witness checkpoint and cosignature, the phone’s checkpoint and access log', async () => {
    const me = deviceCaller(alice);
    // Before anything is cosigned: the phone gets no checkpoint yet.
    const early = await send({
      method: 'GET',
      target: '/records/v1/audit-log/checkpoint?fromSize=0',
      as: me,
    });
    expect(early.status).toBe(200);

    await runSequencer(local.stack);
    const latest = await send({
      method: 'GET',
      target: '/pairing/v1/audit-log/checkpoint',
      as: hospitalCaller(),
    });
    expect(latest.status).toBe(200);
    const { checkpoint } = latest.body as { checkpoint?: string };
    expect(checkpoint).toBeDefined();
    expect(
      codeOf(
        await send({
          method: 'GET',
          target: '/pairing/v1/audit-log/checkpoint?fromSize=01',
          as: hospitalCaller(),
        }),
      ),
    ).toBe('INVALID_REQUEST');

    const witness = testWitness(hospital.hospitalId, randomBytes(32), () => Math.floor(Date.now() / 1000));
    const cosign = (json: unknown) =>
      send({ method: 'POST', target: '/pairing/v1/audit-log/cosignature', json, as: hospitalCaller() });
    // The platform's note without a cosignature line is no cosignature.
    expect(codeOf(await cosign({ checkpoint, witnessKey: witness.witnessKey }))).toBe('COSIGNATURE_INVALID');
    const cosigned = await cosignCheckpoint(checkpoint!, [witness.signer]);
    const accepted = await cosign({ checkpoint: cosigned, witnessKey: witness.witnessKey });
    expect(accepted.status).toBe(200);
    const intruder = testWitness(hospital.hospitalId, randomBytes(32), () => Math.floor(Date.now() / 1000));
    const other = await cosign({
      checkpoint: await cosignCheckpoint(checkpoint!, [intruder.signer]),
      witnessKey: intruder.witnessKey,
    });
    expect(codeOf(other)).toBe('WITNESS_KEY_MISMATCH');

    const size = (accepted.body as { size: number }).size;
    const phone = await send({
      method: 'GET',
      target: '/records/v1/audit-log/checkpoint?fromSize=1',
      as: me,
    });
    expect((phone.body as { checkpoint?: string }).checkpoint).toBeDefined();
    expect(
      codeOf(await send({ method: 'GET', target: '/records/v1/audit-log/checkpoint?fromSize=x', as: me })),
    ).toBe('INVALID_REQUEST');

    const log = await send({
      method: 'GET',
      target: `/records/v1/access-log?pageSize=5&treeSize=${size}`,
      as: me,
    });
    expect(log.status).toBe(200);
    const entries = (log.body as { entries: { leaf: { inclusionProof?: unknown } }[] }).entries;
    expect(entries.some((entry) => entry.leaf.inclusionProof !== undefined)).toBe(true);
    expect(
      codeOf(await send({ method: 'GET', target: `/records/v1/access-log?treeSize=${size + 1000}`, as: me })),
    ).toBe('INVALID_REQUEST');
  });

  it('linking: a phone links another; the patient’s and the hospital’s views of links', async () => {
    const me = deviceCaller(alice);
    const newPhone = generateKeyPair();
    const { signed } = buildDeviceLink({
      qr: {
        apiBase: base,
        hospitalId: hospital.hospitalId,
        devicePublicKey: newPhone.publicKey,
        secret: newLinkSecret(),
        platform: 'ios',
      },
      linker: {
        deviceId: alice.deviceId,
        keys: alice.keys,
        certificate: alice.certificate,
        hospitalId: hospital.hospitalId,
        patientRef: alice.patientRef,
        hospitalPublicKey: hospital.keys.publicKey,
      },
      records: [],
      now: new Date(),
    });
    const link = (json: unknown, as?: Caller) =>
      send({ method: 'POST', target: '/pairing/v1/links', json, ...(as ? { as } : {}) });
    expect(codeOf(await link({ link: 'not a document' }, me))).toBe('INVALID_REQUEST');
    expect(codeOf(await link({ link: toBase64Url(signed) }))).toBe('SIGNATURE_MISSING');
    expect((await link({ link: toBase64Url(signed) }, me)).status).toBe(201);

    const linked: Caller = {
      keyId: deviceKeyId(newPhone.publicKey.fingerprint),
      privateKey: newPhone.privateKey,
    };
    expect((await send({ method: 'GET', target: '/records/v1/devices/links', as: linked })).status).toBe(200);
    expect(codeOf(await send({ method: 'GET', target: '/records/v1/devices/links?x=1', as: linked }))).toBe(
      'INVALID_REQUEST',
    );
    const hospitalView = (patientRef: string) =>
      send({
        method: 'GET',
        target: `/pairing/v1/patients/${patientRef}/device-links`,
        as: hospitalCaller(),
      });
    expect((await hospitalView(alice.patientRef)).status).toBe(200);
    expect(codeOf(await hospitalView('not-a-ref'))).toBe('INVALID_REQUEST');
  });

  it('records: erasure, after which the device key is unknown', async () => {
    const bob = await pairTestDevice(local.stack, hospital, 'bob');
    const erase = (json: unknown) =>
      send({ method: 'POST', target: '/records/v1/patient/erase', json, as: deviceCaller(bob) });
    expect(codeOf(await erase({ confirm: 'yes' }))).toBe('INVALID_REQUEST');
    expect((await erase({ confirm: 'erase-everything' })).status).toBe(200);
    expect(codeOf(await erase({ confirm: 'erase-everything' }))).toBe('UNKNOWN_KEY');
  });

  it('a check against a drifted document fails on the same answer', async () => {
    // The same real answer, held to a document that lost the operation's 404: reported.
    const drifted = structuredClone(document);
    const operation = drifted.paths['/records/v1/records/{recordId}/content']!.get as {
      responses: Record<string, unknown>;
    };
    delete operation.responses['404'];
    const url = `${base}/records/v1/records/${newRandomId()}/content`;
    const target = new URL(url).pathname;
    const headers = signRequest({
      audience: base,
      method: 'GET',
      target,
      body: new Uint8Array(0),
      keyId: deviceKeyId(alice.deviceId),
      privateKey: alice.keys.privateKey,
      now: new Date(),
    });
    const answer = await observe('GET', url, await fetch(url, { headers }));
    expect(answer.status).toBe(404);
    expect(answerProblems(document, answer)).toEqual([]);
    expect(answerProblems(drifted, answer)[0]).toMatch(/status not documented/);
  });

  // Last, once every other test ran (vitest runs a file's tests in order).
  it('exercised every operation of the document both ways', () => {
    const operations = Object.values(document.paths).flatMap((item) =>
      Object.values(item).map((operation) => operation as { operationId: string; responses: object }),
    );
    const missing = operations.flatMap((operation) => {
      const statuses = [...(seen.get(operation.operationId) ?? [])];
      const success = Object.keys(operation.responses).find((status) => Number(status) < 300);
      const problems: string[] = [];
      if (!statuses.includes(Number(success))) problems.push(`${operation.operationId}: never succeeded`);
      if (!statuses.some((status) => status >= 400)) problems.push(`${operation.operationId}: never refused`);
      return problems;
    });
    expect(missing).toEqual([]);
  });
});
