// Device linking on the local stack (docs/PROTOCOL.md §17; THREAT_MODEL.md "Device linking"): a
// new phone linked by a paired one opens a record sent before it existed; the cloud cannot link
// a device without a current device's signature; a revoked device cannot link one; a refused link
// leaves nothing behind; the patient's erasure removes linked devices and their links.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { PAIRING_COLLECTIONS } from '../../shared/adapters/firestore-pairing.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import {
  ApiError,
  approveLink,
  openLinkedRecord,
  receiveLink,
  showLinkInvitation,
  type LinkingDevice,
} from '../../sdk/index.ts';
import { generateContentKey, generateKeyPair, type PublicKey } from '../../shared/core/crypto/index.ts';
import {
  accessLogResponseSchema,
  buildDeviceLink,
  deviceKeyId,
  deviceLinksResponseSchema,
  decodeLinkQr,
  ERROR_CODES,
  isErrorCode,
  newRandomId,
  type ErrorCode,
  fromBase64Url,
  patientDevicesResponseSchema,
  revokeResponseSchema,
  signRequest,
  toBase64Url,
  verifyLinkedDevice,
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
import { useLocalStack } from '../helpers/local-stack.ts';

const local = useLocalStack('device-link');
const CANARY = 'CANARY-device-link-7f3a9c: diagnosis sent before the new phone existed';

let hospital: TestHospital;
let pairingKey: PublicKey;
let phoneA: TestDevice;
let recordId: string;
let apiBase: string;

function linking(device: TestDevice): LinkingDevice {
  return {
    apiBase,
    hospitalId: device.hospitalId,
    deviceId: device.deviceId,
    keys: device.keys,
    certificate: device.certificate,
    hospitalPublicKey: hospital.keys.publicKey,
  };
}

/** A paired phone as the signer of a link (buildDeviceLink's linker). */
function linkerOf(device: TestDevice) {
  return {
    deviceId: device.deviceId,
    keys: device.keys,
    certificate: device.certificate,
    hospitalId: hospital.hospitalId,
    patientRef: device.patientRef,
    hospitalPublicKey: hospital.keys.publicKey,
  };
}

async function deviceDoc(deviceId: string) {
  return local.firestore.collection(PAIRING_COLLECTIONS.devices).doc(deviceId).get();
}

/** A refused link left nothing behind: no device, and the record not re-addressed to it. */
async function expectNotLinked(deviceId: string): Promise<void> {
  expect((await deviceDoc(deviceId)).exists).toBe(false);
  const record = await local.firestore.collection(RECORDS_COLLECTION).doc(recordId).get();
  expect(record.data()?.recipients).not.toContain(deviceId);
}

/** POST /pairing/v1/links with a request signed by `as` (or unsigned). */
async function postLink(link: Uint8Array, as?: Pick<TestDevice, 'deviceId' | 'keys'>): Promise<Response> {
  return postLinkBody({ link: toBase64Url(link) }, as);
}

/** The same, with any JSON body. */
async function postLinkBody(json: unknown, as?: Pick<TestDevice, 'deviceId' | 'keys'>): Promise<Response> {
  const body = new TextEncoder().encode(JSON.stringify(json));
  const headers = as
    ? signRequest({
        audience: apiBase,
        method: 'POST',
        target: '/pairing/v1/links',
        body,
        keyId: deviceKeyId(as.deviceId),
        privateKey: as.keys.privateKey,
        now: new Date(),
      })
    : {};
  return fetch(`${apiBase}/pairing/v1/links`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body,
  });
}

