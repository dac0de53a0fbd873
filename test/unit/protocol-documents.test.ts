import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { KeyPair } from '../../shared/core/crypto/index.ts';
import { generateKeyPair, sign } from '../../shared/core/crypto/index.ts';
import type { DeviceCertificate, PairRequest } from '../../shared/core/protocol/index.ts';
import {
  bindingProofText,
  canonicalJson,
  certificateFor,
  deriveBindingSecret,
  memoryHmacKey,
  derivePatientRef,
  DEVICE_CERTIFICATE_TYPE,
  documentFromText,
  documentToText,
  fromBase64Url,
  MAX_DOCUMENT_BYTES,
  newInvitationToken,
  newRandomId,
  PAIR_REQUEST_TYPE,
  pairBodySchema,
  readDocumentUnverified,
  RECEIPT_TYPE,
  rejectionReceipt,
  signDeviceCertificate,
  signDocument,
  signedMessageUnverified,
  signPairRequest,
  signReceipt,
  tokenDigest,
  toBase64Url,
  verifyDeviceCertificate,
  verifyDocument,
  verifyEnrolment,
  verifyPairRequest,
  verifyReceipt,
} from '../../shared/core/protocol/index.ts';
import { protocolCodeOf as codeOf } from '../helpers/protocol-errors.ts';

const noteSchema = z.strictObject({ type: z.literal('cb/test-note/v1'), n: z.int(), text: z.string() });
const otherSchema = z.strictObject({ type: z.literal('cb/other-note/v1'), n: z.int(), text: z.string() });

let signer: KeyPair;
let stranger: KeyPair;
let pairing: KeyPair;
let device: KeyPair;
const pseudonymKey = memoryHmacKey(
  Uint8Array.from({ length: 32 }, (_, i) => i),
  1,
);
const bindingKey = memoryHmacKey(
  Uint8Array.from({ length: 32 }, (_, i) => 0x20 + i),
  1,
);
const otherMaster = memoryHmacKey(
  Uint8Array.from({ length: 32 }, (_, i) => 255 - i),
  1,
);
const hospitalId = 'st-example-zh';
const now = new Date('2026-01-01T12:00:00Z');

beforeAll(async () => {
  signer = generateKeyPair();
  stranger = generateKeyPair();
  pairing = generateKeyPair();
  device = generateKeyPair();
});

