// Identifiers and small value schemas shared by every document and API body. All identifiers
// are opaque and carry no PHI: the platform never sees a hospital's own patient number, only
// a keyed pseudonym of it (patientRef) that it cannot reverse or link across hospitals.
import { z } from 'zod';
import { importPublicKey } from '../crypto/index.ts';
import type { PublicKey } from '../crypto/index.ts';
import { fromBase64Url, randomBase64Url, toBase64Url, utf8 } from './encoding.ts';
import type { HmacKey } from './hmac-key.ts';
import { ProtocolError } from './error-codes.ts';

/** Bytes of a random id (recordId, uploadId, invitationId) and of a patientRef: 128 bits. */
export const ID_BYTES = 16;
/** Smallest hospital master secret accepted (bytes). */
export const MIN_MASTER_SECRET_BYTES = 32;

export const PATIENT_REF_LABEL = 'cb/patient-ref/v2';
export const OPERATOR_REF_LABEL = 'cb/operator-ref/v2';

// Canonical base64url of exactly n bytes: the right length, and the last character carries no
// stray low bits (checked by a round trip, so "A" and "B" endings cannot both name one value).
function base64UrlBytes(n: number, what: string) {
  return z
    .string()
    .length(Math.ceil((n * 4) / 3))
    .refine((text) => fromBase64Url(text)?.length === n, { message: `${what} is not canonical base64url` });
}

export const hospitalIdSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{2,39}$/, 'not a hospital id');
export const randomIdSchema = base64UrlBytes(ID_BYTES, 'id');
export const recordIdSchema = randomIdSchema;
export const uploadIdSchema = randomIdSchema;
export const invitationIdSchema = randomIdSchema;
export const patientRefSchema = base64UrlBytes(ID_BYTES, 'patientRef');
/** A member of staff's pseudonym (deriveOperatorRef). */
export const operatorRefSchema = base64UrlBytes(ID_BYTES, 'operatorRef');
/** A device id: the SHA-256 fingerprint of the device's public key (crypto PublicKey.fingerprint). */
export const deviceIdSchema = base64UrlBytes(32, 'deviceId');
export const sha256Schema = base64UrlBytes(32, 'digest');
/** A 45-byte Themis EC P-256 public key in base64url (validated again when imported). */
export const publicKeySchema = base64UrlBytes(45, 'public key');
/** The one-time invitation token: 32 random bytes. */
export const tokenSchema = base64UrlBytes(32, 'token');
export const bindingProofSchema = base64UrlBytes(32, 'binding proof');
/** A Themis signed document as base64url, bounded (64 KiB documents). */
export const signedDocumentTextSchema = z
  .string()
  .min(1)
  .max(Math.ceil((70 * 1024 * 4) / 3))
  .regex(/^[A-Za-z0-9_-]+$/);

/** RFC 3339 UTC time with whole seconds: `2025-01-31T12:00:00Z`. The only time form in documents. */
export const timestampSchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/, 'not a UTC timestamp with whole seconds')
  .refine((text) => {
    const date = new Date(text);
    return !Number.isNaN(date.getTime()) && formatTimestamp(date) === text;
  }, 'not a valid date');

