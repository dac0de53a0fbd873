// C1–C3: the whole cloud is the attacker's. It holds every function's unwrapped key (as each
// function's service account would), writes Firestore and Cloud Storage at will, and has stolen
// the hospital's long-term signing key. Protocol v2 must still keep its two promises:
//   C1  no record opens: every stored wrapped key is tried with every key the attacker holds;
//   C2  the connector (`cb-connector send` and `devices`) accepts no device the attacker makes:
//       a second device on a used invitation (with the QR's leaked binding secret), a device
//       certified after its invitation expired, a device on an invitation the connector never
//       issued (registered with the stolen hospital key), and a revoked device revived;
//   C3  the genuine patient still receives, and the control works: the device's own key opens
//       what the attacker's keys cannot.
import { randomBytes } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFileCustody, type FileKeys } from '../../clients/connector/custody/file.ts';
import { createApiClient } from '../../clients/lib/api-client.ts';
import { readQrPng } from '../../clients/lib/qr.ts';
import type { Stack } from '../../emulator/stack.ts';
import { AUDIT_COLLECTIONS } from '../../shared/adapters/firestore-audit.ts';
import { storedAuditEvents } from '../helpers/audit-logs.ts';
import { PAIRING_COLLECTIONS } from '../../shared/adapters/firestore-pairing.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import {
  importKeyPair,
  importPublicKey,
  type KeyPair,
  type PrivateKey,
  type PublicKey,
} from '../../shared/core/crypto/index.ts';
import { privateThemisKey, publicThemisKey } from '../../shared/core/crypto/keys.ts';
import { themis } from '../../shared/core/crypto/themis.ts';
import {
  bindingProofText,
  decodeInvitationQr,
  deriveBindingSecret,
  DEVICE_CERTIFICATE_TYPE,
  deviceCertificateSchema,
  formatTimestamp,
  fromBase64Url,
  hospitalKeyId,
  invitationResponseSchema,
  newInvitationToken,
  newRandomId,
  readDocumentUnverified,
  signDeviceCertificate,
  tokenDigest,
  toBase64Url,
  UPLOAD_MANIFEST_TYPE,
  uploadManifestSchema,
} from '../../shared/core/protocol/index.ts';
import type { BinName } from '../helpers/bins.ts';
import { onboardConnector, type OnboardedConnector } from '../helpers/onboarded-connector.ts';
import { collectBytes, stackBlobStore } from '../helpers/delivery-fixture.ts';
import { recordEvidence } from '../helpers/evidence.ts';
import { injectDevice } from '../helpers/injection.ts';
import { stackFunctionKeys } from '../helpers/stack-services.ts';

const HOSPITAL = 'st-compromised-zh';
const PATIENT = 'CANARY-C1-patient';
const KEYED_FUNCTIONS = ['pairing', 'ingest', 'records', 'retention'] as const;
const HOUR = 3600_000;
/** The member of staff who invites: the cloud may see only the hospital's pseudonym of it. */
const STAFF = 'CANARY-staff-jansen';

