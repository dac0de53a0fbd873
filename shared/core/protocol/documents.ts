// The signed documents of protocol v2: device certificate, pair request, upload manifest and
// receipt. Each has a strict zod schema (unknown fields are rejected), a sign helper that
// validates before signing, and a verify helper that checks signature, type and schema. None
// of them holds PHI: they are readable by anyone who sees them.
import { z } from 'zod';
import { CHUNK_OVERHEAD, MAX_CHUNK_SIZE, wrappedKeyLength } from '../crypto/index.ts';
import type { PrivateKey, PublicKey, Signer } from '../crypto/index.ts';
import { verifyBindingProof } from './binding.ts';
import type { HmacKey } from './hmac-key.ts';
import { fromBase64Url, sha256, toBase64Url, utf8 } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';
import type { ErrorCode } from './error-codes.ts';
import {
  bindingProofSchema,
  deviceIdSchema,
  formatTimestamp,
  hospitalIdSchema,
  invitationIdSchema,
  operatorRefSchema,
  patientRefSchema,
  publicKeyFrom,
  publicKeySchema,
  recordIdSchema,
  sha256Schema,
  timestampSchema,
  uploadIdSchema,
} from './ids.ts';
import { readDocumentUnverified, signDocument, verifyDocument } from './signed-document.ts';
import type { DocumentErrorCodes } from './signed-document.ts';

export const DEVICE_CERTIFICATE_TYPE = 'cb/device-certificate/v1';
export const PAIR_REQUEST_TYPE = 'cb/pair-request/v1';
export const UPLOAD_MANIFEST_TYPE = 'cb/upload-manifest/v2';
export const RECEIPT_TYPE = 'cb/receipt/v1';

/** How far a pair request's issuedAt may be from the pairing function's clock. */
export const PAIR_REQUEST_SKEW_SECONDS = 300;
/** Most recipients (devices) one upload may name. */
export const MAX_RECIPIENTS = 64;
/** Bytes of framing in front of each chunk in the container's chunk section. */
export const CHUNK_FRAME_LENGTH = 4;

/** Fingerprint (= device id) of a base64url public key, computed without Themis. */
function fingerprintOf(publicKey: string): string | undefined {
  const bytes = fromBase64Url(publicKey);
  return bytes === undefined ? undefined : toBase64Url(sha256(bytes));
}

function isBefore(a: string, b: string): boolean {
  return Date.parse(a) < Date.parse(b);
}

// ---- Device certificate ----

export const deviceCertificateSchema = z
  .strictObject({
    type: z.literal(DEVICE_CERTIFICATE_TYPE),
    deviceId: deviceIdSchema,
    devicePublicKey: publicKeySchema,
    hospitalId: hospitalIdSchema,
    patientRef: patientRefSchema,
    invitationId: invitationIdSchema,
    bindingProof: bindingProofSchema,
    issuedAt: timestampSchema,
    expiresAt: timestampSchema,
  })
  .refine((c) => fingerprintOf(c.devicePublicKey) === c.deviceId, {
    message: 'deviceId is not the fingerprint of devicePublicKey',
    path: ['deviceId'],
  })
  .refine((c) => isBefore(c.issuedAt, c.expiresAt), {
    message: 'expires before issued',
    path: ['expiresAt'],
  });
export type DeviceCertificate = z.output<typeof deviceCertificateSchema>;

/**
 * The certificate the pairing function issues for a verified pair request, once the invitation
 * (hospital, patient) has been checked and consumed inside its transaction.
 */
export function certificateFor(
  request: PairRequest,
  invitation: { readonly hospitalId: string; readonly patientRef: string },
  validity: { readonly issuedAt: Date; readonly expiresAt: Date },
): DeviceCertificate {
  return {
    type: DEVICE_CERTIFICATE_TYPE,
    deviceId: request.deviceId,
    devicePublicKey: request.devicePublicKey,
    hospitalId: invitation.hospitalId,
    patientRef: invitation.patientRef,
    invitationId: request.invitationId,
    bindingProof: request.bindingProof,
    issuedAt: formatTimestamp(validity.issuedAt),
    expiresAt: formatTimestamp(validity.expiresAt),
  };
}

