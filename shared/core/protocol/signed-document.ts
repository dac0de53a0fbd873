// Signed documents: canonical JSON signed with Themis Secure Message (sign mode, via
// shared/core/crypto's sign/verify). Every document names what it is in a `type` field
// ("cb/<kind>/v<n>"), and verification checks three things: the signature with the expected
// key, the expected type (one key may sign several kinds of document, so a signature alone
// cannot tell a receipt from a manifest), and the document's zod schema. The bytes must also
// be canonical JSON, so each document has exactly one encoding.
//
// A Themis signed message CONTAINS the message in the clear:
//   0..3  0x20 0x26 0x04 0x26 (uint32 LE 0x26042620)   4..7 message length, uint32 LE
//   8..11 signature length, uint32 LE                   12.. message, then DER ECDSA signature
// so signed documents are not confidential and must never carry PHI, tokens or secrets.
import type { z } from 'zod';
import { MAX_SIGNED_LENGTH, SIGNED_HEADER_LENGTH, isCryptoError, signWith, verify } from '../crypto/index.ts';
import type { PrivateKey, PublicKey, Signer } from '../crypto/index.ts';
import { canonicalJson, fromBase64Url, parseCanonicalJson, toBase64Url, utf8 } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';
import type { ErrorCode } from './error-codes.ts';

/** Largest canonical JSON message of any signed document (manifests are the biggest). */
export const MAX_DOCUMENT_BYTES = 64 * 1024;
/** Largest signed form of a document: message plus Themis header and DER signature. */
export const MAX_SIGNED_DOCUMENT_BYTES = MAX_DOCUMENT_BYTES + SIGNED_HEADER_LENGTH + 80;

const EC_SIGNED_TAG = 0x26042620;
const MAX_SIGNATURE_LENGTH = 80;

/** Error codes a verification reports; verifyManifest swaps in the MANIFEST_* codes. */
export interface DocumentErrorCodes {
  readonly invalid: ErrorCode;
  readonly signature: ErrorCode;
  readonly type: ErrorCode;
  readonly tooLarge: ErrorCode;
}

export const DOCUMENT_ERROR_CODES: DocumentErrorCodes = {
  invalid: 'DOCUMENT_INVALID',
  signature: 'SIGNATURE_INVALID',
  type: 'DOCUMENT_TYPE_MISMATCH',
  tooLarge: 'DOCUMENT_TOO_LARGE',
};

export interface DocumentOptions {
  /** Largest message accepted (default MAX_DOCUMENT_BYTES). */
  readonly maxBytes?: number;
  readonly codes?: DocumentErrorCodes;
}

/** A zod schema whose output is an object with a literal `type`. */
export type DocumentSchema = z.ZodType<{ type: string }>;

/**
 * Validates `document` against its schema (so nothing unvalidated is ever signed), serialises
 * it canonically and signs it. Returns the Themis signed form.
 */
export function signDocument<S extends DocumentSchema>(
  schema: S,
  document: z.input<S>,
  key: PrivateKey | Signer,
  options: DocumentOptions = {},
): Uint8Array {
  const parsed = schema.safeParse(document);
  if (!parsed.success) {
    throw new ProtocolError('INVALID_REQUEST', 'the document fails its schema', {
      field: fieldOf(parsed.error),
    });
  }
  const message = utf8(canonicalJson(parsed.data));
  if (message.length > (options.maxBytes ?? MAX_DOCUMENT_BYTES)) {
    throw new ProtocolError((options.codes ?? DOCUMENT_ERROR_CODES).tooLarge);
  }
  return signWith(key, message);
}

/**
 * Verifies a signed document: signature with `publicKey`, then canonical JSON, then the
 * expected `type`, then the schema. Returns the parsed document.
 */
