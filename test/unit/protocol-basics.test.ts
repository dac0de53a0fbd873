import { beforeAll, describe, expect, it } from 'vitest';
import type { KeyPair } from '../../shared/core/crypto/index.ts';
import { CryptoError, generateKeyPair, importPublicKey } from '../../shared/core/crypto/index.ts';
import type { UploadManifest } from '../../shared/core/protocol/index.ts';
import {
  ackBodySchema,
  bindingProofText,
  checkManifestContext,
  computeBindingProof,
  createInvitationRequestSchema,
  deriveBindingSecret,
  deriveOperatorRef,
  derivePatientRef,
  deviceIdSchema,
  ERROR_CODE_LIST,
  ERROR_CODES,
  errorBodySchema,
  formatTimestamp,
  fromBase64Url,
  invitationIdSchema,
  memoryHmacKey,
  newRandomId,
  pageQuerySchema,
  pairBodySchema,
  parseJsonBody,
  parseUploadObjectName,
  ProtocolError,
  pushData,
  pushDataSchema,
  receiptObjectName,
  timestampSchema,
  tokenDigest,
  toProtocolError,
  uploadObjectName,
  verifyBindingProof,
} from '../../shared/core/protocol/index.ts';
import { protocolCodeOf as codeOf } from '../helpers/protocol-errors.ts';

// Test vectors printed in docs/PROTOCOL.md §3: the pseudonym key is bytes 00…1f, the binding
// key bytes 20…3f.
const PSEUDONYM_KEY = memoryHmacKey(
  Uint8Array.from({ length: 32 }, (_, i) => i),
  1,
);
const BINDING_KEY = memoryHmacKey(
  Uint8Array.from({ length: 32 }, (_, i) => 0x20 + i),
  1,
);
const VECTORS = {
  patientNumber: '123456789',
  patientRef: 's1a9M78VO2BvK25CsihnyA',
  staffId: 'frontdesk.jansen',
  operatorRef: 'toq4cUEiaoqWlVdlCGc2zg',
  invitationId: 'EBESExQVFhcYGRobHB0eHw',
  bindingSecret: 'v1GTmpgG9yLeyjXrF6w3GM8dsGjTL7gnswT92oMFT-s',
  devicePublicKey: 'VUVDMgAAAC2fIV30AiTZSYpINOr0o-cgsTHvAQ8wuRlMXiyKhWBIadA5XTCX',
  deviceId: '56rf8cVN6JNYk--Rd2mpOWxvzkAua9hALBm3HHDM37U',
  bindingProof: 'PctCI3-HFY8Udq5t8rJWPnMFMzz7xtSsvWsiCTVhctQ',
  token: 'QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8',
  tokenSha256: 'yipP5yf6rs8W7NEwqG4IhcVUDAU3U0BEUHHAZXVV_UI',
};

let other: KeyPair;

beforeAll(async () => {
  other = generateKeyPair();
});