const CERTIFICATE_CODES: DocumentErrorCodes = {
  invalid: 'CERTIFICATE_INVALID',
  signature: 'CERTIFICATE_INVALID',
  type: 'CERTIFICATE_INVALID',
  tooLarge: 'CERTIFICATE_INVALID',
};

/** The pairing function issues a certificate (signed with its own key). */
export function signDeviceCertificate(certificate: DeviceCertificate, pairingKey: PrivateKey): Uint8Array {
  return signDocument(deviceCertificateSchema, certificate, pairingKey);
}

/**
 * Verifies a certificate with the pairing function's public key and checks it is valid at
 * `now`. Throws CERTIFICATE_INVALID or CERTIFICATE_EXPIRED. Does NOT check the binding proof:
 * only the hospital can (use verifyEnrolment).
 */
export function verifyDeviceCertificate(
  signed: Uint8Array,
  pairingPublicKey: PublicKey,
  now: Date,
): DeviceCertificate {
  const certificate = verifyDocument(
    signed,
    pairingPublicKey,
    DEVICE_CERTIFICATE_TYPE,
    deviceCertificateSchema,
    {
      codes: CERTIFICATE_CODES,
    },
  );
  const at = now.getTime();
  if (at < Date.parse(certificate.issuedAt) - PAIR_REQUEST_SKEW_SECONDS * 1000) {
    throw new ProtocolError('CERTIFICATE_INVALID', 'the certificate is not valid yet');
  }
  if (at >= Date.parse(certificate.expiresAt)) throw new ProtocolError('CERTIFICATE_EXPIRED');
  return certificate;
}

export interface EnrolmentCheck {
  /** The certificate as the pairing function returned it (Themis signed form). */
  readonly certificate: Uint8Array;
  /** The pairing function's public key, pinned in the connector's configuration. */
  readonly pairingPublicKey: PublicKey;
  /**
   * The binding key the connector made the certificate's invitation with (its journal knows
   * the version), given the verified certificate for this hospital and patient. Throw a
   * ProtocolError to refuse it (an invitation never issued, a device revoked locally).
   */
  readonly bindingKeyFor: (certificate: DeviceCertificate) => HmacKey;
  /** The connector's own hospital id and the patient it is encrypting for. */
  readonly hospitalId: string;
  readonly patientRef: string;
  readonly now: Date;
}

export interface VerifiedDevice {
  readonly deviceId: string;
  readonly publicKey: PublicKey;
  readonly certificate: DeviceCertificate;
}

/**
 * Invariant 3, on the connector: a device may receive a wrapped key only if the pairing
 * function certified it for THIS hospital and patient AND its binding proof verifies under the
 * connector's own binding key. Throws CERTIFICATE_INVALID, CERTIFICATE_EXPIRED or
 * BINDING_PROOF_INVALID.
 */
export function verifyEnrolment(check: EnrolmentCheck): VerifiedDevice {
  const certificate = verifyDeviceCertificate(check.certificate, check.pairingPublicKey, check.now);
  if (certificate.hospitalId !== check.hospitalId) {
    throw new ProtocolError('CERTIFICATE_INVALID', 'the certificate is for another hospital');
  }
  if (certificate.patientRef !== check.patientRef) {
    throw new ProtocolError('CERTIFICATE_INVALID', 'the certificate is for another patient');
  }
  const publicKey = publicKeyFrom(certificate.devicePublicKey, 'KEY_INVALID');
  verifyBindingProof({
    bindingKey: check.bindingKeyFor(certificate),
    invitationId: certificate.invitationId,
    patientRef: certificate.patientRef,
    deviceId: certificate.deviceId,
    devicePublicKey: publicKey,
    bindingProof: certificate.bindingProof,
  });
  return { deviceId: certificate.deviceId, publicKey, certificate };
}