export function verifyDocument<S extends DocumentSchema>(
  signed: Uint8Array,
  publicKey: PublicKey,
  type: string,
  schema: S,
  options: DocumentOptions = {},
): z.output<S> {
  const codes = options.codes ?? DOCUMENT_ERROR_CODES;
  const message = signedMessageUnverified(signed, options); // bounds and layout first
  let verified: Uint8Array;
  try {
    verified = verify(signed, publicKey);
  } catch (error) {
    if (isCryptoError(error, 'SIGNATURE_INVALID'))
      throw new ProtocolError(codes.signature, undefined, { cause: error });
    throw error;
  }
  if (verified.length !== message.length) throw new ProtocolError(codes.signature);
  return parseDocument(verified, type, schema, codes);
}

/**
 * Parses a signed document WITHOUT checking its signature. Only for framing and routing (for
 * example, to learn which key to verify with, or to bounds-check a container before the
 * registered key is looked up). Never act on the result before verifyDocument succeeds.
 */
export function readDocumentUnverified<S extends DocumentSchema>(
  signed: Uint8Array,
  type: string,
  schema: S,
  options: DocumentOptions = {},
): z.output<S> {
  const codes = options.codes ?? DOCUMENT_ERROR_CODES;
  return parseDocument(signedMessageUnverified(signed, options), type, schema, codes);
}

/**
 * The message inside a Themis signed form, after checking the layout (tag, lengths adding up,
 * signature at most 80 bytes, message within the limit). Does not verify the signature.
 */
export function signedMessageUnverified(signed: Uint8Array, options: DocumentOptions = {}): Uint8Array {
  const codes = options.codes ?? DOCUMENT_ERROR_CODES;
  const maxBytes = options.maxBytes ?? MAX_DOCUMENT_BYTES;
  if (!(signed instanceof Uint8Array) || signed.length < SIGNED_HEADER_LENGTH) {
    throw new ProtocolError(codes.invalid, 'the signed document is too short');
  }
  const view = new DataView(signed.buffer, signed.byteOffset, signed.byteLength);
  const tag = view.getUint32(0, true);
  const messageLength = view.getUint32(4, true);
  const signatureLength = view.getUint32(8, true);
  if (tag !== EC_SIGNED_TAG) throw new ProtocolError(codes.invalid, 'not a Themis EC signed message');
  if (messageLength > maxBytes || signed.length > MAX_SIGNED_LENGTH) throw new ProtocolError(codes.tooLarge);
  if (
    messageLength === 0 ||
    signatureLength === 0 ||
    signatureLength > MAX_SIGNATURE_LENGTH ||
    SIGNED_HEADER_LENGTH + messageLength + signatureLength !== signed.length
  ) {
    throw new ProtocolError(codes.invalid, 'the signed document has inconsistent lengths');
  }
  return signed.subarray(SIGNED_HEADER_LENGTH, SIGNED_HEADER_LENGTH + messageLength);
}

function parseDocument<S extends DocumentSchema>(
  message: Uint8Array,
  type: string,
  schema: S,
  codes: DocumentErrorCodes,
): z.output<S> {
  const value = parseCanonicalJson(message, codes.invalid);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError(codes.invalid, 'the document is not a JSON object');
  }
  const actual = (value as { type?: unknown }).type;
  if (actual !== type) throw new ProtocolError(codes.type);
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new ProtocolError(codes.invalid, 'the document fails its schema', { field: fieldOf(parsed.error) });
  }
  return parsed.data;
}

/** The first failing path of a zod error, as "a.b.0" (names and indexes only, never values). */
export function fieldOf(error: z.ZodError): string {
  const path = error.issues[0]?.path ?? [];
  return path.map((part) => String(part)).join('.') || '(root)';
}

/** A signed document as it travels inside JSON: base64url of the Themis signed form. */
export function documentToText(signed: Uint8Array): string {
  return toBase64Url(signed);
}

/** The signed form from its JSON text; INVALID_REQUEST (naming `field`) if it is not base64url. */
export function documentFromText(text: string, field: string): Uint8Array {
  const bytes = typeof text === 'string' ? fromBase64Url(text) : undefined;
  if (bytes === undefined || bytes.length === 0 || bytes.length > MAX_SIGNED_DOCUMENT_BYTES) {
    throw new ProtocolError('INVALID_REQUEST', 'not a signed document', { field });
  }
  return bytes;
}
