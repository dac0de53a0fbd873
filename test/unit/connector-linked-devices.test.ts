// The connector's check of linked devices (docs/PROTOCOL.md §17.4) against a cloud that holds the
// pairing function's key: it can certify any key and list any link, but a linked device is
// accepted only through a chain of signed links that reaches a device the connector accepted
// itself. The cloud's answers come from a stand-in for the pairing function's two listings; the
// journal is the connector's real one on disk.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { checkedDevices } from '../../clients/connector/deliver.ts';
import { EnrolmentJournal } from '../../clients/connector/enrolments.ts';
import { generateKeyPair, type KeyPair } from '../../shared/core/crypto/index.ts';
import {
  buildDeviceLink,
  DEVICE_CERTIFICATE_TYPE,
  formatTimestamp,
  linkedCertificateFor,
  newLinkSecret,
  newRandomId,
  signDeviceCertificate,
  signLinkedDeviceCertificate,
  toBase64Url,
} from '../../shared/core/protocol/index.ts';

const hospitalId = 'st-linked-check';
const apiBase = 'https://api.clinic-bridge.example';
const patientRef = newRandomId();
const now = new Date();
const later = new Date(now.getTime() + 86_400_000);

type Checking = Parameters<typeof checkedDevices>[0];
type Entry = { deviceId: string; certificate: string; link: string };

let pairing: KeyPair;
let hospital: KeyPair;
let dir: string;
let journal: EnrolmentJournal;

/** A paired-device certificate the leaked pairing key signs for `device` (no invitation behind it). */
function forgedPaired(device: KeyPair): string {
  return toBase64Url(
    signDeviceCertificate(
      {
        type: DEVICE_CERTIFICATE_TYPE,
        deviceId: device.publicKey.fingerprint,
        devicePublicKey: device.publicKey.toBase64Url(),
        hospitalId,
        patientRef,
        invitationId: newRandomId(),
        bindingProof: toBase64Url(new Uint8Array(32)),
        issuedAt: formatTimestamp(now),
        expiresAt: formatTimestamp(later),
      },
      pairing.privateKey,
    ),
  );
}

/** `device` linked by `signer` (who holds `signerCertificate`), certified with `certifier`. */
function linked(device: KeyPair, signer: KeyPair, signerCertificate: string, certifier = pairing): Entry {
  const { document, signed } = buildDeviceLink({
    qr: { apiBase, hospitalId, devicePublicKey: device.publicKey, secret: newLinkSecret(), platform: 'ios' },
    linker: {
      deviceId: signer.publicKey.fingerprint,
      keys: signer,
      certificate: signerCertificate,
      hospitalId,
      patientRef,
      hospitalPublicKey: hospital.publicKey,
    },
    records: [],
    now,
  });
  const certificate = signLinkedDeviceCertificate(
    linkedCertificateFor(document, signed, { issuedAt: now, expiresAt: later }),
    certifier.privateKey,
  );
  return { deviceId: document.deviceId, certificate: toBase64Url(certificate), link: toBase64Url(signed) };
}

/** The connector, its cloud answering with no paired device and these linked ones. */
function connectorWith(links: Entry[]): Checking {
  const api = {
    call: async (request: { target: string }, schema: { parse: (value: unknown) => unknown }) =>
      schema.parse(request.target.endsWith('/device-links') ? { links } : { devices: [] }),
  };
  return {
    api: api as unknown as Checking['api'],
    pairingKey: pairing.publicKey,
    hospitalId,
    enrolments: journal,
    // No paired device is listed, so no binding key is ever asked for.
    custody: {} as Checking['custody'],
  };
}

beforeAll(() => {
  pairing = generateKeyPair();
  hospital = generateKeyPair();
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-linked-check-'));
  journal = await EnrolmentJournal.open(join(dir, 'enrolments.jsonl'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('linked devices the connector checks', () => {
  it('refuses a cycle of links that never reaches a device it accepted, and journals nothing', async () => {
    const x = generateKeyPair();
    const y = generateKeyPair();
    // Each signs the other's link with a certificate the leaked key made: both verify alone.
    const xEntry = linked(x, y, forgedPaired(y));
    const yEntry = linked(y, x, forgedPaired(x));
    const check = await checkedDevices(connectorWith([xEntry, yEntry]), patientRef, now);
    expect(check.accepted).toEqual([]);
    expect(check.refused).toEqual([
      { deviceId: x.publicKey.fingerprint, code: 'LINK_INVALID', linkedBy: y.publicKey.fingerprint },
      { deviceId: y.publicKey.fingerprint, code: 'LINK_INVALID', linkedBy: x.publicKey.fingerprint },
    ]);
    expect(await readFile(journal.path, 'utf8').catch(() => '')).toBe('');
  });

  it('refuses a chain from a device it never accepted, however long', async () => {
    const root = generateKeyPair();
    const first = generateKeyPair();
    const second = generateKeyPair();
    const firstEntry = linked(first, root, forgedPaired(root));
    const secondEntry = linked(second, first, firstEntry.certificate);
    const check = await checkedDevices(connectorWith([secondEntry, firstEntry]), patientRef, now);
    expect(check.accepted).toEqual([]);
    expect(Object.fromEntries(check.refused.map((r) => [r.deviceId, r.code]))).toEqual({
      [first.publicKey.fingerprint]: 'LINK_INVALID',
      [second.publicKey.fingerprint]: 'LINK_INVALID',
    });
  });

  it('refuses with stable codes a certificate by another key, a revoked device and a device listed twice', async () => {
    const signer = generateKeyPair();
    const signerCertificate = forgedPaired(signer);
    const wrongKey = linked(generateKeyPair(), signer, signerCertificate, generateKeyPair());
    const revoked = linked(generateKeyPair(), signer, signerCertificate);
    await journal.recordRevocation(revoked.deviceId, 'connector', now);
    const twice = linked(generateKeyPair(), signer, signerCertificate);
    const swapped = { ...linked(generateKeyPair(), signer, signerCertificate), deviceId: twice.deviceId };
    const check = await checkedDevices(connectorWith([wrongKey, revoked, twice, swapped]), patientRef, now);
    expect(check.accepted).toEqual([]);
    expect(check.refused.map((r) => r.code)).toEqual([
      'CERTIFICATE_INVALID',
      'DEVICE_REVOKED',
      'DEVICE_ALREADY_PAIRED',
      'LINK_INVALID',
    ]);
    expect(check.refused.map((r) => r.deviceId)).toEqual([
      wrongKey.deviceId,
      revoked.deviceId,
      twice.deviceId,
      twice.deviceId,
    ]);
  });
});