describe('identifiers', () => {
  it('patientRef: keyed, truncated to 128 bits, stable for the documented vector', () => {
    expect(derivePatientRef(PSEUDONYM_KEY, VECTORS.patientNumber)).toBe(VECTORS.patientRef);
    expect(derivePatientRef(PSEUDONYM_KEY, '123456780')).not.toBe(VECTORS.patientRef);
    expect(derivePatientRef(memoryHmacKey(new Uint8Array(32).fill(9), 1), VECTORS.patientNumber)).not.toBe(
      VECTORS.patientRef,
    );
    // The binding key makes other pseudonyms: the two keys are never interchangeable.
    expect(derivePatientRef(BINDING_KEY, VECTORS.patientNumber)).not.toBe(VECTORS.patientRef);
    expect(VECTORS.patientRef).toHaveLength(22);
    // NFC normalisation: one patient number, one pseudonym.
    expect(derivePatientRef(PSEUDONYM_KEY, 'Ame\u0301lie-1')).toBe(
      derivePatientRef(PSEUDONYM_KEY, 'Amélie-1'),
    );
    for (const bad of ['', ' 123', '123 ', 'a\nb', 'x'.repeat(129)]) {
      expect(codeOf(() => derivePatientRef(PSEUDONYM_KEY, bad))).toBe('INVALID_REQUEST');
    }
    expect(codeOf(() => memoryHmacKey(new Uint8Array(16), 1))).toBe('INVALID_REQUEST');
  });

  it('operatorRef: a member of staff’s pseudonym, never the same as a patient’s for the same text', () => {
    expect(deriveOperatorRef(PSEUDONYM_KEY, VECTORS.staffId)).toBe(VECTORS.operatorRef);
    expect(deriveOperatorRef(PSEUDONYM_KEY, VECTORS.patientNumber)).not.toBe(VECTORS.patientRef);
    expect(codeOf(() => deriveOperatorRef(PSEUDONYM_KEY, ' padded'))).toBe('INVALID_REQUEST');
  });

  it('memory-held HMAC keys are zeroed by destroy() and refuse use afterwards', () => {
    const bytes = new Uint8Array(32).fill(5);
    const key = memoryHmacKey(bytes, 2);
    bytes.fill(0); // the key holds a copy of its own
    const before = derivePatientRef(key, '42');
    expect(derivePatientRef(memoryHmacKey(new Uint8Array(32).fill(5), 2), '42')).toBe(before);
    key.destroy();
    expect(codeOf(() => derivePatientRef(key, '42'))).toBe('INTERNAL_ERROR');
  });

  it('random ids are 22-character canonical base64url of 16 bytes', () => {
    const id = newRandomId();
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(invitationIdSchema.safeParse(id).success).toBe(true);
    // "…w" and "…x" decode to the same bytes; only the canonical one is accepted.
    expect(invitationIdSchema.safeParse('EBESExQVFhcYGRobHB0eHw').success).toBe(true);
    expect(invitationIdSchema.safeParse('EBESExQVFhcYGRobHB0eHx').success).toBe(false);
    expect(invitationIdSchema.safeParse('EBESExQVFhcYGRobHB0eH+').success).toBe(false);
    expect(deviceIdSchema.safeParse(VECTORS.deviceId).success).toBe(true);
    expect(fromBase64Url('QQ==')).toBeUndefined();
    expect(fromBase64Url('QR')).toBeUndefined();
    expect(fromBase64Url('QQ')).toEqual(Uint8Array.of(0x41));
  });

  it('timestamps: UTC, whole seconds, real dates', () => {
    expect(formatTimestamp(new Date('2026-01-01T10:00:00.999Z'))).toBe('2026-01-01T10:00:00Z');
    expect(timestampSchema.safeParse('2026-01-01T10:00:00Z').success).toBe(true);
    for (const bad of [
      '2026-01-01T10:00:00.000Z',
      '2026-01-01T10:00:00+01:00',
      '2026-02-30T10:00:00Z',
      '2026-01-01 10:00:00Z',
    ]) {
      expect(timestampSchema.safeParse(bad).success).toBe(false);
    }
  });

  it('object names', () => {
    const uploadId = newRandomId();
    const name = uploadObjectName('st-example-zh', uploadId);
    expect(name).toBe(`hospitals/st-example-zh/uploads/${uploadId}.cbr`);
    expect(parseUploadObjectName(name)).toEqual({ hospitalId: 'st-example-zh', uploadId });
    expect(receiptObjectName('st-example-zh', uploadId)).toBe(
      `hospitals/st-example-zh/receipts/${uploadId}.cbreceipt`,
    );
    for (const bad of [
      `hospitals/st-example-zh/uploads/${uploadId}.cbr.tmp`,
      `hospitals/ST/uploads/${uploadId}.cbr`,
      `hospitals/st-example-zh/uploads/../${uploadId}.cbr`,
      `hospitals/st-example-zh/other/${uploadId}.cbr`,
      `hospitals/st-example-zh/uploads/${uploadId.slice(0, 21)}x.cbr`.replace(/x\.cbr$/, '\u00e9.cbr'),
    ]) {
      expect(codeOf(() => parseUploadObjectName(bad))).toBe('PATH_MISMATCH');
    }
    expect(codeOf(() => uploadObjectName('../x', uploadId))).toBe('INVALID_REQUEST');
  });
});