describe('signed documents', () => {
  const note = { type: 'cb/test-note/v1' as const, n: 7, text: 'héllo "world"' };

  it('round-trips, in canonical JSON readable by anyone (not confidential)', () => {
    const signed = signDocument(noteSchema, note, signer.privateKey);
    expect(verifyDocument(signed, signer.publicKey, 'cb/test-note/v1', noteSchema)).toEqual(note);
    const message = new TextDecoder().decode(signedMessageUnverified(signed));
    expect(message).toBe('{"n":7,"text":"héllo \\"world\\"","type":"cb/test-note/v1"}');
    expect(readDocumentUnverified(signed, 'cb/test-note/v1', noteSchema)).toEqual(note);
  });

  it('rejects another key, another type, tampering', () => {
    const signed = signDocument(noteSchema, note, signer.privateKey);
    expect(codeOf(() => verifyDocument(signed, stranger.publicKey, 'cb/test-note/v1', noteSchema))).toBe(
      'SIGNATURE_INVALID',
    );
    expect(codeOf(() => verifyDocument(signed, signer.publicKey, 'cb/other-note/v1', otherSchema))).toBe(
      'DOCUMENT_TYPE_MISMATCH',
    );
    for (let position = 0; position < signed.length; position += 3) {
      const bad = signed.slice();
      bad[position]! ^= 0x02;
      expect(['SIGNATURE_INVALID', 'DOCUMENT_INVALID', 'DOCUMENT_TOO_LARGE']).toContain(
        codeOf(() => verifyDocument(bad, signer.publicKey, 'cb/test-note/v1', noteSchema)),
      );
    }
  });

  it('rejects a validly signed message that is not canonical or fails the schema', () => {
    const signedText = (text: string) => sign(new TextEncoder().encode(text), signer.privateKey);
    for (const text of [
      '{"type":"cb/test-note/v1","n":7,"text":"x"}', // keys not sorted
      '{"n":7, "text":"x","type":"cb/test-note/v1"}', // whitespace
      '{"n":7.5,"text":"x","type":"cb/test-note/v1"}', // float
      '{"n":7,"n":8,"text":"x","type":"cb/test-note/v1"}', // duplicate key
      '{"extra":1,"n":7,"text":"x","type":"cb/test-note/v1"}', // unknown field
      '{"n":"7","text":"x","type":"cb/test-note/v1"}', // wrong type
      '[1,2]',
      'not json',
    ]) {
      expect({
        text,
        code: codeOf(() => verifyDocument(signedText(text), signer.publicKey, 'cb/test-note/v1', noteSchema)),
      }).toEqual({
        text,
        code: 'DOCUMENT_INVALID',
      });
    }
    const badUtf8 = sign(Uint8Array.of(0x7b, 0xff, 0x7d), signer.privateKey);
    expect(codeOf(() => verifyDocument(badUtf8, signer.publicKey, 'cb/test-note/v1', noteSchema))).toBe(
      'DOCUMENT_INVALID',
    );
  });

  it('bounds size and refuses to sign what fails its schema', () => {
    const big = { ...note, text: 'x'.repeat(MAX_DOCUMENT_BYTES) };
    expect(codeOf(() => signDocument(noteSchema, big, signer.privateKey))).toBe('DOCUMENT_TOO_LARGE');
    const signedBig = sign(new TextEncoder().encode(canonicalJson(big)), signer.privateKey);
    expect(codeOf(() => verifyDocument(signedBig, signer.publicKey, 'cb/test-note/v1', noteSchema))).toBe(
      'DOCUMENT_TOO_LARGE',
    );
    expect(codeOf(() => signDocument(noteSchema, { ...note, n: 1.5 }, signer.privateKey))).toBe(
      'INVALID_REQUEST',
    );
  });

  it('canonical JSON: sorted keys, integers only, no undefined', () => {
    expect(canonicalJson({ b: [3, { d: null, c: true }], a: 'é' })).toBe(
      '{"a":"é","b":[3,{"c":true,"d":null}]}',
    );
    for (const bad of [
      { a: 1.5 },
      { a: undefined },
      { a: NaN },
      { a: 2 ** 60 },
      { a: new Date(0) },
      { a: '\ud800' },
    ]) {
      expect(codeOf(() => canonicalJson(bad))).toBe('INVALID_REQUEST');
    }
  });
});

/** A complete, valid enrolment: what pairing would produce for `patientNumber`. */
function enrol(patientNumber = '123456789', key: KeyPair = device) {
  const patientRef = derivePatientRef(pseudonymKey, patientNumber);
  const invitationId = newRandomId();
  const secret = deriveBindingSecret(bindingKey, invitationId, patientRef);
  const certificate: DeviceCertificate = {
    type: DEVICE_CERTIFICATE_TYPE,
    deviceId: key.publicKey.fingerprint,
    devicePublicKey: key.publicKey.toBase64Url(),
    hospitalId,
    patientRef,
    invitationId,
    bindingProof: bindingProofText(secret, invitationId, key.publicKey),
    issuedAt: '2026-01-01T11:00:00Z',
    expiresAt: '2027-01-01T11:00:00Z',
  };
  return { patientRef, invitationId, secret, certificate };
}