describe('a fully compromised cloud', { timeout: 180_000 }, () => {
  let onboarded: OnboardedConnector;
  let dir: string;
  let stack: Stack;
  let firestore: Firestore;
  let hospitalKeys: FileKeys;
  /** Every private key the attacker holds: the four functions' and the hospital's. */
  let stolen: { name: string; key: PrivateKey }[];
  let pairingKey: KeyPair;
  /** The hospital's signing key, as the attacker took it from the connector's host. */
  let stolenHospital: KeyPair;
  let genuineDevice: string;
  let usedQr: ReturnType<typeof decodeInvitationQr>;

  const home = () => onboarded.home;
  const bin = (name: BinName, args: string[]) => onboarded.bin(name, args);
  const connector = (...args: string[]) => onboarded.connector(...args);

  interface RogueFields {
    invitationId: string;
    patientRef: string;
    bindingSecret: Uint8Array;
    issuedAt: Date;
  }

  /** A certificate the attacker signs with the pairing function's own key, for any fields. */
  function rogueCertificate(fields: RogueFields, attacker: KeyPair): string {
    return toBase64Url(
      signDeviceCertificate(
        {
          type: DEVICE_CERTIFICATE_TYPE,
          deviceId: attacker.publicKey.fingerprint,
          devicePublicKey: attacker.publicKey.toBase64Url(),
          hospitalId: HOSPITAL,
          patientRef: fields.patientRef,
          invitationId: fields.invitationId,
          // With the QR's binding secret the proof itself is genuine.
          bindingProof: bindingProofText(fields.bindingSecret, fields.invitationId, attacker.publicKey),
          issuedAt: formatTimestamp(fields.issuedAt),
          expiresAt: formatTimestamp(new Date(fields.issuedAt.getTime() + 365 * 24 * HOUR)),
        },
        pairingKey.privateKey,
      ),
    );
  }

  const inject = (fields: RogueFields, label: string) =>
    injectDevice(
      firestore,
      { hospitalId: HOSPITAL, patientRef: fields.patientRef },
      (attacker) => rogueCertificate(fields, attacker),
      `fcm-${label}`,
      fields.invitationId,
    );

  beforeAll(async () => {
    onboarded = await onboardConnector({ hospitalId: HOSPITAL });
    ({ dir, stack } = onboarded);
    firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);

    const qr = join(dir, 'invite.png');
    expect((await connector('invite', PATIENT, '--out', qr, '--operator', STAFF)).code).toBe(0);
    usedQr = decodeInvitationQr(await readQrPng(qr));
    const paired = await bin('cb-device', ['pair', qr, '--home', join(dir, 'device')]);
    expect(paired.code).toBe(0);
    genuineDevice = (
      await firestore
        .collection(PAIRING_COLLECTIONS.devices)
        .where('invitationId', '==', usedQr.invitationId)
        .get()
    ).docs[0]!.id;
    // The connector has seen the patient's phone (as on the first send): it owns its invitation.
    const seen = await connector('devices', '--patient', PATIENT);
    expect(seen.stdout).toContain(`${genuineDevice}  verified`);

    // What the attacker takes: every function's key, and the hospital's signing key.
    hospitalKeys = JSON.parse(await readFile(join(home(), 'hospital-keys.json'), 'utf8')) as FileKeys;
    pairingKey = await stackFunctionKeys(stack, firestore, 'pairing').keyPair();
    stolenHospital = importKeyPair(hospitalKeys.privateKey, hospitalKeys.publicKey);
    stolen = [
      { name: 'hospital', key: stolenHospital.privateKey },
      ...(await Promise.all(
        KEYED_FUNCTIONS.map(async (name) => ({
          name,
          key: (await stackFunctionKeys(stack, firestore, name).keyPair()).privateKey,
        })),
      )),
    ];
  });

  afterAll(async () => {
    await firestore?.terminate();
    await onboarded?.close();
  });

  it('C2 accepts none of the devices a compromised cloud makes, in `devices` or in `send`', async () => {
    const refPatient = (await firestore.collection(PAIRING_COLLECTIONS.devices).doc(genuineDevice).get()).get(
      'patientRef',
    ) as string;

    // 1. A second device on the invitation the patient used, proof made with the QR's secret.
    const second = await inject(
      {
        invitationId: usedQr.invitationId,
        patientRef: refPatient,
        bindingSecret: usedQr.bindingSecret,
        issuedAt: new Date(),
      },
      'second-on-used',
    );
    // 2. A device certified now on an invitation the connector issued months ago that expired
    //    unused (the attacker kept a photo of its QR).
    const custody = openFileCustody(hospitalKeys);
    const oldInvitation = newRandomId();
    const oldExpiry = new Date(Date.now() - 90 * 24 * HOUR);
    await appendFile(
      join(home(), 'enrolments.jsonl'),
      `${JSON.stringify({
        kind: 'invitation',
        invitationId: oldInvitation,
        patientRef: refPatient,
        createdAt: new Date(oldExpiry.getTime() - HOUR).toISOString(),
        expiresAt: oldExpiry.toISOString(),
        bindingKeyVersion: 1,
        operatorRef: newRandomId(),
        staffId: 'front-desk-1',
      })}\n`,
    );
    const late = await inject(
      {
        invitationId: oldInvitation,
        patientRef: refPatient,
        bindingSecret: deriveBindingSecret(custody.bindingKey, oldInvitation, refPatient),
        issuedAt: new Date(),
      },
      'after-expiry',
    );
    custody.close();
    // 3. An invitation the connector never issued, registered with the stolen hospital key,
    //    and a device paired on it through the real pairing function.
    const asHospital = createApiClient({
      apiBase: stack.env.FUNCTIONS_BASE_URL!,
      signer: {
        keyId: hospitalKeyId(HOSPITAL, stolenHospital.publicKey),
        privateKey: stolenHospital.privateKey,
      },
    });
    const rogueInvitation = newRandomId();
    const token = newInvitationToken();
    await asHospital.call(
      {
        method: 'POST',
        target: '/pairing/v1/invitations',
        json: {
          invitationId: rogueInvitation,
          patientRef: refPatient,
          tokenSha256: tokenDigest(token),
          expiresAt: formatTimestamp(new Date(Date.now() + HOUR)),
          maxAttempts: 3,
          operatorRef: newRandomId(),
        },
      },
      invitationResponseSchema,
    );
    const unissued = await inject(
      {
        invitationId: rogueInvitation,
        patientRef: refPatient,
        bindingSecret: new Uint8Array(randomBytes(32)),
        issuedAt: new Date(),
      },
      'never-issued',
    );

    const listed = await connector('devices', '--patient', PATIENT);
    expect(listed.code, listed.stdout).toBe(3);
    expect(listed.stdout).toContain(`${genuineDevice}  verified`);
    const refusals = {
      [second]: 'INVITATION_USED',
      [late]: 'CERTIFICATE_LATE',
      [unissued]: 'INVITATION_NOT_ISSUED',
    };
    for (const [deviceId, code] of Object.entries(refusals)) {
      expect(listed.stdout).toContain(`${deviceId}  REFUSED  ${code}`);
    }
    const letter = join(dir, 'letter.txt');
    await writeFile(letter, `results for ${PATIENT}`);
    const sent = await connector('send', letter, '--patient', PATIENT, '--wait');
    expect(sent.code).toBe(0);
    expect(sent.stdout).toContain('(for 1 device(s))');
    for (const [deviceId, code] of Object.entries(refusals)) {
      expect(sent.stderr).toContain(`skipped device ${deviceId}: ${code}`);
    }

    // 4. The patient's device is revoked at the hospital; the cloud revives it.
    expect((await connector('revoke', '--', genuineDevice)).code).toBe(0);
    await firestore.collection(PAIRING_COLLECTIONS.devices).doc(genuineDevice).update({ status: 'active' });
    const revived = await connector('send', letter, '--patient', PATIENT);
    expect(revived.code).toBe(3);
    expect(revived.stderr).toContain('DEVICE_REVOKED');
    const forMe = await firestore.collection(RECORDS_COLLECTION).where('hospitalId', '==', HOSPITAL).get();
    expect(forMe.docs).toHaveLength(1); // only the first letter went anywhere

    // C4: the cloud's audit trail names who invited, as the hospital's pseudonym only.
    const operatorRef = (await connector('operator-ref', STAFF)).stdout.trim();
    const invited = await storedAuditEvents(firestore, { invitationId: usedQr.invitationId });
    expect(invited.map((fields) => [fields.action, fields.operatorRef])).toContainEqual([
      'invitation.created',
      operatorRef,
    ]);
    const everyEvent = JSON.stringify(
      (await firestore.collection(AUDIT_COLLECTIONS.entries).get()).docs.map((d) => d.data()),
    );
    expect(everyEvent).not.toContain(STAFF);

    for (const [attack, deviceId] of [
      ['a second device on a used invitation, with the QR binding secret', second],
      ['a certificate issued after its invitation expired', late],
      ['a device on an invitation registered with the stolen hospital key', unissued],
      ['a revoked device revived in Firestore', genuineDevice],
    ] as const) {
      recordEvidence({
        kind: 'attack',
        threat: 'C2',
        attack,
        outcome:
          deviceId === genuineDevice ? 'send refused: DEVICE_REVOKED' : `refused: ${refusals[deviceId]}`,
      });
    }
  });

  it('C1 opens no stored wrapped key with any key the attacker holds; C3 the device opens its own', async () => {
    const blobs = stackBlobStore(stack);
    const records = await firestore.collection(RECORDS_COLLECTION).where('hospitalId', '==', HOSPITAL).get();
    expect(records.docs.length).toBeGreaterThan(0);
    const enrolment = JSON.parse(
      await readFile(join(dir, 'device', 'enrolments', `${HOSPITAL}.json`), 'utf8'),
    ) as { privateKey: string; publicKey: string };
    const phone = importKeyPair(enrolment.privateKey, enrolment.publicKey);
    const functionPublics = await Promise.all(
      KEYED_FUNCTIONS.map(
        async (name) => (await stackFunctionKeys(stack, firestore, name).keyPair()).publicKey,
      ),
    );
    const T = themis();
    const opens = (own: PrivateKey, peer: PublicKey, wrapped: Uint8Array): boolean => {
      try {
        new T.SecureMessage(new T.KeyPair(privateThemisKey(own), publicThemisKey(peer))).decrypt(wrapped);
        return true;
      } catch {
        return false;
      }
    };
    let tried = 0;
    for (const record of records.docs) {
      const container = await collectBytes(
        blobs.read(stack.env.RECORDS_BUCKET!, record.get('objectName') as string),
      );
      const manifestLength = new DataView(container.buffer, container.byteOffset).getUint32(5, false);
      const manifest = readDocumentUnverified(
        container.subarray(9, 9 + manifestLength),
        UPLOAD_MANIFEST_TYPE,
        uploadManifestSchema,
      );
      const wrapKey = importPublicKey(manifest.wrapKey);
      for (const recipient of manifest.recipients) {
        const wrapped = fromBase64Url(recipient.wrappedKey)!;
        const certificate = readDocumentUnverified(
          fromBase64Url(
            (await firestore.collection(PAIRING_COLLECTIONS.devices).doc(recipient.deviceId).get()).get(
              'certificate',
            ) as string,
          )!,
          DEVICE_CERTIFICATE_TYPE,
          deviceCertificateSchema,
        );
        // Every public key in sight: the upload's wrap key, the device's, the hospital's, the functions'.
        const peers = [
          wrapKey,
          importPublicKey(certificate.devicePublicKey),
          importPublicKey(hospitalKeys.publicKey),
          ...functionPublics,
        ];
        for (const { name, key } of stolen) {
          for (const peer of peers) {
            tried += 1;
            expect(opens(key, peer, wrapped), `the ${name} key opened a wrapped key`).toBe(false);
          }
        }
        // C3, the control: the phone's own key and the manifest's wrap key do open it.
        expect(recipient.deviceId).toBe(phone.publicKey.fingerprint);
        expect(opens(phone.privateKey, wrapKey, wrapped)).toBe(true);
      }
    }
    expect(tried).toBeGreaterThanOrEqual(stolen.length * 7);
    recordEvidence({
      kind: 'attack',
      threat: 'C1',
      attack: `every stored wrapped key, with the hospital's and four function keys against every public key (${tried} tries)`,
      outcome: 'none opened; the phone opened its own',
    });
  });
});