describe('binding secret and proof (invariant 3)', () => {
  it('match the documented vectors', () => {
    const secret = deriveBindingSecret(BINDING_KEY, VECTORS.invitationId, VECTORS.patientRef);
    expect(Buffer.from(secret).toString('base64url')).toBe(VECTORS.bindingSecret);
    const key = importPublicKey(VECTORS.devicePublicKey);
    expect(key.fingerprint).toBe(VECTORS.deviceId);
    expect(bindingProofText(secret, VECTORS.invitationId, key)).toBe(VECTORS.bindingProof);
    expect(tokenDigest(VECTORS.token)).toBe(VECTORS.tokenSha256);
  });

  it('fails for another patient, invitation, device, or binding key', () => {
    const key = importPublicKey(VECTORS.devicePublicKey);
    const check = {
      bindingKey: BINDING_KEY,
      invitationId: VECTORS.invitationId,
      patientRef: VECTORS.patientRef,
      deviceId: VECTORS.deviceId,
      devicePublicKey: key,
      bindingProof: VECTORS.bindingProof,
    };
    expect(codeOf(() => verifyBindingProof(check))).toBe('no error');
    const otherPatient = derivePatientRef(PSEUDONYM_KEY, '987654321');
    expect(codeOf(() => verifyBindingProof({ ...check, patientRef: otherPatient }))).toBe(
      'BINDING_PROOF_INVALID',
    );
    expect(codeOf(() => verifyBindingProof({ ...check, invitationId: newRandomId() }))).toBe(
      'BINDING_PROOF_INVALID',
    );
    expect(
      codeOf(() =>
        verifyBindingProof({
          ...check,
          devicePublicKey: other.publicKey,
          deviceId: other.publicKey.fingerprint,
        }),
      ),
    ).toBe('BINDING_PROOF_INVALID');
    expect(codeOf(() => verifyBindingProof({ ...check, deviceId: other.publicKey.fingerprint }))).toBe(
      'BINDING_PROOF_INVALID',
    );
    expect(
      codeOf(() =>
        verifyBindingProof({ ...check, bindingKey: memoryHmacKey(new Uint8Array(32).fill(1), 1) }),
      ),
    ).toBe('BINDING_PROOF_INVALID');
    // The pseudonym key is not the binding key.
    expect(codeOf(() => verifyBindingProof({ ...check, bindingKey: PSEUDONYM_KEY }))).toBe(
      'BINDING_PROOF_INVALID',
    );
    expect(codeOf(() => verifyBindingProof({ ...check, bindingProof: 'not-base64!' }))).toBe(
      'BINDING_PROOF_INVALID',
    );
    // A proof computed by a device that read another patient's QR code does not transfer.
    const otherSecret = deriveBindingSecret(BINDING_KEY, VECTORS.invitationId, otherPatient);
    const transferred = bindingProofText(otherSecret, VECTORS.invitationId, key);
    expect(codeOf(() => verifyBindingProof({ ...check, bindingProof: transferred }))).toBe(
      'BINDING_PROOF_INVALID',
    );
    expect(codeOf(() => computeBindingProof(new Uint8Array(31), VECTORS.invitationId, key))).toBe(
      'INVALID_REQUEST',
    );
  });
});

describe('error catalogue', () => {
  it('every code has a 4xx/5xx status and a short message; the required codes exist', () => {
    for (const code of ERROR_CODE_LIST) {
      const info = ERROR_CODES[code];
      expect(code).toMatch(/^[A-Z][A-Z0-9_]{1,63}$/);
      expect(info.status).toBeGreaterThanOrEqual(400);
      expect(info.status).toBeLessThan(600);
      expect(info.message.length).toBeLessThanOrEqual(100);
    }
    for (const required of [
      'INVALID_REQUEST',
      'NOT_FOUND',
      'INVITATION_EXPIRED',
      'INVITATION_USED',
      'INVITATION_ATTEMPTS_EXCEEDED',
      'DEVICE_REVOKED',
      'SIGNATURE_INVALID',
      'REQUEST_EXPIRED',
      'REQUEST_REPLAYED',
      'UPLOAD_MALFORMED',
      'UPLOAD_TOO_LARGE',
      'MANIFEST_SIGNATURE_INVALID',
      'PATH_MISMATCH',
      'UNKNOWN_PATIENT',
      'UNKNOWN_DEVICE',
      'DIGEST_MISMATCH',
    ]) {
      expect(ERROR_CODE_LIST).toContain(required);
    }
    // Only genuine server faults are 5xx.
    expect(ERROR_CODE_LIST.filter((code) => ERROR_CODES[code].status >= 500).sort()).toEqual([
      'INTERNAL_ERROR',
      'UNAVAILABLE',
    ]);
  });

  it('ProtocolError carries code and status; its body matches the schema; crypto errors map', () => {
    const error = new ProtocolError('REQUEST_REPLAYED', undefined, { field: 'header:cb-nonce' });
    expect(error.httpStatus).toBe(401);
    expect(errorBodySchema.parse(error.toBody())).toEqual({
      error: {
        code: 'REQUEST_REPLAYED',
        message: ERROR_CODES.REQUEST_REPLAYED.message,
        field: 'header:cb-nonce',
      },
    });
    const mapped = toProtocolError(new CryptoError('TRAILING_DATA', 'x', { chunkIndex: 3 }));
    expect(mapped.code).toBe('RECORD_TRAILING_DATA');
    expect(mapped.details.chunkIndex).toBe(3);
    expect(toProtocolError(new CryptoError('CHUNK_INVALID', 'x')).code).toBe('CHUNK_INVALID');
    expect(toProtocolError(new Error('boom')).code).toBe('INTERNAL_ERROR');
    expect(toProtocolError(error)).toBe(error);
  });
});