async function codeOf(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

beforeAll(async () => {
  const { stack, firestore } = local;
  apiBase = stack.env.FUNCTIONS_BASE_URL!;
  hospital = await registerTestHospital(firestore, stack, 'st-link-zh');
  pairingKey = await functionPublicKey(firestore, 'pairing');
  const ingestKey = await functionPublicKey(firestore, 'ingest');
  phoneA = await pairTestDevice(stack, hospital, 'patient-link-1');
  const { receipt } = await deliver(stack, hospital, ingestKey, {
    patientRef: phoneA.patientRef,
    recipients: [phoneA],
    file: new TextEncoder().encode(CANARY),
    header: { filename: 'letter.txt', mediaType: 'text/plain' },
  });
  expect(receipt.status).toBe('accepted');
  recordId = receipt.recordId!;
}, 120_000);

describe('device linking', () => {
  it('a linked phone opens a record sent before it existed, and the hospital can verify the link', async () => {
    const invitation = showLinkInvitation({ apiBase, hospitalId: hospital.hospitalId, platform: 'ios' });
    // Not yet linked: the new key is unknown to the cloud.
    await expect(receiveLink(invitation, { waitMs: 0 })).rejects.toMatchObject({ code: 'UNKNOWN_KEY' });

    const approved = await approveLink(linking(phoneA), invitation.qr);
    expect(approved.deviceId).toBe(invitation.deviceId);
    expect(approved.records).toEqual([recordId]);
    expect(approved.skipped).toEqual([]);

    const fcmToken = `fcm-linked-${newRandomId()}`;
    const linked = await receiveLink(invitation, { waitMs: 10_000, pollMs: 200, fcmToken });
    expect(linked.patientRef).toBe(phoneA.patientRef);
    expect((await deviceDoc(linked.deviceId)).data()?.fcmToken).toBe(fcmToken);
    expect([...invitation.secret].every((b) => b === 0)).toBe(true); // the one-time secret is spent
    const opened = await openLinkedRecord(linked, recordId);
    expect(new TextDecoder().decode(await collectBytes(opened.file))).toBe(CANARY);
    expect(opened.header.filename).toBe('letter.txt');

    // The hospital sees the linked device with its certificate and link, and verifies both.
    const hospitalView = await hospital.api.call(
      { method: 'GET', target: `/pairing/v1/patients/${phoneA.patientRef}/device-links` },
      deviceLinksResponseSchema,
    );
    expect(hospitalView.links.map((l) => l.deviceId)).toEqual([linked.deviceId]);
    const entry = hospitalView.links[0]!;
    const checked = verifyLinkedDevice(
      { certificate: fromBase64Url(entry.certificate)!, link: fromBase64Url(entry.link)! },
      pairingKey,
      new Date(),
    );
    expect(checked.linker.deviceId).toBe(phoneA.deviceId);
    // The invitation listing keeps to paired devices, which the connector's journal can check.
    const paired = await hospital.api.call(
      { method: 'GET', target: `/pairing/v1/patients/${phoneA.patientRef}/devices` },
      patientDevicesResponseSchema,
    );
    expect(paired.devices.map((d) => d.deviceId)).toEqual([phoneA.deviceId]);
    // So does the patient's other phone.
    const phoneView = await phoneA.api.call(
      { method: 'GET', target: '/records/v1/devices/links' },
      deviceLinksResponseSchema,
    );
    expect(phoneView.links.map((l) => l.deviceId)).toEqual([linked.deviceId]);

    // The patient's access log shows who linked whom.
    const log = await phoneA.api.call(
      { method: 'GET', target: '/records/v1/access-log' },
      accessLogResponseSchema,
    );
    expect(log.entries).toContainEqual(
      expect.objectContaining({
        action: 'device.linked',
        actor: { kind: 'device', id: phoneA.deviceId },
        deviceId: linked.deviceId,
      }),
    );
    // A link is its own action (NEN 7513 "what"), not a pairing the new phone never did.
    expect(
      log.entries.filter((entry) => entry.deviceId === linked.deviceId).map((entry) => entry.action),
    ).toEqual(['device.linked']);

    // The cloud stores only the signed link: neither the plaintext nor the QR's secret.
    const stored = JSON.stringify((await deviceDoc(linked.deviceId)).data());
    expect(stored).not.toContain('CANARY-device-link');
    expect(stored).not.toContain(toBase64Url(decodeLinkQr(invitation.qr).secret));
    const record = await local.firestore.collection(RECORDS_COLLECTION).doc(recordId).get();
    expect(record.data()?.recipients).toEqual([phoneA.deviceId, linked.deviceId]);

    // The same QR approved again is refused and changes nothing.
    await expect(approveLink(linking(phoneA), invitation.qr)).rejects.toMatchObject({
      code: 'DEVICE_ALREADY_PAIRED',
      status: 409,
    });
    expect(JSON.stringify((await deviceDoc(linked.deviceId)).data())).toBe(stored);
  });

  it('the cloud cannot link a device without a current device signing both the call and the link', async () => {
    const invitation = showLinkInvitation({ apiBase, hospitalId: hospital.hospitalId });
    const qr = decodeLinkQr(invitation.qr);
    const rogue = generateKeyPair();
    // A link naming phone A and its certificate, but signed by a key the cloud holds.
    const forged = buildDeviceLink({
      qr,
      linker: { ...linkerOf(phoneA), keys: rogue },
      records: [],
      now: new Date(),
    });
    const unsigned = await postLink(forged.signed);
    expect([unsigned.status, await codeOf(unsigned)]).toEqual([401, 'SIGNATURE_MISSING']);
    const byRogue = await postLink(forged.signed, { deviceId: rogue.publicKey.fingerprint, keys: rogue });
    expect([byRogue.status, await codeOf(byRogue)]).toEqual([401, 'UNKNOWN_KEY']);
    // Even a call phone A signed does not carry a link phone A did not sign.
    const smuggled = await postLink(forged.signed, phoneA);
    expect([smuggled.status, await codeOf(smuggled)]).toEqual([403, 'LINK_INVALID']);
    await expectNotLinked(invitation.deviceId);
  });

  it("another patient's phone cannot hand on this patient's record, nor link into this patient", async () => {
    const phoneC = await pairTestDevice(local.stack, hospital, 'patient-link-2');
    const invitation = showLinkInvitation({ apiBase, hospitalId: hospital.hospitalId });
    const qr = decodeLinkQr(invitation.qr);
    const linker = linkerOf(phoneC);
    // A key for patient 1's record (phone C cannot open it; any content key will do to try).
    const theirs = buildDeviceLink({
      qr,
      linker: { ...linker, patientRef: phoneC.patientRef },
      records: [{ recordId, contentKey: generateContentKey() }],
      now: new Date(),
    });
    const handedOn = await postLink(theirs.signed, phoneC);
    expect([handedOn.status, await codeOf(handedOn)]).toEqual([403, 'LINK_RECORD_INVALID']);
    const intoOther = buildDeviceLink({
      qr,
      linker: { ...linker, patientRef: phoneA.patientRef },
      records: [],
      now: new Date(),
    });
    const claimed = await postLink(intoOther.signed, phoneC);
    expect([claimed.status, await codeOf(claimed)]).toEqual([403, 'LINK_INVALID']);
    await expectNotLinked(invitation.deviceId);
  });

  it('a revoked device cannot link one', async () => {
    const phoneB = await pairTestDevice(local.stack, hospital, 'patient-link-1');
    expect(phoneB.patientRef).toBe(phoneA.patientRef);
    await phoneA.api.call(
      { method: 'POST', target: `/records/v1/devices/${phoneB.deviceId}/revoke`, json: {} },
      revokeResponseSchema,
    );
    const invitation = showLinkInvitation({ apiBase, hospitalId: hospital.hospitalId });
    const refused = await approveLink(linking(phoneB), invitation.qr).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ code: 'DEVICE_REVOKED', status: 403 });
    // A link the revoked phone signed, carried by a current phone's call, is refused as well.
    const qr = decodeLinkQr(invitation.qr);
    const byRevoked = buildDeviceLink({
      qr,
      linker: linkerOf(phoneB),
      records: [],
      now: new Date(),
    });
    const carried = await postLink(byRevoked.signed, phoneA);
    expect([carried.status, await codeOf(carried)]).toEqual([403, 'LINK_INVALID']);
    await expectNotLinked(invitation.deviceId);
  });

  it('broken links are a catalogued 4xx, never a 5xx, and store nothing', async () => {
    const invitation = showLinkInvitation({ apiBase, hospitalId: hospital.hospitalId });
    const qr = decodeLinkQr(invitation.qr);
    const linker = linkerOf(phoneA);
    const genuine = buildDeviceLink({ qr, linker, records: [], now: new Date() }).signed;
    const stale = buildDeviceLink({ qr, linker, records: [], now: new Date(Date.now() - 600_000) });
    const unknownRecord = buildDeviceLink({
      qr,
      linker,
      records: [{ recordId: newRandomId(), contentKey: generateContentKey() }],
      now: new Date(),
    });
    const fixed: [Uint8Array, string][] = [
      [stale.signed, 'REQUEST_EXPIRED'],
      [unknownRecord.signed, 'LINK_RECORD_INVALID'],
      [new Uint8Array([1, 2, 3]), 'LINK_INVALID'],
    ];
    for (const [bytes, code] of fixed) {
      const answer = await postLink(bytes, phoneA);
      expect([answer.status, await codeOf(answer)]).toEqual([ERROR_CODES[code as ErrorCode].status, code]);
    }
    const mutation = fc.oneof(
      fc.tuple(fc.nat({ max: genuine.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([at, bits]) => {
        const bytes = genuine.slice();
        bytes[at] = bytes[at]! ^ bits;
        return bytes;
      }),
      fc.nat({ max: genuine.length - 1 }).map((length) => genuine.slice(0, length)),
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((tail) => new Uint8Array([...genuine, ...tail])),
      fc.uint8Array({ minLength: 1, maxLength: 2048 }),
    );
    await fc.assert(
      fc.asyncProperty(mutation, async (bytes) => {
        const answer = await postLink(bytes, phoneA);
        const code = await codeOf(answer);
        expect(answer.status).toBeGreaterThanOrEqual(400);
        expect(answer.status).toBeLessThan(500);
        expect(isErrorCode(code)).toBe(true);
      }),
      { numRuns: 60 },
    );
    const bodies = [{}, { link: '' }, { link: 'not base64!' }, { link: toBase64Url(genuine), extra: 1 }];
    for (const json of bodies) {
      const answer = await postLinkBody(json, phoneA);
      expect([answer.status, await codeOf(answer)]).toEqual([400, 'INVALID_REQUEST']);
    }
    await expectNotLinked(invitation.deviceId);
    // And the genuine link still goes through afterwards: nothing was spent by the refusals.
    const accepted = await postLink(genuine, phoneA);
    expect(accepted.status).toBe(201);
    // Its retry (a lost answer) gets the same enrolment back.
    const retried = await postLink(genuine, phoneA);
    expect(retried.status).toBe(201);
    expect(await retried.json()).toEqual(await accepted.json());
  });

  it("the patient's erasure removes linked devices and their links", async () => {
    const invitation = showLinkInvitation({ apiBase, hospitalId: hospital.hospitalId });
    await approveLink(linking(phoneA), invitation.qr);
    const linked = await receiveLink(invitation, { waitMs: 10_000, pollMs: 200 });
    expect((await deviceDoc(linked.deviceId)).data()?.link).toBeTypeOf('string');
    const erase = await phoneA.api.raw({
      method: 'POST',
      target: '/records/v1/patient/erase',
      json: { confirm: 'erase-everything' },
    });
    expect(erase.status).toBe(200);
    const remaining = await local.firestore
      .collection(PAIRING_COLLECTIONS.devices)
      .where('patientRef', '==', phoneA.patientRef)
      .get();
    expect(remaining.docs.map((doc) => doc.id)).toEqual([]);
    await expect(openLinkedRecord(linked, recordId)).rejects.toMatchObject({ status: 401 });
  });
});