/** A date as a document timestamp (sub-second precision is dropped, not rounded). */
export function formatTimestamp(date: Date): string {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new ProtocolError('INVALID_REQUEST', 'invalid date');
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** A fresh random 128-bit id (recordId, uploadId, invitationId). */
export function newRandomId(): string {
  return randomBase64Url(ID_BYTES);
}

/** A fresh one-time invitation token (32 random bytes, base64url). */
export function newInvitationToken(): string {
  return randomBase64Url(32);
}

/** Imports a base64url public key, turning a bad key into a ProtocolError with `code`. */
export function publicKeyFrom(
  text: string,
  code: 'KEY_INVALID' | 'INVALID_REQUEST' | 'MANIFEST_INVALID' = 'KEY_INVALID',
): PublicKey {
  try {
    return importPublicKey(text);
  } catch (error) {
    throw new ProtocolError(code, 'not a valid Themis EC P-256 public key', { cause: error });
  }
}

/**
 * A person's identifier as the connector passes it in (a patient number, a member of staff's
 * account): 1..128 characters, no outer whitespace, no control characters, compared in NFC.
 * Strict, so one person cannot end up with two pseudonyms by accident.
 */
function identifierBytes(value: string, what: string): Uint8Array {
  if (
    typeof value !== 'string' ||
    value.length < 1 ||
    value.length > 128 ||
    value.trim() !== value ||
    /[\p{Cc}\p{Cs}]/u.test(value)
  ) {
    throw new ProtocolError('INVALID_REQUEST', `the ${what} is not acceptable`);
  }
  return utf8(value.normalize('NFC'));
}

/**
 * The connector's pseudonym for one of its patients, under its pseudonym key:
 *   base64url(first 16 bytes of HMAC-SHA256(pseudonymKey, "cb/patient-ref/v2" ‖ UTF-8(NFC(number))))
 */
export function derivePatientRef(pseudonymKey: HmacKey, patientNumber: string): string {
  const mac = pseudonymKey.hmac(utf8(PATIENT_REF_LABEL), identifierBytes(patientNumber, 'patient number'));
  return toBase64Url(mac.subarray(0, ID_BYTES));
}

/**
 * The pseudonym under which a member of staff's actions reach the cloud (NEN 7513 "who"):
 *   base64url(first 16 bytes of HMAC-SHA256(pseudonymKey, "cb/operator-ref/v2" ‖ UTF-8(NFC(staffId))))
 * The hospital resolves it by recomputing it for its staff; the cloud cannot.
 */
export function deriveOperatorRef(pseudonymKey: HmacKey, staffId: string): string {
  const mac = pseudonymKey.hmac(utf8(OPERATOR_REF_LABEL), identifierBytes(staffId, 'staff id'));
  return toBase64Url(mac.subarray(0, ID_BYTES));
}

/** `value` if it passes `schema`, else INVALID_REQUEST naming `field` (never the value). */
export function requireValid<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ProtocolError('INVALID_REQUEST', `invalid ${field}`, { field });
  return parsed.data;
}

/** Object name of an upload in the ingest bucket. */
export function uploadObjectName(hospitalId: string, uploadId: string): string {
  const hospital = requireValid(hospitalIdSchema, hospitalId, 'hospitalId');
  return `hospitals/${hospital}/uploads/${requireValid(uploadIdSchema, uploadId, 'uploadId')}.cbr`;
}

/** Object name of a receipt in the hospital's outbox (a Themis signed `cb/receipt/v1` document). */
export function receiptObjectName(hospitalId: string, uploadId: string): string {
  const hospital = requireValid(hospitalIdSchema, hospitalId, 'hospitalId');
  return `hospitals/${hospital}/receipts/${requireValid(uploadIdSchema, uploadId, 'uploadId')}.cbreceipt`;
}

/**
 * Object name of an accepted container in the records bucket. Under the hospital's prefix, so
 * the retention job and an operator can scope by hospital; the record id alone is unique.
 */
export function recordObjectName(hospitalId: string, recordId: string): string {
  const hospital = requireValid(hospitalIdSchema, hospitalId, 'hospitalId');
  return `hospitals/${hospital}/records/${requireValid(recordIdSchema, recordId, 'recordId')}.cbr`;
}

const UPLOAD_OBJECT = /^hospitals\/([a-z0-9][a-z0-9-]{2,39})\/uploads\/([A-Za-z0-9_-]{22})\.cbr$/;

/** Parses an ingest object name. Anything else is PATH_MISMATCH (ingest quarantines it). */
export function parseUploadObjectName(name: string): { hospitalId: string; uploadId: string } {
  const match = UPLOAD_OBJECT.exec(name);
  if (!match || !uploadIdSchema.safeParse(match[2]).success) {
    throw new ProtocolError('PATH_MISMATCH', 'not an upload object name');
  }
  return { hospitalId: match[1]!, uploadId: match[2]! };
}
