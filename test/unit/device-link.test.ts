// Device linking's pure logic (docs/PROTOCOL.md §17): the link QR, the signed link document as
// the pairing function, the new phone and third parties check it, the linked certificate, and
// opening a record sent before the new phone existed. Each tampering yields one stable code.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, type KeyPair } from '../../shared/core/crypto/index.ts';
import {
  acceptDeviceLink,
  buildDeviceLink,
  contentKeyFromLink,
  decodeLinkQr,
  DEVICE_CERTIFICATE_TYPE,
  DEVICE_LINK_TYPE,
  encodeLinkQr,
  formatTimestamp,
  linkedCertificateFor,
  isErrorCode,
  linkIdOf,
  memorySpool,
  newLinkSecret,
  newRandomId,
  openRecordWithLink,
  readVerifiedManifest,
  recoverContentKey,
  sealUpload,
  signDeviceCertificate,
  signLinkedDeviceCertificate,
  toBase64Url,
  verifyDeviceLink,
  verifyLinkedDevice,
  type DeviceLink,
  type LinkerState,
  type LinkQr,
} from '../../shared/core/protocol/index.ts';
import { protocolCodeOf as codeOf, protocolCodeOfAsync as codeOfAsync } from '../helpers/protocol-errors.ts';

const hospitalId = 'st-example-zh';
const apiBase = 'https://api.clinic-bridge.example';
const now = new Date('2026-02-01T10:00:00Z');
const patientRef = newRandomId();
const otherPatient = newRandomId();

let hospital: KeyPair;
let pairing: KeyPair;
let linker: KeyPair;
let newPhone: KeyPair;
let linkerCertificate: string;
let container: Uint8Array;
let recordId: string;

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return new Uint8Array(Buffer.concat(parts));
}

function qrFor(keys: KeyPair, secret = newLinkSecret()): LinkQr {
  return { apiBase, hospitalId, devicePublicKey: keys.publicKey, secret, platform: 'android' };
}

function linkerState(overrides: Partial<LinkerState> = {}): LinkerState {
  return {
    deviceId: linker.publicKey.fingerprint,
    hospitalId,
    patientRef,
    status: 'active',
    expiresAt: new Date('2027-01-01T00:00:00Z'),
    certificate: linkerCertificate,
    ...overrides,
  };
}

async function makeLink(qr: LinkQr, signer: KeyPair = linker) {
  const manifest = await readVerifiedManifest([container], {
    hospitalPublicKey: hospital.publicKey,
    hospitalId,
    recordId,
  });
  return buildDeviceLink({
    qr,
    linker: {
      deviceId: linker.publicKey.fingerprint,
      keys: signer,
      certificate: linkerCertificate,
      hospitalId,
      patientRef,
      hospitalPublicKey: hospital.publicKey,
    },
    records: [{ recordId, contentKey: recoverContentKey(manifest, linker) }],
    now,
  });
}

beforeAll(async () => {
  hospital = generateKeyPair();
  pairing = generateKeyPair();
  linker = generateKeyPair();
  newPhone = generateKeyPair();
  linkerCertificate = toBase64Url(
    signDeviceCertificate(
      {
        type: DEVICE_CERTIFICATE_TYPE,
        deviceId: linker.publicKey.fingerprint,
        devicePublicKey: linker.publicKey.toBase64Url(),
        hospitalId,
        patientRef,
        invitationId: newRandomId(),
        bindingProof: toBase64Url(new Uint8Array(32).fill(7)),
        issuedAt: formatTimestamp(new Date('2026-01-01T00:00:00Z')),
        expiresAt: formatTimestamp(new Date('2027-01-01T00:00:00Z')),
      },
      pairing.privateKey,
    ),
  );
  // A record sealed for the linker alone, before the new phone existed.
  const file = new TextEncoder().encode('discharge letter, sent before the new phone');
  const sealed = await sealUpload({
    hospitalId,
    hospital: hospital.privateKey,
    patientRef,
    operatorRef: newRandomId(),
    recipients: [{ deviceId: linker.publicKey.fingerprint, publicKey: linker.publicKey }],
    contentClass: 'document',
    header: { filename: 'letter.txt', mediaType: 'text/plain', size: file.length },
    file: [file],
    spool: memorySpool(),
    createdAt: new Date('2026-01-20T10:00:00Z'),
    expiresAt: new Date('2026-04-20T10:00:00Z'),
  });
  recordId = sealed.manifest.recordId;
  container = await collect(sealed.bytes());
});