// ---- Pair request (proof of possession of the device key) ----

/** An FCM registration token: printable ASCII without spaces. Never logged. */
export const fcmTokenSchema = z.string().regex(/^[\x21-\x7e]{1,4096}$/, 'not an FCM token');
export const platformSchema = z.enum(['ios', 'android', 'other']);

export const pairRequestSchema = z
  .strictObject({
    type: z.literal(PAIR_REQUEST_TYPE),
    invitationId: invitationIdSchema,
    /** SHA-256 of the 32 raw token bytes; the token itself travels beside the document. */
    tokenSha256: sha256Schema,
    devicePublicKey: publicKeySchema,
    deviceId: deviceIdSchema,
    bindingProof: bindingProofSchema,
    fcmToken: fcmTokenSchema,
    platform: platformSchema,
    issuedAt: timestampSchema,
  })
  .refine((r) => fingerprintOf(r.devicePublicKey) === r.deviceId, {
    message: 'deviceId is not the fingerprint of devicePublicKey',
    path: ['deviceId'],
  });
export type PairRequest = z.output<typeof pairRequestSchema>;

/** SHA-256 of a base64url token's raw bytes, base64url: what invitations store and pair requests sign. */
export function tokenDigest(token: string): string {
  const bytes = fromBase64Url(token);
  if (bytes === undefined || bytes.length !== 32)
    throw new ProtocolError('INVALID_REQUEST', 'bad token', { field: 'token' });
  return toBase64Url(sha256(bytes));
}

/** The device signs its pair request with the private key it is enrolling. */
export function signPairRequest(request: PairRequest, devicePrivateKey: PrivateKey): Uint8Array {
  return signDocument(pairRequestSchema, request, devicePrivateKey);
}

const PAIR_CODES: DocumentErrorCodes = {
  invalid: 'INVALID_REQUEST',
  signature: 'SIGNATURE_INVALID',
  type: 'INVALID_REQUEST',
  tooLarge: 'PAYLOAD_TOO_LARGE',
};

export interface VerifiedPairRequest {
  readonly request: PairRequest;
  readonly devicePublicKey: PublicKey;
}

/**
 * The pairing function's check of a pair request: the document is signed by the very key it
 * enrols (proof of possession), names the token that travels beside it, and is fresh (±300 s).
 * It does NOT look at the invitation: check that (and the token digest, in constant time)
 * inside the transaction. Throws INVALID_REQUEST, KEY_INVALID, SIGNATURE_INVALID or
 * REQUEST_EXPIRED.
 */
export function verifyPairRequest(signed: Uint8Array, token: string, now: Date): VerifiedPairRequest {
  const unverified = readDocumentUnverified(signed, PAIR_REQUEST_TYPE, pairRequestSchema, {
    codes: PAIR_CODES,
  });
  const devicePublicKey = publicKeyFrom(unverified.devicePublicKey, 'KEY_INVALID');
  const request = verifyDocument(signed, devicePublicKey, PAIR_REQUEST_TYPE, pairRequestSchema, {
    codes: PAIR_CODES,
  });
  if (request.tokenSha256 !== tokenDigest(token)) {
    throw new ProtocolError('INVALID_REQUEST', 'the token does not match the signed request', {
      field: 'token',
    });
  }
  if (Math.abs(now.getTime() - Date.parse(request.issuedAt)) > PAIR_REQUEST_SKEW_SECONDS * 1000) {
    throw new ProtocolError('REQUEST_EXPIRED');
  }
  return { request, devicePublicKey };
}

// ---- Upload manifest ----

export const contentClassSchema = z.enum(['document', 'fhir', 'imaging', 'other']);
export type ContentClass = z.output<typeof contentClassSchema>;

export const recipientSchema = z.strictObject({
  deviceId: deviceIdSchema,
  /** The content key wrapped for this device under the manifest's wrap key, base64url. */
  wrappedKey: z.string().regex(/^[A-Za-z0-9_-]{1,512}$/),
});
export type Recipient = z.output<typeof recipientSchema>;