describe('device certificates and the connector enrolment check (invariant 3)', () => {
  it('verifies a genuine enrolment', () => {
    const { patientRef, certificate } = enrol();
    const signed = signDeviceCertificate(certificate, pairing.privateKey);
    const verified = verifyEnrolment({
      certificate: signed,
      pairingPublicKey: pairing.publicKey,
      bindingKeyFor: () => bindingKey,
      hospitalId,
      patientRef,
      now,
    });
    expect(verified.deviceId).toBe(device.publicKey.fingerprint);
    expect(verified.publicKey.equals(device.publicKey)).toBe(true);
  });

  it('the platform cannot move an enrolment to another patient, even with a valid certificate', () => {
    const { certificate } = enrol();
    const otherPatient = derivePatientRef(pseudonymKey, '987654321');
    const moved = signDeviceCertificate({ ...certificate, patientRef: otherPatient }, pairing.privateKey);
    expect(
      codeOf(() =>
        verifyEnrolment({
          certificate: moved,
          pairingPublicKey: pairing.publicKey,
          bindingKeyFor: () => bindingKey,
          hospitalId,
          patientRef: otherPatient,
          now,
        }),
      ),
    ).toBe('BINDING_PROOF_INVALID');
  });

  it('nor to another invitation, nor swap in another device key', () => {
    const { certificate, patientRef } = enrol();
    const otherInvitation = signDeviceCertificate(
      { ...certificate, invitationId: newRandomId() },
      pairing.privateKey,
    );
    const check = {
      pairingPublicKey: pairing.publicKey,
      bindingKeyFor: () => bindingKey,
      hospitalId,
      patientRef,
      now,
    };
    expect(codeOf(() => verifyEnrolment({ ...check, certificate: otherInvitation }))).toBe(
      'BINDING_PROOF_INVALID',
    );
    const intruder = stranger.publicKey;
    const otherDevice = signDeviceCertificate(
      { ...certificate, deviceId: intruder.fingerprint, devicePublicKey: intruder.toBase64Url() },
      pairing.privateKey,
    );
    expect(codeOf(() => verifyEnrolment({ ...check, certificate: otherDevice }))).toBe(
      'BINDING_PROOF_INVALID',
    );
    // A platform without the master secret cannot compute a proof for its own key.
    const guessed = enrol('123456789', stranger).certificate;
    const forged = signDeviceCertificate(
      {
        ...guessed,
        bindingProof: bindingProofText(
          deriveBindingSecret(otherMaster, guessed.invitationId, patientRef),
          guessed.invitationId,
          intruder,
        ),
      },
      pairing.privateKey,
    );
    expect(codeOf(() => verifyEnrolment({ ...check, certificate: forged }))).toBe('BINDING_PROOF_INVALID');
  });

  it('refuses certificates from another signer, for another hospital or patient, or expired', () => {
    const { certificate, patientRef } = enrol();
    const check = {
      pairingPublicKey: pairing.publicKey,
      bindingKeyFor: () => bindingKey,
      hospitalId,
      patientRef,
      now,
    };
    const byStranger = signDeviceCertificate(certificate, stranger.privateKey);
    expect(codeOf(() => verifyEnrolment({ ...check, certificate: byStranger }))).toBe('CERTIFICATE_INVALID');
    const signed = signDeviceCertificate(certificate, pairing.privateKey);
    expect(
      codeOf(() => verifyEnrolment({ ...check, certificate: signed, hospitalId: 'other-hospital' })),
    ).toBe('CERTIFICATE_INVALID');
    expect(codeOf(() => verifyEnrolment({ ...check, certificate: signed, patientRef: newRandomId() }))).toBe(
      'CERTIFICATE_INVALID',
    );
    expect(
      codeOf(() => verifyDeviceCertificate(signed, pairing.publicKey, new Date('2027-01-01T11:00:00Z'))),
    ).toBe('CERTIFICATE_EXPIRED');
    expect(
      codeOf(() => verifyDeviceCertificate(signed, pairing.publicKey, new Date('2025-01-01T00:00:00Z'))),
    ).toBe('CERTIFICATE_INVALID');
  });

  it('a certificate whose deviceId is not its key fingerprint cannot even be signed', () => {
    const { certificate } = enrol();
    expect(
      codeOf(() =>
        signDeviceCertificate(
          { ...certificate, deviceId: stranger.publicKey.fingerprint },
          pairing.privateKey,
        ),
      ),
    ).toBe('INVALID_REQUEST');
  });

  it('a receipt signed by the same key is not a certificate', () => {
    const receipt = signReceipt(
      rejectionReceipt({ uploadId: newRandomId(), hospitalId, at: now, errorCode: 'UPLOAD_MALFORMED' }),
      pairing.privateKey,
    );
    expect(codeOf(() => verifyDeviceCertificate(receipt, pairing.publicKey, now))).toBe(
      'CERTIFICATE_INVALID',
    );
  });
});