describe('link QR', () => {
  it('round-trips and carries no private key', () => {
    const qr = qrFor(newPhone);
    const text = encodeLinkQr(qr);
    expect(text.startsWith('CBL1:')).toBe(true);
    const back = decodeLinkQr(text);
    expect(back.devicePublicKey.fingerprint).toBe(newPhone.publicKey.fingerprint);
    expect(Buffer.from(back.secret)).toEqual(Buffer.from(qr.secret));
    expect([back.apiBase, back.hospitalId, back.platform]).toEqual([apiBase, hospitalId, 'android']);
  });

  it('is decoded strictly', () => {
    const text = encodeLinkQr(qrFor(newPhone));
    expect(codeOf(() => decodeLinkQr(`CBL2:${text.slice(5)}`))).toBe('QR_VERSION_UNSUPPORTED');
    expect(codeOf(() => decodeLinkQr(`CB1:${text.slice(5)}`))).toBe('QR_MALFORMED');
    expect(codeOf(() => decodeLinkQr(`${text}AA`))).toBe('QR_MALFORMED');
    expect(codeOf(() => decodeLinkQr(text.slice(0, -4)))).toBe('QR_MALFORMED');
    expect(codeOf(() => encodeLinkQr({ ...qrFor(newPhone), apiBase: 'http://example.org' }))).toBe(
      'QR_API_BASE_INVALID',
    );
  });
});

describe('the link document', () => {
  it('lets the new phone open a record sent before it existed', async () => {
    const qr = qrFor(newPhone);
    const { signed } = await makeLink(qr);
    const server = verifyDeviceLink(signed, { linker: linkerState(), now });
    expect(server.deviceId).toBe(newPhone.publicKey.fingerprint);
    const accepted = acceptDeviceLink(signed, qr);
    expect(accepted.keys.map((k) => k.recordId)).toEqual([recordId]);
    const opened = await openRecordWithLink([container], {
      device: newPhone,
      hospitalPublicKey: hospital.publicKey,
      hospitalId,
      recordId,
      link: accepted,
    });
    const text = new TextDecoder().decode(await collect(opened.file));
    expect(text).toBe('discharge letter, sent before the new phone');
    // Without the link the new phone is not a recipient.
    expect(
      await codeOfAsync(() =>
        openRecordWithLink([container], {
          device: newPhone,
          hospitalPublicKey: hospital.publicKey,
          hospitalId,
          recordId,
        }),
      ),
    ).toBe('NOT_A_RECIPIENT');
  });

  it('carries nothing secret: the QR secret is not in the signed bytes', async () => {
    const qr = qrFor(newPhone);
    const { signed } = await makeLink(qr);
    const text = Buffer.from(signed).toString('latin1');
    expect(text).not.toContain(Buffer.from(qr.secret).toString('latin1'));
    expect(text).not.toContain(toBase64Url(qr.secret));
  });

  it('wrong signer: a link signed by a key that is not the named device is LINK_INVALID', async () => {
    const { signed } = await makeLink(qrFor(newPhone), generateKeyPair());
    expect(codeOf(() => verifyDeviceLink(signed, { linker: linkerState(), now }))).toBe('LINK_INVALID');
    expect(codeOf(() => verifyDeviceLink(signed, { linker: undefined, now }))).toBe('LINK_INVALID');
    expect(codeOf(() => acceptDeviceLink(signed, qrFor(newPhone)))).toBe('LINK_INVALID');
  });

  it('revoked or expired signer: DEVICE_REVOKED', async () => {
    const { signed } = await makeLink(qrFor(newPhone));
    expect(codeOf(() => verifyDeviceLink(signed, { linker: linkerState({ status: 'revoked' }), now }))).toBe(
      'DEVICE_REVOKED',
    );
    expect(codeOf(() => verifyDeviceLink(signed, { linker: linkerState({ expiresAt: now }), now }))).toBe(
      'DEVICE_REVOKED',
    );
  });

  it('replayed QR secret: LINK_REPLAYED; a stale link: REQUEST_EXPIRED', async () => {
    const qr = qrFor(newPhone);
    const { signed } = await makeLink(qr);
    const usedLinkIds = new Set([linkIdOf(qr.secret)]);
    expect(codeOf(() => verifyDeviceLink(signed, { linker: linkerState(), now, usedLinkIds }))).toBe(
      'LINK_REPLAYED',
    );
    const later = new Date(now.getTime() + 301_000);
    expect(codeOf(() => verifyDeviceLink(signed, { linker: linkerState(), now: later }))).toBe(
      'REQUEST_EXPIRED',
    );
  });

  it('other patient: a link whose signer belongs to another patient is LINK_INVALID', async () => {
    const { signed } = await makeLink(qrFor(newPhone));
    expect(
      codeOf(() => verifyDeviceLink(signed, { linker: linkerState({ patientRef: otherPatient }), now })),
    ).toBe('LINK_INVALID');
    expect(
      codeOf(() => verifyDeviceLink(signed, { linker: linkerState({ certificate: 'AAAA' }), now })),
    ).toBe('LINK_INVALID');
  });

  it('the new phone refuses a link not made from its own QR', async () => {
    const { signed } = await makeLink(qrFor(newPhone));
    // Same key, another secret: whoever made it never saw this phone's QR (the cloud, say).
    expect(codeOf(() => acceptDeviceLink(signed, qrFor(newPhone)))).toBe('LINK_PROOF_INVALID');
    // For another phone altogether.
    const other = generateKeyPair();
    expect(codeOf(() => acceptDeviceLink(signed, qrFor(other)))).toBe('LINK_INVALID');
  });

  it('wrong record binding: a wrap moved to another record is KEY_BINDING_MISMATCH', async () => {
    const qr = qrFor(newPhone);
    const { document } = await makeLink(qr);
    const moved: DeviceLink = {
      ...document,
      keys: [{ recordId: newRandomId(), wrappedKey: document.keys[0]!.wrappedKey }],
    };
    expect(codeOf(() => contentKeyFromLink(moved, moved.keys[0]!.recordId, newPhone))).toBe(
      'KEY_BINDING_MISMATCH',
    );
    // And a wrap for the new phone does not open with another key.
    expect(codeOf(() => contentKeyFromLink(document, recordId, generateKeyPair()))).toBe('KEY_UNWRAP_FAILED');
    expect(codeOf(() => contentKeyFromLink(document, newRandomId(), newPhone))).toBe('NOT_A_RECIPIENT');
  });

  it('a tampered signed link does not verify', async () => {
    const { signed } = await makeLink(qrFor(newPhone));
    const tampered = signed.slice();
    const at = Buffer.from(tampered).indexOf(DEVICE_LINK_TYPE) + DEVICE_LINK_TYPE.length + 20;
    tampered[at] = tampered[at]! ^ 0x01;
    expect(codeOf(() => verifyDeviceLink(tampered, { linker: linkerState(), now }))).toBe('LINK_INVALID');
  });
});