/** Bytes of the framed chunk section for a record of `plaintextLength` bytes. */
export function framedCiphertextLength(plaintextLength: number, chunkSize: number): number {
  const count = Math.max(1, Math.ceil(plaintextLength / chunkSize));
  return plaintextLength + count * (CHUNK_FRAME_LENGTH + CHUNK_OVERHEAD);
}

export const uploadManifestSchema = z
  .strictObject({
    type: z.literal(UPLOAD_MANIFEST_TYPE),
    uploadId: uploadIdSchema,
    recordId: recordIdSchema,
    hospitalId: hospitalIdSchema,
    patientRef: patientRefSchema,
    createdAt: timestampSchema,
    expiresAt: timestampSchema,
    contentClass: contentClassSchema,
    chunkSize: z.int().min(1).max(MAX_CHUNK_SIZE),
    chunkCount: z.int().min(1).max(0xffff_ffff),
    plaintextLength: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
    ciphertextLength: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
    ciphertextSha256: sha256Schema,
    /** This upload's wrap public key (PROTOCOL.md §2.4): the hospital key only signs. */
    wrapKey: publicKeySchema,
    /** The member of staff who sent it, as the hospital's pseudonym (NEN 7513 "who"). */
    operatorRef: operatorRefSchema,
    recipients: z.array(recipientSchema).min(1).max(MAX_RECIPIENTS),
  })
  .superRefine((m, context) => {
    const issue = (path: string, message: string): void => {
      context.addIssue({ code: 'custom', path: [path], message });
    };
    if (!isBefore(m.createdAt, m.expiresAt)) issue('expiresAt', 'expires before created');
    if (m.chunkCount !== Math.max(1, Math.ceil(m.plaintextLength / m.chunkSize))) {
      issue('chunkCount', 'chunkCount does not follow from plaintextLength and chunkSize');
    }
    if (m.ciphertextLength !== framedCiphertextLength(m.plaintextLength, m.chunkSize)) {
      issue('ciphertextLength', 'ciphertextLength does not follow from plaintextLength and chunkSize');
    }
    const seen = new Set<string>();
    const expectedWrapped = Math.ceil((wrappedKeyLength(utf8(m.recordId).length) * 4) / 3);
    m.recipients.forEach((recipient, index) => {
      if (seen.has(recipient.deviceId)) issue('recipients', `recipient ${index} is listed twice`);
      seen.add(recipient.deviceId);
      const bytes = fromBase64Url(recipient.wrappedKey);
      if (recipient.wrappedKey.length !== expectedWrapped || bytes === undefined) {
        issue('recipients', `recipient ${index} has a wrapped key of the wrong length`);
      }
    });
  });
export type UploadManifest = z.output<typeof uploadManifestSchema>;

export const MANIFEST_CODES: DocumentErrorCodes = {
  invalid: 'MANIFEST_INVALID',
  signature: 'MANIFEST_SIGNATURE_INVALID',
  type: 'MANIFEST_INVALID',
  tooLarge: 'MANIFEST_TOO_LARGE',
};

/** The connector signs a manifest with the hospital's key (in memory, or its token's Signer). */
export function signManifest(manifest: UploadManifest, hospitalKey: PrivateKey | Signer): Uint8Array {
  return signDocument(uploadManifestSchema, manifest, hospitalKey, { codes: MANIFEST_CODES });
}

/**
 * Verifies a manifest with the hospital's registered public key (ingest) or the key from the
 * QR code (devices). Throws MANIFEST_SIGNATURE_INVALID, MANIFEST_INVALID or MANIFEST_TOO_LARGE.
 */
export function verifyManifest(signed: Uint8Array, hospitalPublicKey: PublicKey): UploadManifest {
  return verifyDocument(signed, hospitalPublicKey, UPLOAD_MANIFEST_TYPE, uploadManifestSchema, {
    codes: MANIFEST_CODES,
  });
}

