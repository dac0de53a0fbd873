// The attacks on pairing in the threat model (P1–P6), tried on the whole local stack through the
// real pairing function and the connector's own device check. Each test names its row; each
// attack's outcome goes into the security report.
import { randomBytes } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkedDevices } from '../../clients/connector/deliver.ts';
import { createApiClient, type ApiClient } from '../../clients/lib/api-client.ts';
import type { Stack } from '../../emulator/stack.ts';
import { PAIRING_COLLECTIONS } from '../../shared/adapters/firestore-pairing.ts';
import { generateKeyPair, type KeyPair, type PublicKey } from '../../shared/core/crypto/index.ts';
import {
  hospitalKeyId,
  newInvitationToken,
  newRandomId,
  pairResponseSchema,
  patientDevicesResponseSchema,
  recordListResponseSchema,
  revokeResponseSchema,
} from '../../shared/core/protocol/index.ts';
import {
  deliver,
  dropUpload,
  collectBytes,
  functionPublicKey,
  inviteTestPatient,
  pairBodyFor,
  pairTestDevice,
  pairWithInvitation,
  registerTestHospital,
  sealTestUpload,
  waitForReceipt,
  type TestHospital,
} from '../helpers/delivery-fixture.ts';
import { recordEvidence } from '../helpers/evidence.ts';
import { stackFunctionKeys } from '../helpers/stack-services.ts';
import { injectDevice, unboundCertificate } from '../helpers/injection.ts';
import { refusal } from '../helpers/refusal.ts';
import { useLocalStack } from '../helpers/local-stack.ts';