describe('the linked certificate', () => {
  it('third parties verify the certificate, the link and its signer with the pairing key', async () => {
    const { document, signed } = await makeLink(qrFor(newPhone));
    const certificate = signLinkedDeviceCertificate(
      linkedCertificateFor(document, signed, { issuedAt: now, expiresAt: new Date('2027-01-01T00:00:00Z') }),
      pairing.privateKey,
    );
    const checked = verifyLinkedDevice({ certificate, link: signed }, pairing.publicKey, now);
    expect(checked.certificate.deviceId).toBe(newPhone.publicKey.fingerprint);
    expect(checked.linker.deviceId).toBe(linker.publicKey.fingerprint);
    expect(
      codeOf(() => verifyLinkedDevice({ certificate, link: signed }, generateKeyPair().publicKey, now)),
    ).toBe('CERTIFICATE_INVALID');
    const other = await makeLink(qrFor(newPhone));
    expect(
      codeOf(() => verifyLinkedDevice({ certificate, link: other.signed }, pairing.publicKey, now)),
    ).toBe('LINK_INVALID');
  });
});

describe('parsers on hostile input', () => {
  it('decodeLinkQr, verifyDeviceLink and acceptDeviceLink throw only catalogued codes, never INTERNAL_ERROR', async () => {
    const qr = qrFor(newPhone);
    const text = encodeLinkQr(qr);
    const { signed } = await makeLink(qr);
    const mutated = (source: Uint8Array) =>
      fc.oneof(
        fc.tuple(fc.nat({ max: source.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([at, bits]) => {
          const bytes = source.slice();
          bytes[at] = bytes[at]! ^ bits;
          return bytes;
        }),
        fc.nat({ max: source.length - 1 }).map((length) => source.slice(0, length)),
        fc.uint8Array({ maxLength: 512 }),
      );
    // A mutated QR may still be a valid QR (another key, say); a mutated signed link never verifies.
    const refusedWith = (run: () => unknown, allowed: (code: string) => boolean, mayPass = false) => {
      const code = codeOf(run);
      if (code === 'no error' && mayPass) return;
      expect(isErrorCode(code) && code !== 'INTERNAL_ERROR' && allowed(code), code).toBe(true);
    };
    fc.assert(
      fc.property(mutated(new TextEncoder().encode(text)), (bytes) => {
        refusedWith(
          () => decodeLinkQr(new TextDecoder().decode(bytes)),
          (code) => code.startsWith('QR_'),
          true,
        );
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(mutated(signed), (bytes) => {
        refusedWith(
          () => verifyDeviceLink(bytes, { linker: linkerState(), now }),
          (code) => code !== 'no error',
        );
        refusedWith(
          () => acceptDeviceLink(bytes, qr),
          (code) => code !== 'no error',
        );
      }),
      { numRuns: 300 },
    );
  });
});