/** The recipient entry for `deviceId`, or NOT_A_RECIPIENT. */
export function recipientFor(manifest: UploadManifest, deviceId: string): Recipient {
  const recipient = manifest.recipients.find((r) => r.deviceId === deviceId);
  if (!recipient) throw new ProtocolError('NOT_A_RECIPIENT');
  return recipient;
}

/** The wrapped key bytes of a recipient. */
export function wrappedKeyBytes(recipient: Recipient): Uint8Array {
  const bytes = fromBase64Url(recipient.wrappedKey);
  if (bytes === undefined) throw new ProtocolError('MANIFEST_INVALID', 'bad wrapped key');
  return bytes;
}

export interface ManifestContext {
  /** From the object name (parseUploadObjectName). */
  readonly hospitalId: string;
  readonly uploadId: string;
  readonly now: Date;
  /** How far in the future createdAt may lie (default 300 s). */
  readonly skewSeconds?: number;
  /** Longest lifetime ingest accepts (expiresAt − createdAt); default 400 days. */
  readonly maxLifetimeSeconds?: number;
}

/**
 * Ingest's checks of a verified manifest against where it was found and when: the path's
 * hospital and upload id (PATH_MISMATCH), not expired and not dated ahead (UPLOAD_EXPIRED),
 * lifetime within bounds (MANIFEST_INVALID). Patient and device checks need the database and
 * belong to the ingest service.
 */
export function checkManifestContext(manifest: UploadManifest, context: ManifestContext): void {
  if (manifest.hospitalId !== context.hospitalId || manifest.uploadId !== context.uploadId) {
    throw new ProtocolError('PATH_MISMATCH');
  }
  const now = context.now.getTime();
  const created = Date.parse(manifest.createdAt);
  const expires = Date.parse(manifest.expiresAt);
  if (created > now + (context.skewSeconds ?? 300) * 1000 || expires <= now) {
    throw new ProtocolError('UPLOAD_EXPIRED');
  }
  if (expires - created > (context.maxLifetimeSeconds ?? 400 * 86_400) * 1000) {
    throw new ProtocolError('MANIFEST_INVALID', 'the manifest lifetime is too long', { field: 'expiresAt' });
  }
}

// ---- Receipt ----

const receiptBase = {
  type: z.literal(RECEIPT_TYPE),
  uploadId: uploadIdSchema,
  hospitalId: hospitalIdSchema,
  at: timestampSchema,
};

export const receiptSchema = z.discriminatedUnion('status', [
  z.strictObject({ ...receiptBase, status: z.literal('accepted'), recordId: recordIdSchema }),
  z.strictObject({
    ...receiptBase,
    status: z.literal('rejected'),
    /** Present when the manifest could be read far enough to know it. */
    recordId: recordIdSchema.optional(),
    errorCode: z.string().regex(/^[A-Z][A-Z0-9_]{1,63}$/),
  }),
]);
export type Receipt = z.output<typeof receiptSchema>;

/** Ingest signs receipts with its own key; the connector verifies with ingest's public key. */
export function signReceipt(receipt: Receipt, ingestKey: PrivateKey): Uint8Array {
  return signDocument(receiptSchema, receipt, ingestKey);
}

export function verifyReceipt(signed: Uint8Array, ingestPublicKey: PublicKey): Receipt {
  return verifyDocument(signed, ingestPublicKey, RECEIPT_TYPE, receiptSchema);
}

/** Builds a rejection receipt body from an error code (for ingest's quarantine path). */
export function rejectionReceipt(fields: {
  uploadId: string;
  hospitalId: string;
  at: Date;
  errorCode: ErrorCode;
  recordId?: string;
}): Receipt {
  const receipt: Receipt = {
    type: RECEIPT_TYPE,
    uploadId: fields.uploadId,
    hospitalId: fields.hospitalId,
    at: formatTimestamp(fields.at),
    status: 'rejected',
    errorCode: fields.errorCode,
  };
  if (fields.recordId !== undefined) receipt.recordId = fields.recordId;
  return receipt;
}