describe('attacks on pairing', () => {
  const local = useLocalStack('attacks-pairing');
  let stack: Stack;
  let firestore: Firestore;
  let hospital: TestHospital;
  let other: TestHospital;
  let pairingKey: PublicKey;
  let ingestKey: PublicKey;
  let anonymous: ApiClient;

  beforeAll(async () => {
    ({ stack, firestore } = local);
    hospital = await registerTestHospital(firestore, stack, 'st-attacks-x');
    other = await registerTestHospital(firestore, stack, 'st-attacks-y');
    pairingKey = await functionPublicKey(firestore, 'pairing');
    ingestKey = await functionPublicKey(firestore, 'ingest');
    anonymous = createApiClient({ apiBase: stack.env.FUNCTIONS_BASE_URL! });
  });

  function pair(body: unknown) {
    return anonymous.call({ method: 'POST', target: '/pairing/v1/pair', json: body }, pairResponseSchema);
  }

  async function tried(threat: string, attack: string, promise: Promise<unknown>) {
    const refused = await refusal(promise);
    recordEvidence({ kind: 'attack', threat, attack, outcome: `${refused.status} ${refused.code}` });
    return refused;
  }

  async function devicesOf(hospitalId: string, patientRef: string): Promise<string[]> {
    const { docs } = await firestore
      .collection(PAIRING_COLLECTIONS.devices)
      .where('hospitalId', '==', hospitalId)
      .where('patientRef', '==', patientRef)
      .get();
    return docs.map((doc) => doc.id);
  }

  it('P1 guessed tokens are counted, and the invitation locks before the right one arrives', async () => {
    const invitation = await inviteTestPatient(hospital, 'p1-patient'); // 3 attempts
    const thief = generateKeyPair();
    for (let guess = 0; guess < 3; guess++) {
      const wrong = { ...invitation, token: newInvitationToken() };
      expect(
        await tried('P1', `guess ${guess + 1} of the token`, pair(pairBodyFor(wrong, thief, 'fcm-p1'))),
      ).toEqual({ status: 403, code: 'INVITATION_INVALID' });
    }
    const genuine = generateKeyPair();
    expect(
      await tried(
        'P1',
        'the right token after three wrong ones',
        pair(pairBodyFor(invitation, genuine, 'fcm-p1-genuine')),
      ),
    ).toMatchObject({ code: 'INVITATION_ATTEMPTS_EXCEEDED' });
    const unknown = { ...invitation, invitationId: newRandomId() };
    expect(await tried('P1', 'a guessed invitation id', pair(pairBodyFor(unknown, thief, 'fcm-p1')))).toEqual(
      { status: 403, code: 'INVITATION_INVALID' },
    );
    expect(await devicesOf(hospital.hospitalId, invitation.patientRef)).toEqual([]);
    // The token is 32 random bytes: three guesses at 2^-256 each.
    expect(Buffer.from(invitation.token, 'base64url')).toHaveLength(32);
  });

  it('P2 a used or expired invitation pairs nobody else, and a stale pair request is refused', async () => {
    const invitation = await inviteTestPatient(hospital, 'p2-patient');
    const phone = generateKeyPair();
    const body = pairBodyFor(invitation, phone, 'fcm-p2');
    const first = await pair(body);
    // The same phone repeating its request (an answer lost on the way) gets the same pairing.
    expect(await pair(body)).toEqual(first);
    expect(
      await tried(
        'P2',
        'another key with the used invitation',
        pair(pairBodyFor(invitation, generateKeyPair(), 'fcm-p2-other')),
      ),
    ).toEqual({ status: 409, code: 'INVITATION_USED' });
    expect(await devicesOf(hospital.hospitalId, invitation.patientRef)).toEqual([first.deviceId]);

    const expired = await inviteTestPatient(hospital, 'p2-late', { expiresInMs: 1500 });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(
      await tried(
        'P2',
        'an expired invitation',
        pair(pairBodyFor(expired, generateKeyPair(), 'fcm-p2-late')),
      ),
    ).toEqual({ status: 410, code: 'INVITATION_EXPIRED' });

    const fresh = await inviteTestPatient(hospital, 'p2-stale');
    expect(
      await tried(
        'P2',
        'a pair request signed an hour ago',
        pair(
          pairBodyFor(fresh, generateKeyPair(), 'fcm-p2-stale', {
            issuedAt: new Date(Date.now() - 3600_000),
          }),
        ),
      ),
    ).toMatchObject({ status: 401, code: 'REQUEST_EXPIRED' });
    expect(await devicesOf(hospital.hospitalId, fresh.patientRef)).toEqual([]);
  });

  it('P3 a pair request must be signed by the key it enrols', async () => {
    const invitation = await inviteTestPatient(hospital, 'p3-patient');
    const victim = generateKeyPair();
    const attacker = generateKeyPair();
    const refused = await tried(
      'P3',
      "enrol another's public key, signed with the attacker's",
      pair(pairBodyFor(invitation, victim, 'fcm-p3', { signedWith: attacker.privateKey })),
    );
    expect(refused).toEqual({ status: 401, code: 'SIGNATURE_INVALID' });
    expect(await devicesOf(hospital.hospitalId, invitation.patientRef)).toEqual([]);
    // The invitation is still the patient's to use.
    expect((await pairWithInvitation(stack, invitation)).deviceId).toBeDefined();
  });

  it('P4 a bystander who pairs first with a photographed QR is seen, refused to the patient, and revoked', async () => {
    const invitation = await inviteTestPatient(hospital, 'p4-patient');
    const bystander = await pairWithInvitation(stack, invitation, { fcmToken: 'fcm-bystander' });
    // The patient's own pairing fails visibly: the app tells them to ask for a new code.
    expect(
      await tried(
        'P4',
        "the patient's own pairing after a bystander used the QR",
        pair(pairBodyFor(invitation, generateKeyPair(), 'fcm-p4-patient')),
      ),
    ).toEqual({ status: 409, code: 'INVITATION_USED' });
    // The hospital sees the device that took the invitation, verified, and revokes it.
    const listed = await hospital.api.call(
      { method: 'GET', target: `/pairing/v1/patients/${invitation.patientRef}/devices` },
      patientDevicesResponseSchema,
    );
    expect(listed.devices.map((device) => device.deviceId)).toEqual([bystander.deviceId]);
    await hospital.api.call(
      {
        method: 'POST',
        target: `/pairing/v1/devices/${bystander.deviceId}/revoke`,
        json: { operatorRef: hospital.operatorRef },
      },
      revokeResponseSchema,
    );
    expect(
      await tried(
        'P4',
        "the revoked bystander's signed list call",
        bystander.api.raw({ method: 'GET', target: '/records/v1/records' }),
      ),
    ).toEqual({ status: 403, code: 'DEVICE_REVOKED' });
    // A new invitation pairs the patient; nothing sent to them reaches the bystander.
    const patient = await pairTestDevice(stack, hospital, 'p4-patient');
    const check = await checkedDevices({ ...hospital, pairingKey }, patient.patientRef, new Date());
    expect(check.accepted.map((device) => device.deviceId)).toEqual([patient.deviceId]);
    const sealed = await sealTestUpload(hospital, {
      patientRef: patient.patientRef,
      recipients: [patient, bystander],
      file: new Uint8Array(randomBytes(2000)),
    });
    await dropUpload(stack, sealed.objectName, await collectBytes(sealed.bytes()));
    const receipt = await waitForReceipt(stack, hospital.hospitalId, sealed.manifest.uploadId, ingestKey);
    expect(receipt).toMatchObject({ status: 'rejected', errorCode: 'DEVICE_REVOKED' });
    recordEvidence({
      kind: 'attack',
      threat: 'P4',
      attack: 'an upload naming the revoked bystander',
      outcome: `rejection receipt ${receipt.status === 'rejected' ? receipt.errorCode : receipt.status}`,
    });
  });

  it('P5 devices written straight into Firestore are never given a key by the connector', async () => {
    const genuine = await pairTestDevice(stack, hospital, 'p5-patient');
    // The pairing function's own key, as its (leaked) service account unwraps it.
    const leaked = await stackFunctionKeys(stack, firestore, 'pairing').keyPair();
    const target = { hospitalId: hospital.hospitalId, patientRef: genuine.patientRef };
    const forged = await injectDevice(firestore, target, (attacker, invitationId) =>
      unboundCertificate(generateKeyPair().privateKey, attacker, target, invitationId),
    );
    // An invitation the hospital issued for this patient that nobody used: its QR never left the
    // desk, so the attacker has the pairing key but not the binding secret.
    const unused = await inviteTestPatient(hospital, 'p5-patient');
    const unbound = await injectDevice(
      firestore,
      target,
      (attacker, invitationId) => unboundCertificate(leaked.privateKey, attacker, target, invitationId),
      'fcm-injected',
      unused.invitationId,
    );
    const unissued = await injectDevice(firestore, target, (attacker, invitationId) =>
      unboundCertificate(leaked.privateKey, attacker, target, invitationId),
    );
    const copied = await injectDevice(
      firestore,
      target,
      async () =>
        (await firestore.collection(PAIRING_COLLECTIONS.devices).doc(genuine.deviceId).get()).get(
          'certificate',
        ) as string,
    );
    const check = await checkedDevices({ ...hospital, pairingKey }, genuine.patientRef, new Date());
    expect(check.accepted.map((device) => device.deviceId)).toEqual([genuine.deviceId]);
    const refused = Object.fromEntries(check.refused.map((entry) => [entry.deviceId, entry.code]));
    expect(refused).toEqual({
      [forged]: 'CERTIFICATE_INVALID',
      [unbound]: 'BINDING_PROOF_INVALID',
      [unissued]: 'INVITATION_NOT_ISSUED',
      [copied]: 'CERTIFICATE_INVALID',
    });
    for (const [what, id] of [
      ['a certificate signed by an unknown key', forged],
      ["a certificate signed with the pairing function's own (leaked) key, no binding proof", unbound],
      ['the leaked pairing key certifying a device on an invitation the hospital never issued', unissued],
      ["a copy of a genuine device's certificate", copied],
    ] as const) {
      recordEvidence({
        kind: 'attack',
        threat: 'P5',
        attack: `injected device: ${what}`,
        outcome: `refused ${refused[id]}`,
      });
    }
  });

  it("P6 hospital X's key does nothing for hospital Y's patients", async () => {
    const patientOfY = await pairTestDevice(stack, other, 'p6-patient');
    const { sealed } = await deliver(stack, other, ingestKey, {
      patientRef: patientOfY.patientRef,
      recipients: [patientOfY],
      file: new Uint8Array(randomBytes(1000)),
    });
    const claimingY = (keyId: string, keys: KeyPair) =>
      createApiClient({
        apiBase: stack.env.FUNCTIONS_BASE_URL!,
        signer: { keyId, privateKey: keys.privateKey },
      });
    expect(
      await tried(
        'P6',
        "X's key under Y's key id",
        claimingY(hospitalKeyId(other.hospitalId, other.keys.publicKey), hospital.keys).raw({
          method: 'GET',
          target: `/pairing/v1/patients/${patientOfY.patientRef}/devices`,
        }),
      ),
    ).toEqual({ status: 401, code: 'SIGNATURE_INVALID' });
    expect(
      await tried(
        'P6',
        "X's own key presented as one of Y's",
        claimingY(hospitalKeyId(other.hospitalId, hospital.keys.publicKey), hospital.keys).raw({
          method: 'GET',
          target: `/pairing/v1/patients/${patientOfY.patientRef}/devices`,
        }),
      ),
    ).toEqual({ status: 401, code: 'UNKNOWN_KEY' });
    // With its own key, X sees no device of Y's patient, and cannot revoke or recall.
    const seen = await hospital.api.call(
      { method: 'GET', target: `/pairing/v1/patients/${patientOfY.patientRef}/devices` },
      patientDevicesResponseSchema,
    );
    expect(seen.devices).toEqual([]);
    expect(
      await tried(
        'P6',
        "X revokes Y's device",
        hospital.api.raw({
          method: 'POST',
          target: `/pairing/v1/devices/${patientOfY.deviceId}/revoke`,
          json: { operatorRef: hospital.operatorRef },
        }),
      ),
    ).toEqual({ status: 404, code: 'NOT_FOUND' });
    expect(
      await tried(
        'P6',
        "X recalls Y's record",
        hospital.api.raw({
          method: 'POST',
          target: `/pairing/v1/records/${sealed.manifest.recordId}/recall`,
          json: { operatorRef: hospital.operatorRef },
        }),
      ),
    ).toEqual({ status: 404, code: 'NOT_FOUND' });
    // Uploads: X naming Y's patient under its own prefix, and X's signature under Y's prefix.
    const underX = await sealTestUpload(hospital, {
      patientRef: patientOfY.patientRef,
      recipients: [patientOfY],
      file: new Uint8Array(randomBytes(1000)),
    });
    await dropUpload(stack, underX.objectName, await collectBytes(underX.bytes()));
    const underY = await sealTestUpload(
      { ...hospital, hospitalId: other.hospitalId },
      {
        patientRef: patientOfY.patientRef,
        recipients: [patientOfY],
        file: new Uint8Array(randomBytes(1000)),
      },
    );
    await dropUpload(stack, underY.objectName, await collectBytes(underY.bytes()));
    for (const [what, owner, upload] of [
      ["X uploads for Y's patient", hospital.hospitalId, underX],
      ["X's signature on an upload in Y's folder", other.hospitalId, underY],
    ] as const) {
      const receipt = await waitForReceipt(stack, owner, upload.manifest.uploadId, ingestKey);
      const outcome = receipt.status === 'rejected' ? receipt.errorCode : receipt.status;
      recordEvidence({ kind: 'attack', threat: 'P6', attack: what, outcome: `rejection receipt ${outcome}` });
      expect(outcome).toBe(what.startsWith('X uploads') ? 'UNKNOWN_PATIENT' : 'MANIFEST_SIGNATURE_INVALID');
    }
    // Y's patient still has exactly their own device and record.
    expect(await devicesOf(other.hospitalId, patientOfY.patientRef)).toEqual([patientOfY.deviceId]);
    const records = await patientOfY.api.call(
      { method: 'GET', target: '/records/v1/records' },
      recordListResponseSchema,
    );
    expect(records.records.map((record) => record.recordId)).toEqual([sealed.manifest.recordId]);
  });
});
