// The pairing function on the whole local stack, through HTTP: invitations, pairing with proof
// of possession, single use, attempts, expiry, concurrency, request signing and replay, and what
// reaches Firestore and the logs (invariants 3, 6, 8, 9).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureStdout, type StdoutCapture } from '../helpers/stdout-capture.ts';
import { startStack, type Stack } from '../../emulator/stack.ts';
import { PAIRING_DEFAULTS } from '../../shared/services/pairing.ts';
import {
  createFirestoreHospitalRegistry,
  createFirestoreInvitationStore,
  PAIRING_COLLECTIONS,
} from '../../shared/adapters/firestore-pairing.ts';
import { createFunctionKeyDirectory } from '../../shared/adapters/function-keys.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { generateKeyPair, type KeyPair, type PublicKey } from '../../shared/core/crypto/index.ts';
import {
  bindingProofText,
  deriveBindingSecret,
  deriveOperatorRef,
  derivePatientRef,
  memoryHmacKey,
  formatTimestamp,
  fromBase64Url,
  hospitalKeyId,
  newInvitationToken,
  newRandomId,
  PAIR_REQUEST_TYPE,
  signPairRequest,
  signRequest,
  toBase64Url,
  tokenDigest,
  verifyDeviceCertificate,
  verifyEnrolment,
} from '../../shared/core/protocol/index.ts';

const HOSPITAL_ID = 'test-hospital';
const PATIENT_NUMBER = 'CANARY-patient-000123';
const YEAR_MS = 365 * 24 * 3600 * 1000;

/** What any pairing endpoint may answer, loosely, for assertions. */
interface Answer {
  readonly error: { readonly code: string };
  readonly deviceId: string;
  readonly certificate: string;
  readonly expiresAt: string;
  readonly devices: { readonly deviceId: string; readonly certificate: string }[];
}