describe('pair request (proof of possession)', () => {
  function request(
    key: KeyPair = device,
    token = newInvitationToken(),
  ): { signed: Uint8Array; token: string; body: PairRequest } {
    const { invitationId, secret } = enrol();
    const body: PairRequest = {
      type: PAIR_REQUEST_TYPE,
      invitationId,
      tokenSha256: tokenDigest(token),
      devicePublicKey: key.publicKey.toBase64Url(),
      deviceId: key.publicKey.fingerprint,
      bindingProof: bindingProofText(secret, invitationId, key.publicKey),
      fcmToken: 'fcm:APA91bExampleToken_-',
      platform: 'android',
      issuedAt: '2026-01-01T12:00:00Z',
    };
    return { signed: signPairRequest(body, key.privateKey), token, body };
  }

  it('verifies with the key it enrols, and holds only the token digest', () => {
    const { signed, token, body } = request();
    const verified = verifyPairRequest(signed, token, now);
    expect(verified.request).toEqual(body);
    expect(verified.devicePublicKey.equals(device.publicKey)).toBe(true);
    expect(Buffer.from(signed).includes(Buffer.from(token))).toBe(false);
    expect(Buffer.from(signed).includes(Buffer.from(fromBase64Url(token)!))).toBe(false);
  });

  it('rejects a signature by another key, another token, a stale time, tampering', () => {
    const { body, token } = request();
    const bySomeoneElse = signPairRequest(body, stranger.privateKey);
    expect(codeOf(() => verifyPairRequest(bySomeoneElse, token, now))).toBe('SIGNATURE_INVALID');
    const { signed } = request();
    expect(codeOf(() => verifyPairRequest(signed, newInvitationToken(), now))).toBe('INVALID_REQUEST');
    const fresh = request();
    expect(codeOf(() => verifyPairRequest(fresh.signed, fresh.token, new Date('2026-01-01T12:05:01Z')))).toBe(
      'REQUEST_EXPIRED',
    );
    expect(codeOf(() => verifyPairRequest(fresh.signed, fresh.token, new Date('2026-01-01T11:54:59Z')))).toBe(
      'REQUEST_EXPIRED',
    );
    const bad = fresh.signed.slice();
    bad[bad.length - 5]! ^= 1;
    expect(codeOf(() => verifyPairRequest(bad, fresh.token, now))).toBe('SIGNATURE_INVALID');
  });
});