describe('API bodies', () => {
  const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

  it('parse valid bodies and name the first failing field otherwise', () => {
    const invitation = {
      invitationId: newRandomId(),
      patientRef: VECTORS.patientRef,
      tokenSha256: VECTORS.tokenSha256,
      expiresAt: '2026-01-02T00:00:00Z',
      maxAttempts: 5,
      operatorRef: VECTORS.operatorRef,
    };
    expect(parseJsonBody(createInvitationRequestSchema, json(invitation))).toEqual(invitation);
    // Every invitation names the member of staff (as the hospital's pseudonym).
    const { operatorRef: _dropped, ...anonymous } = invitation;
    expect(codeOf(() => parseJsonBody(createInvitationRequestSchema, json(anonymous)))).toBe(
      'INVALID_REQUEST',
    );
    let caught: unknown;
    try {
      parseJsonBody(createInvitationRequestSchema, json({ ...invitation, maxAttempts: 50 }));
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: 'INVALID_REQUEST', details: { field: 'maxAttempts' } });
    expect(
      codeOf(() =>
        parseJsonBody(createInvitationRequestSchema, json({ ...invitation, token: VECTORS.token })),
      ),
    ).toBe('INVALID_REQUEST');
    expect(codeOf(() => parseJsonBody(pairBodySchema, new TextEncoder().encode('{')))).toBe(
      'INVALID_REQUEST',
    );
    expect(codeOf(() => parseJsonBody(pairBodySchema, new Uint8Array(70_000)))).toBe('PAYLOAD_TOO_LARGE');
    expect(ackBodySchema.safeParse({ outcome: 'stored' }).success).toBe(true);
    expect(ackBodySchema.safeParse({ outcome: 'failed', errorCode: 'CHUNK_INVALID' }).success).toBe(true);
    expect(ackBodySchema.safeParse({ outcome: 'failed' }).success).toBe(false);
    expect(pageQuerySchema.parse({ pageSize: '20' })).toEqual({ pageSize: 20 });
    expect(pageQuerySchema.safeParse({ pageSize: '101' }).success).toBe(false);
  });

  it('push data is only an opaque hint (invariant 5)', () => {
    expect(pushData('records')).toEqual({ cb: '1', hint: 'records' });
    expect(pushDataSchema.safeParse({ ...pushData('records'), recordId: newRandomId() }).success).toBe(false);
    expect(pushDataSchema.safeParse({ cb: '1', hint: 'lab result ready' }).success).toBe(false);
  });
});

describe('ingest manifest context checks', () => {
  const manifest = {
    hospitalId: 'st-example-zh',
    uploadId: newRandomId(),
    createdAt: '2026-01-01T10:00:00Z',
    expiresAt: '2026-04-01T10:00:00Z',
  } as UploadManifest;
  const context = {
    hospitalId: manifest.hospitalId,
    uploadId: manifest.uploadId,
    now: new Date('2026-01-01T10:01:00Z'),
  };

  it('path, time window and lifetime', () => {
    expect(codeOf(() => checkManifestContext(manifest, context))).toBe('no error');
    expect(codeOf(() => checkManifestContext(manifest, { ...context, hospitalId: 'other-hospital' }))).toBe(
      'PATH_MISMATCH',
    );
    expect(codeOf(() => checkManifestContext(manifest, { ...context, uploadId: newRandomId() }))).toBe(
      'PATH_MISMATCH',
    );
    expect(
      codeOf(() => checkManifestContext(manifest, { ...context, now: new Date('2026-04-01T10:00:00Z') })),
    ).toBe('UPLOAD_EXPIRED');
    expect(
      codeOf(() => checkManifestContext(manifest, { ...context, now: new Date('2026-01-01T09:54:00Z') })),
    ).toBe('UPLOAD_EXPIRED');
    expect(codeOf(() => checkManifestContext(manifest, { ...context, maxLifetimeSeconds: 86_400 }))).toBe(
      'MANIFEST_INVALID',
    );
  });
});