describe('pairing function', () => {
  let dataDir: string;
  let stack: Stack;
  let firestore: Firestore;
  let hospital: KeyPair;
  let pairingKey: PublicKey;
  const pseudonymKey = memoryHmacKey(new Uint8Array(randomBytes(32)), 1);
  const bindingKey = memoryHmacKey(new Uint8Array(randomBytes(32)), 1);
  const OPERATOR_REF = deriveOperatorRef(pseudonymKey, 'front-desk-1');
  const secrets: string[] = [];
  let stdout: StdoutCapture;

  beforeAll(async () => {
    stdout = captureStdout(); // the functions run in this process: their logs are scanned
    dataDir = await mkdtemp(join(tmpdir(), 'cb-pairing-'));
    stack = await startStack({ dataDir, portBase: 0 });
    firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
    hospital = generateKeyPair();
    await createFirestoreHospitalRegistry(firestore).registerHospital({
      hospitalId: HOSPITAL_ID,
      status: 'active',
      publicKeys: [hospital.publicKey],
      expiresAt: new Date(Date.now() + YEAR_MS),
    });
    const published = await createFunctionKeyDirectory({ firestore }).publishedPublicKeys();
    pairingKey = published.find((key) => key.functionName === 'pairing')!.publicKey;
  });

  afterAll(async () => {
    stdout?.restore();
    await firestore?.terminate();
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const url = (path: string) => `${stack.env.FUNCTIONS_BASE_URL}/pairing${path}`;

  interface SignOptions {
    keys?: KeyPair;
    signer?: KeyPair;
    hospitalId?: string;
  }

  function hospitalHeaders(method: string, path: string, body: Uint8Array, options: SignOptions = {}) {
    const keys = options.keys ?? hospital;
    return signRequest({
      audience: stack.env.FUNCTIONS_BASE_URL!,
      method,
      target: `/pairing${path}`,
      body,
      keyId: hospitalKeyId(options.hospitalId ?? HOSPITAL_ID, keys.publicKey),
      privateKey: (options.signer ?? keys).privateKey,
      now: new Date(),
    });
  }

  async function send(
    method: string,
    path: string,
    body: Uint8Array | undefined,
    headers: Record<string, string>,
  ) {
    const response = await fetch(url(path), {
      method,
      headers: body ? { 'content-type': 'application/json', ...headers } : headers,
      ...(body ? { body: Buffer.from(body) } : {}),
    });
    return { status: response.status, body: (await response.json()) as Answer };
  }

  async function hospitalCall(method: string, path: string, json?: unknown, options: SignOptions = {}) {
    const body = json === undefined ? undefined : new TextEncoder().encode(JSON.stringify(json));
    const headers = hospitalHeaders(method, path, body ?? new Uint8Array(0), options);
    return send(method, path, body, headers);
  }

  interface Invite {
    invitationId: string;
    token: string;
    patientRef: string;
    bindingSecret: Uint8Array;
  }

  function newInvite(patientNumber = PATIENT_NUMBER): Invite {
    const invitationId = newRandomId();
    const patientRef = derivePatientRef(pseudonymKey, patientNumber);
    const invite = {
      invitationId,
      token: newInvitationToken(),
      patientRef,
      bindingSecret: deriveBindingSecret(bindingKey, invitationId, patientRef),
    };
    secrets.push(invite.token, toBase64Url(invite.bindingSecret));
    return invite;
  }

  async function invite(options: { maxAttempts?: number; patientNumber?: string } = {}): Promise<Invite> {
    const created = newInvite(options.patientNumber);
    const expiresAt = formatTimestamp(new Date(Date.now() + 15 * 60 * 1000));
    const response = await hospitalCall('POST', '/v1/invitations', {
      invitationId: created.invitationId,
      patientRef: created.patientRef,
      tokenSha256: tokenDigest(created.token),
      expiresAt,
      maxAttempts: options.maxAttempts ?? 3,
      operatorRef: OPERATOR_REF,
    });
    expect(response).toEqual({ status: 201, body: { invitationId: created.invitationId, expiresAt } });
    return created;
  }

  function pairBody(invitation: Invite, options: { token?: string; fcmToken?: string } = {}) {
    const device = generateKeyPair();
    const token = options.token ?? invitation.token;
    const fcmToken = options.fcmToken ?? `fcm-${newRandomId()}`;
    const signed = signPairRequest(
      {
        type: PAIR_REQUEST_TYPE,
        invitationId: invitation.invitationId,
        tokenSha256: tokenDigest(token),
        devicePublicKey: device.publicKey.toBase64Url(),
        deviceId: device.publicKey.fingerprint,
        bindingProof: bindingProofText(invitation.bindingSecret, invitation.invitationId, device.publicKey),
        fcmToken,
        platform: 'android',
        issuedAt: formatTimestamp(new Date()),
      },
      device.privateKey,
    );
    return { device, fcmToken, body: { token, pairRequest: toBase64Url(signed) } };
  }

  async function pair(body: unknown) {
    return send('POST', '/v1/pair', new TextEncoder().encode(JSON.stringify(body)), {});
  }

  async function snapshotAll(): Promise<string> {
    const parts: string[] = [];
    for (const name of Object.values(PAIRING_COLLECTIONS)) {
      const { docs } = await firestore.collection(name).get();
      for (const doc of docs) parts.push(`${name}/${doc.id} ${JSON.stringify(doc.data())}`);
    }
    return parts.sort().join('\n');
  }

  it('invites, pairs, certifies and lists a device the hospital can verify', async () => {
    const invitation = await invite();
    const { device, fcmToken, body } = pairBody(invitation);
    const paired = await pair(body);
    expect(paired.status).toBe(201);
    expect(paired.body.deviceId).toBe(device.publicKey.fingerprint);

    const certificate = verifyDeviceCertificate(
      fromBase64Url(paired.body.certificate)!,
      pairingKey,
      new Date(),
    );
    expect(certificate).toMatchObject({
      hospitalId: HOSPITAL_ID,
      patientRef: invitation.patientRef,
      invitationId: invitation.invitationId,
      deviceId: device.publicKey.fingerprint,
    });
    expect(certificate.expiresAt).toBe(paired.body.expiresAt);

    const listed = await hospitalCall('GET', `/v1/patients/${invitation.patientRef}/devices`);
    expect(listed.status).toBe(200);
    expect(listed.body.devices).toEqual([
      { deviceId: paired.body.deviceId, certificate: paired.body.certificate },
    ]);
    const verified = verifyEnrolment({
      certificate: fromBase64Url(listed.body.devices[0]!.certificate)!,
      pairingPublicKey: pairingKey,
      bindingKeyFor: () => bindingKey,
      hospitalId: HOSPITAL_ID,
      patientRef: invitation.patientRef,
      now: new Date(),
    });
    expect(verified.deviceId).toBe(device.publicKey.fingerprint);

    // A second device of the same patient: the first one gets a data-only "devices" hint.
    const second = await pair(pairBody(await invite()).body);
    expect(second.status).toBe(201);
    const pushes = await stack.fcm.messages(fcmToken);
    expect(pushes.map((message) => message.data)).toEqual([{ cb: '1', hint: 'devices' }]);

    // The first device's token is dead: the next pairing forgets it.
    await stack.fcm.markUnregistered(fcmToken);
    expect((await pair(pairBody(await invite()).body)).status).toBe(201);
    const stored = await firestore.collection(PAIRING_COLLECTIONS.devices).doc(paired.body.deviceId).get();
    expect(stored.get('fcmToken')).toBe('');

    // Revocation: gone from the list, and a second revoke finds nothing.
    const revoked = await hospitalCall('POST', `/v1/devices/${paired.body.deviceId}/revoke`, {
      operatorRef: OPERATOR_REF,
    });
    expect(revoked.status).toBe(200);
    expect(revoked.body.deviceId).toBe(paired.body.deviceId);
    const after = await hospitalCall('GET', `/v1/patients/${invitation.patientRef}/devices`);
    expect(after.body.devices.map((d: { deviceId: string }) => d.deviceId)).not.toContain(
      paired.body.deviceId,
    );
    expect(after.body.devices).toHaveLength(2);
    const notEmpty = await hospitalCall('POST', `/v1/devices/${paired.body.deviceId}/revoke`, {
      reason: 'x',
    });
    expect(notEmpty).toMatchObject({ status: 400, body: { error: { code: 'INVALID_REQUEST' } } });
    const again = await hospitalCall('POST', `/v1/devices/${paired.body.deviceId}/revoke`, {
      operatorRef: OPERATOR_REF,
    });
    expect(again.status).toBe(404);
  });

  it('counts wrong tokens and locks the invitation after the limit', async () => {
    const invitation = await invite({ maxAttempts: 2 });
    for (let i = 0; i < 2; i++) {
      const wrong = await pair(pairBody(invitation, { token: newInvitationToken() }).body);
      expect(wrong).toMatchObject({ status: 403, body: { error: { code: 'INVITATION_INVALID' } } });
    }
    const right = await pair(pairBody(invitation).body);
    expect(right).toMatchObject({ status: 403, body: { error: { code: 'INVITATION_ATTEMPTS_EXCEEDED' } } });
    const stored = await firestore
      .collection(PAIRING_COLLECTIONS.invitations)
      .doc(invitation.invitationId)
      .get();
    expect(stored.get('attempts')).toBe(2);
    expect(stored.get('status')).toBe('locked');
  });

  it('refuses an unknown invitation', async () => {
    const response = await pair(pairBody(newInvite()).body);
    expect(response).toMatchObject({ status: 403, body: { error: { code: 'INVITATION_INVALID' } } });
  });

  it('refuses an expired invitation', async () => {
    const invitation = newInvite();
    await createFirestoreInvitationStore(firestore).create({
      invitationId: invitation.invitationId,
      hospitalId: HOSPITAL_ID,
      patientRef: invitation.patientRef,
      tokenSha256: tokenDigest(invitation.token),
      maxAttempts: 3,
      createdAt: new Date(Date.now() - 3600_000),
      expiresAt: new Date(Date.now() - 60_000),
    });
    const response = await pair(pairBody(invitation).body);
    expect(response).toMatchObject({ status: 410, body: { error: { code: 'INVITATION_EXPIRED' } } });
  });

  it('refuses a used invitation', async () => {
    const invitation = await invite();
    expect((await pair(pairBody(invitation).body)).status).toBe(201);
    const again = await pair(pairBody(invitation).body);
    expect(again).toMatchObject({ status: 409, body: { error: { code: 'INVITATION_USED' } } });
  });

  it('lets exactly one of two concurrent pairs on one invitation succeed', async () => {
    const invitation = await invite();
    const results = await Promise.all([pair(pairBody(invitation).body), pair(pairBody(invitation).body)]);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409]);
    expect(results.find((r) => r.status === 409)!.body.error.code).toBe('INVITATION_USED');
    const listed = await hospitalCall('GET', `/v1/patients/${invitation.patientRef}/devices`);
    const winner = results.find((r) => r.status === 201)!.body.deviceId;
    expect(listed.body.devices.map((d: { deviceId: string }) => d.deviceId)).toContain(winner);
  });

  it('refuses a pair request not signed by the key it enrols (proof of possession)', async () => {
    const invitation = await invite();
    const device = generateKeyPair();
    const signed = signPairRequest(
      {
        type: PAIR_REQUEST_TYPE,
        invitationId: invitation.invitationId,
        tokenSha256: tokenDigest(invitation.token),
        devicePublicKey: device.publicKey.toBase64Url(),
        deviceId: device.publicKey.fingerprint,
        bindingProof: bindingProofText(invitation.bindingSecret, invitation.invitationId, device.publicKey),
        fcmToken: 'fcm-pop',
        platform: 'ios',
        issuedAt: formatTimestamp(new Date()),
      },
      generateKeyPair().privateKey,
    );
    const response = await pair({ token: invitation.token, pairRequest: toBase64Url(signed) });
    expect(response).toMatchObject({ status: 401, body: { error: { code: 'SIGNATURE_INVALID' } } });
    // The invitation is still usable by the genuine device.
    expect((await pair(pairBody(invitation).body)).status).toBe(201);
  });

  it('refuses a device key that is already paired, and a patient over the device limit', async () => {
    const first = await invite({ patientNumber: 'CANARY-limit-patient' });
    const built = pairBody(first);
    expect((await pair(built.body)).status).toBe(201);
    // The same key again, through a fresh invitation of the same patient.
    const second = await invite({ patientNumber: 'CANARY-limit-patient' });
    const signed = signPairRequest(
      {
        type: PAIR_REQUEST_TYPE,
        invitationId: second.invitationId,
        tokenSha256: tokenDigest(second.token),
        devicePublicKey: built.device.publicKey.toBase64Url(),
        deviceId: built.device.publicKey.fingerprint,
        bindingProof: bindingProofText(second.bindingSecret, second.invitationId, built.device.publicKey),
        fcmToken: built.fcmToken,
        platform: 'android',
        issuedAt: formatTimestamp(new Date()),
      },
      built.device.privateKey,
    );
    const duplicate = await pair({ token: second.token, pairRequest: toBase64Url(signed) });
    expect(duplicate).toMatchObject({ status: 409, body: { error: { code: 'DEVICE_ALREADY_PAIRED' } } });

    for (let i = 1; i < PAIRING_DEFAULTS.maxDevicesPerPatient; i++) {
      expect(
        (await pair(pairBody(await invite({ patientNumber: 'CANARY-limit-patient' })).body)).status,
      ).toBe(201);
    }
    const over = await pair(pairBody(await invite({ patientNumber: 'CANARY-limit-patient' })).body);
    expect(over).toMatchObject({ status: 409, body: { error: { code: 'DEVICE_LIMIT_REACHED' } } });
    const listed = await hospitalCall('GET', `/v1/patients/${first.patientRef}/devices`);
    expect(listed.body.devices).toHaveLength(PAIRING_DEFAULTS.maxDevicesPerPatient);
  });

  it('refuses replayed, badly signed, unsigned and unknown-key hospital requests', async () => {
    const created = newInvite();
    const body = new TextEncoder().encode(
      JSON.stringify({
        invitationId: created.invitationId,
        patientRef: created.patientRef,
        tokenSha256: tokenDigest(created.token),
        expiresAt: formatTimestamp(new Date(Date.now() + 600_000)),
        maxAttempts: 3,
        operatorRef: OPERATOR_REF,
      }),
    );
    const headers = hospitalHeaders('POST', '/v1/invitations', body);
    expect((await send('POST', '/v1/invitations', body, headers)).status).toBe(201);
    const replay = await send('POST', '/v1/invitations', body, headers);
    expect(replay).toMatchObject({ status: 401, body: { error: { code: 'REQUEST_REPLAYED' } } });

    const forged = await hospitalCall('GET', `/v1/patients/${created.patientRef}/devices`, undefined, {
      signer: generateKeyPair(),
    });
    expect(forged).toMatchObject({ status: 401, body: { error: { code: 'SIGNATURE_INVALID' } } });
    const unsigned = await send('GET', `/v1/patients/${created.patientRef}/devices`, undefined, {});
    expect(unsigned).toMatchObject({ status: 401, body: { error: { code: 'SIGNATURE_MISSING' } } });
    const stranger = await hospitalCall('GET', `/v1/patients/${created.patientRef}/devices`, undefined, {
      keys: generateKeyPair(),
    });
    expect(stranger).toMatchObject({ status: 401, body: { error: { code: 'UNKNOWN_KEY' } } });
    const otherHospital = await hospitalCall('GET', `/v1/patients/${created.patientRef}/devices`, undefined, {
      hospitalId: 'unknown-hospital',
    });
    expect(otherHospital).toMatchObject({ status: 401, body: { error: { code: 'UNKNOWN_KEY' } } });
  });

  it('keeps hospitals apart: another hospital neither sees nor revokes a device', async () => {
    const invitation = await invite();
    const paired = await pair(pairBody(invitation).body);
    expect(paired.status).toBe(201);
    const keys = generateKeyPair();
    await createFirestoreHospitalRegistry(firestore).registerHospital({
      hospitalId: 'other-hospital',
      status: 'active',
      publicKeys: [keys.publicKey],
      expiresAt: new Date(Date.now() + YEAR_MS),
    });
    const other = { keys, hospitalId: 'other-hospital' };
    const listed = await hospitalCall(
      'GET',
      `/v1/patients/${invitation.patientRef}/devices`,
      undefined,
      other,
    );
    expect(listed).toEqual({ status: 200, body: { devices: [] } });
    const revoke = await hospitalCall(
      'POST',
      `/v1/devices/${paired.body.deviceId}/revoke`,
      { operatorRef: OPERATOR_REF },
      other,
    );
    expect(revoke).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    const still = await hospitalCall('GET', `/v1/patients/${invitation.patientRef}/devices`);
    expect(still.body.devices.map((d) => d.deviceId)).toContain(paired.body.deviceId);
  });

  it('refuses a suspended hospital', async () => {
    const keys = generateKeyPair();
    await createFirestoreHospitalRegistry(firestore).registerHospital({
      hospitalId: 'suspended-hospital',
      status: 'suspended',
      publicKeys: [keys.publicKey],
      expiresAt: new Date(Date.now() + YEAR_MS),
    });
    const response = await hospitalCall('GET', `/v1/patients/${newInvite().patientRef}/devices`, undefined, {
      keys,
      hospitalId: 'suspended-hospital',
    });
    expect(response).toMatchObject({ status: 403, body: { error: { code: 'HOSPITAL_SUSPENDED' } } });
  });

  it('answers malformed input with 400 and stable codes, changing nothing stored', async () => {
    const invitation = await invite();
    const before = await snapshotAll();
    const good = pairBody(invitation).body;
    const bad: unknown[] = [
      {},
      { token: good.token },
      { ...good, extra: 1 },
      { ...good, token: 'short' },
      { ...good, pairRequest: 'AAAA' },
      {
        token: good.token,
        pairRequest: pairBody(invitation, { token: newInvitationToken() }).body.pairRequest,
      },
      [good],
    ];
    for (const body of bad) {
      const response = await pair(body);
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('INVALID_REQUEST');
    }
    const notJson = await send('POST', '/v1/pair', new TextEncoder().encode('{not json'), {});
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.code).toBe('INVALID_REQUEST');

    const badInvitations: unknown[] = [
      {},
      {
        invitationId: newRandomId(),
        patientRef: invitation.patientRef,
        tokenSha256: 'x',
        expiresAt: 'soon',
        maxAttempts: 3,
        operatorRef: OPERATOR_REF,
      },
      {
        invitationId: newRandomId(),
        patientRef: invitation.patientRef,
        tokenSha256: tokenDigest(newInvitationToken()),
        expiresAt: formatTimestamp(new Date(Date.now() + 600_000)),
        maxAttempts: 11,
        operatorRef: OPERATOR_REF,
      },
      {
        invitationId: newRandomId(),
        patientRef: invitation.patientRef,
        tokenSha256: tokenDigest(newInvitationToken()),
        expiresAt: formatTimestamp(new Date(Date.now() - 600_000)),
        maxAttempts: 3,
        operatorRef: OPERATOR_REF,
      },
    ];
    for (const body of badInvitations) {
      const response = await hospitalCall('POST', '/v1/invitations', body);
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('INVALID_REQUEST');
    }
    const badPatient = await hospitalCall('GET', '/v1/patients/not-a-ref/devices');
    expect(badPatient).toMatchObject({ status: 400, body: { error: { code: 'INVALID_REQUEST' } } });
    const withQuery = await hospitalCall('GET', `/v1/patients/${invitation.patientRef}/devices?x=1`);
    expect(withQuery).toMatchObject({ status: 400, body: { error: { code: 'INVALID_REQUEST' } } });
    // A duplicate invitation id is a conflict, and the original is untouched.
    const duplicate = await hospitalCall('POST', '/v1/invitations', {
      invitationId: invitation.invitationId,
      patientRef: invitation.patientRef,
      tokenSha256: tokenDigest(newInvitationToken()),
      expiresAt: formatTimestamp(new Date(Date.now() + 600_000)),
      maxAttempts: 3,
      operatorRef: OPERATOR_REF,
    });
    expect(duplicate).toMatchObject({ status: 409, body: { error: { code: 'CONFLICT' } } });

    const after = await snapshotAll();
    // Only authentic hospital requests leave a nonce behind; everything else is as it was.
    const withoutNonces = (text: string) =>
      text
        .split('\n')
        .filter((line) => !line.startsWith(`${PAIRING_COLLECTIONS.nonces}/`))
        .join('\n');
    expect(withoutNonces(after)).toBe(withoutNonces(before));
  });

  it('stores no token, binding secret or patient number, everything expires, and logs hold none', async () => {
    expect(secrets.length).toBeGreaterThan(0);
    const stored = await snapshotAll();
    const logs = stdout.lines.join('');
    expect(logs).toContain('"message":"device paired"');
    for (const secret of [...secrets, PATIENT_NUMBER, 'CANARY']) {
      expect(stored).not.toContain(secret);
      expect(logs).not.toContain(secret);
    }
    for (const name of Object.values(PAIRING_COLLECTIONS)) {
      const { docs } = await firestore.collection(name).get();
      expect(docs.length).toBeGreaterThan(0);
      for (const doc of docs) expect(doc.get('expiresAt')?.toDate()).toBeInstanceOf(Date);
    }
  });
});