describe('receipts', () => {
  const ingest = () => pairing; // any key pair; ingest has its own

  it('accepted and rejected receipts round-trip', () => {
    const uploadId = newRandomId();
    const recordId = newRandomId();
    const accepted = {
      type: RECEIPT_TYPE,
      uploadId,
      hospitalId,
      at: '2026-01-01T12:00:00Z',
      status: 'accepted',
      recordId,
    } as const;
    expect(verifyReceipt(signReceipt(accepted, ingest().privateKey), ingest().publicKey)).toEqual(accepted);
    const rejected = rejectionReceipt({
      uploadId,
      hospitalId,
      at: now,
      errorCode: 'DIGEST_MISMATCH',
      recordId,
    });
    expect(verifyReceipt(signReceipt(rejected, ingest().privateKey), ingest().publicKey)).toEqual(rejected);
    expect(rejected).toMatchObject({
      status: 'rejected',
      errorCode: 'DIGEST_MISMATCH',
      at: '2026-01-01T12:00:00Z',
    });
  });

  it('an accepted receipt needs a record id; a rejection needs a code', () => {
    const base = { type: RECEIPT_TYPE, uploadId: newRandomId(), hospitalId, at: '2026-01-01T12:00:00Z' };
    expect(codeOf(() => signReceipt({ ...base, status: 'accepted' } as never, ingest().privateKey))).toBe(
      'INVALID_REQUEST',
    );
    expect(codeOf(() => signReceipt({ ...base, status: 'rejected' } as never, ingest().privateKey))).toBe(
      'INVALID_REQUEST',
    );
    expect(
      codeOf(() =>
        signReceipt(
          { ...base, status: 'accepted', recordId: newRandomId(), errorCode: 'X_Y' } as never,
          ingest().privateKey,
        ),
      ),
    ).toBe('INVALID_REQUEST');
  });

  it('a receipt verified with another key, or as another type, fails', () => {
    const signed = signReceipt(
      rejectionReceipt({ uploadId: newRandomId(), hospitalId, at: now, errorCode: 'PATH_MISMATCH' }),
      ingest().privateKey,
    );
    expect(codeOf(() => verifyReceipt(signed, stranger.publicKey))).toBe('SIGNATURE_INVALID');
    expect(toBase64Url(signed).length).toBeGreaterThan(0);
  });
});

describe('the pairing flow end to end, as JSON bodies', () => {
  it('QR secret on the device → pair body → certificate → the connector accepts the device', () => {
    const patientRef = derivePatientRef(pseudonymKey, 'P-0042');
    const invitationId = newRandomId();
    const token = newInvitationToken();
    // Device: has the binding secret from the QR code (the connector derived it).
    const secret = deriveBindingSecret(bindingKey, invitationId, patientRef);
    const request: PairRequest = {
      type: PAIR_REQUEST_TYPE,
      invitationId,
      tokenSha256: tokenDigest(token),
      devicePublicKey: device.publicKey.toBase64Url(),
      deviceId: device.publicKey.fingerprint,
      bindingProof: bindingProofText(secret, invitationId, device.publicKey),
      fcmToken: 'fcm-token',
      platform: 'ios',
      issuedAt: '2026-01-01T12:00:10Z',
    };
    const body = JSON.stringify({
      token,
      pairRequest: documentToText(signPairRequest(request, device.privateKey)),
    });
    // Pairing function: verifies proof of possession, then (in its transaction) the invitation.
    const parsed = pairBodySchema.parse(JSON.parse(body));
    const verified = verifyPairRequest(
      documentFromText(parsed.pairRequest, 'pairRequest'),
      parsed.token,
      now,
    );
    const certificate = signDeviceCertificate(
      certificateFor(
        verified.request,
        { hospitalId, patientRef },
        { issuedAt: now, expiresAt: new Date('2026-07-01T00:00:00Z') },
      ),
      pairing.privateKey,
    );
    // Connector: certificate AND binding proof.
    const accepted = verifyEnrolment({
      certificate,
      pairingPublicKey: pairing.publicKey,
      bindingKeyFor: () => bindingKey,
      hospitalId,
      patientRef,
      now,
    });
    expect(accepted.deviceId).toBe(device.publicKey.fingerprint);
    // The signed documents hold neither the token nor the binding secret.
    for (const signed of [certificate, documentFromText(parsed.pairRequest, 'pairRequest')]) {
      expect(Buffer.from(signed).includes(Buffer.from(secret))).toBe(false);
      expect(Buffer.from(signed).includes(Buffer.from(toBase64Url(secret)))).toBe(false);
      expect(Buffer.from(signed).includes(Buffer.from(token))).toBe(false);
    }
    expect(codeOf(() => documentFromText('***', 'pairRequest'))).toBe('INVALID_REQUEST');
  });
});
