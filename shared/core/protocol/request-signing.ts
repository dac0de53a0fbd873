// Request signing: devices sign every records API call with their device key, connectors sign
// every pairing/records call with the hospital key. The signature covers
//
//   CB-REQUEST-V2 \n audience \n METHOD \n target \n base64url(SHA-256(body)) \n timestamp \n nonce \n keyId
//
// (eight lines joined by a single LF, no trailing LF, all ASCII), where audience is the
// deployment's apiBase (so a request signed for staging cannot be replayed to production with a
// key used in both), target is the path from
// the versioned API prefix on (/records/v1/…, /pairing/v1/…) plus "?query" exactly as sent,
// timestamp is Unix seconds in decimal, nonce is 16 random bytes in base64url, and keyId names
// the key ("device:<deviceId>" or "hospital:<hospitalId>:<key fingerprint>"). The
// string is signed with Themis Secure Message (sign mode) and the signed form travels,
// base64url, in a header. Four headers carry it all:
//   CB-Key-Id, CB-Timestamp, CB-Nonce, CB-Signature
// Verification is pure: the caller injects the time, the key lookup and the nonce memory.
import { isCryptoError, signWith, verify } from '../crypto/index.ts';
import type { PrivateKey, PublicKey, Signer } from '../crypto/index.ts';
import { equalBytes, fromBase64Url, randomBase64Url, sha256, toBase64Url, utf8 } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';
import { deviceIdSchema, hospitalIdSchema, requireValid } from './ids.ts';
import { signedMessageUnverified } from './signed-document.ts';

export const REQUEST_SIGNATURE_VERSION = 'CB-REQUEST-V2';
/** Allowed difference between the request's timestamp and the verifier's clock. */
export const REQUEST_SKEW_SECONDS = 300;
/** Lower-case header names (Node lower-cases incoming names). */
export const SIGNATURE_HEADERS = {
  keyId: 'cb-key-id',
  timestamp: 'cb-timestamp',
  nonce: 'cb-nonce',
  signature: 'cb-signature',
} as const;
const MAX_TARGET_LENGTH = 2048;
const MAX_SIGNATURE_TEXT = 1024;
const METHOD = /^[A-Z]{3,7}$/;
/** An apiBase (PROTOCOL.md §4): printable ASCII, one line. */
const AUDIENCE = /^[\x21-\x7e]{8,120}$/;
const TARGET = /^\/[\x21-\x7e]*$/;
const TIMESTAMP = /^(0|[1-9][0-9]{0,11})$/;
const NONCE_BYTES = 16;

export type KeyKind = 'device' | 'hospital';

export interface KeyId {
  readonly kind: KeyKind;
  /** The device id, or the hospital id. */
  readonly id: string;
  /** The fingerprint of the key that must verify (for devices, the device id itself). */
  readonly fingerprint: string;
  /** The header value. */
  readonly text: string;
}

export function deviceKeyId(deviceId: string): string {
  return `device:${requireValid(deviceIdSchema, deviceId, 'deviceId')}`;
}

export function hospitalKeyId(hospitalId: string, hospitalPublicKey: PublicKey): string {
  return `hospital:${requireValid(hospitalIdSchema, hospitalId, 'hospitalId')}:${hospitalPublicKey.fingerprint}`;
}

/** Parses a CB-Key-Id value; undefined if it is not one. */
export function parseKeyId(text: string): KeyId | undefined {
  const parts = text.split(':');
  if (parts[0] === 'device' && parts.length === 2 && deviceIdSchema.safeParse(parts[1]).success) {
    return { kind: 'device', id: parts[1]!, fingerprint: parts[1]!, text };
  }
  if (
    parts[0] === 'hospital' &&
    parts.length === 3 &&
    hospitalIdSchema.safeParse(parts[1]).success &&
    deviceIdSchema.safeParse(parts[2]).success
  ) {
    return { kind: 'hospital', id: parts[1]!, fingerprint: parts[2]!, text };
  }
  return undefined;
}

export interface RequestToSign {
  /** The deployment the request is for: its canonical apiBase. */
  readonly audience: string;
  readonly method: string;
  /** Path from the API prefix on, plus "?query" if any, exactly as it goes on the wire. */
  readonly target: string;
  readonly body: Uint8Array;
}

/** base64url SHA-256 of a body (the empty body included). */
export function bodyDigest(body: Uint8Array): string {
  return toBase64Url(sha256(body));
}

/** The exact text that is signed. Exposed for test vectors and other implementations. */
export function requestSigningString(fields: {
  audience: string;
  method: string;
  target: string;
  bodySha256: string;
  timestamp: string;
  nonce: string;
  keyId: string;
}): string {
  return [
    REQUEST_SIGNATURE_VERSION,
    fields.audience,
    fields.method,
    fields.target,
    fields.bodySha256,
    fields.timestamp,
    fields.nonce,
    fields.keyId,
  ].join('\n');
}

function checkRequestShape(audience: string, method: string, target: string): void {
  if (typeof audience !== 'string' || !AUDIENCE.test(audience))
    throw new ProtocolError('INVALID_REQUEST', 'bad audience');
  if (typeof method !== 'string' || !METHOD.test(method))
    throw new ProtocolError('INVALID_REQUEST', 'bad method');
  if (typeof target !== 'string' || target.length > MAX_TARGET_LENGTH || !TARGET.test(target)) {
    throw new ProtocolError('INVALID_REQUEST', 'bad request target');
  }
}

export interface SignRequestOptions extends RequestToSign {
  readonly keyId: string;
  /** The caller's key: a device key pair's private half, or the hospital's Signer. */
  readonly privateKey: PrivateKey | Signer;
  readonly now: Date;
  /** Only for test vectors; normally a fresh random nonce. */
  readonly nonce?: string;
}

/** Signs a request; returns the four headers to send (names in their canonical case). */
export function signRequest(options: SignRequestOptions): Record<string, string> {
  checkRequestShape(options.audience, options.method, options.target);
  if (!parseKeyId(options.keyId)) throw new ProtocolError('INVALID_REQUEST', 'bad key id');
  const timestamp = String(Math.floor(options.now.getTime() / 1000));
  const nonce = options.nonce ?? randomBase64Url(NONCE_BYTES);
  if (fromBase64Url(nonce)?.length !== NONCE_BYTES) throw new ProtocolError('INVALID_REQUEST', 'bad nonce');
  const text = requestSigningString({
    audience: options.audience,
    method: options.method,
    target: options.target,
    bodySha256: bodyDigest(options.body),
    timestamp,
    nonce,
    keyId: options.keyId,
  });
  return {
    'CB-Key-Id': options.keyId,
    'CB-Timestamp': timestamp,
    'CB-Nonce': nonce,
    'CB-Signature': toBase64Url(signWith(options.privateKey, utf8(text))),
  };
}

/** Headers as Node delivers them (lower-case names) or any plain record. */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface VerifyRequestOptions extends RequestToSign {
  readonly headers: HeaderBag;
  /** Which kinds of key this endpoint accepts; others are UNKNOWN_KEY. */
  readonly accept: readonly KeyKind[];
  readonly clock: { now(): Date };
  /**
   * The registered public key for this key id, or undefined if there is none (UNKNOWN_KEY).
   * Throw a ProtocolError (DEVICE_REVOKED, HOSPITAL_SUSPENDED) to refuse a known key.
   */
  readonly resolveKey: (keyId: KeyId) => Promise<PublicKey | undefined>;
  /**
   * Atomically records the nonce for this key until `expiresAt`; false if it was already
   * recorded (a replay). Called only after the signature has verified.
   */
  readonly rememberNonce: (keyId: string, nonce: string, expiresAt: Date) => Promise<boolean>;
}

export interface VerifiedRequest {
  readonly keyId: KeyId;
  readonly publicKey: PublicKey;
  /** The signed time. */
  readonly signedAt: Date;
}

function header(headers: HeaderBag, name: string): string | undefined | null {
  let found: string | readonly string[] | undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) {
      if (found !== undefined) return null;
      found = value;
    }
  }
  if (found === undefined) return undefined;
  if (typeof found !== 'string') return found.length === 1 && typeof found[0] === 'string' ? found[0] : null;
  return found;
}

/**
 * Verifies a signed request. Order: headers present and well-formed (SIGNATURE_MISSING,
 * SIGNATURE_MALFORMED), key kind accepted (UNKNOWN_KEY), time within ±300 s (REQUEST_EXPIRED),
 * signed text matches this request (SIGNATURE_INVALID), key registered (UNKNOWN_KEY or what
 * resolveKey throws), signature (SIGNATURE_INVALID), then the nonce is remembered
 * (REQUEST_REPLAYED). Cheap checks run before the key lookup, and nonces are stored only for
 * authentic requests, so garbage cannot fill the nonce store.
 */
export async function verifyRequest(options: VerifyRequestOptions): Promise<VerifiedRequest> {
  checkRequestShape(options.audience, options.method, options.target);
  const values = {
    keyId: header(options.headers, SIGNATURE_HEADERS.keyId),
    timestamp: header(options.headers, SIGNATURE_HEADERS.timestamp),
    nonce: header(options.headers, SIGNATURE_HEADERS.nonce),
    signature: header(options.headers, SIGNATURE_HEADERS.signature),
  };
  const present = Object.values(values).filter((value) => value !== undefined);
  if (present.length === 0) throw new ProtocolError('SIGNATURE_MISSING');
  const malformed = (field: string): ProtocolError =>
    new ProtocolError('SIGNATURE_MALFORMED', undefined, { field: `header:${field}` });
  if (typeof values.keyId !== 'string') throw malformed(SIGNATURE_HEADERS.keyId);
  if (typeof values.timestamp !== 'string') throw malformed(SIGNATURE_HEADERS.timestamp);
  if (typeof values.nonce !== 'string') throw malformed(SIGNATURE_HEADERS.nonce);
  if (typeof values.signature !== 'string') throw malformed(SIGNATURE_HEADERS.signature);

  const keyId = parseKeyId(values.keyId);
  if (!keyId) throw malformed(SIGNATURE_HEADERS.keyId);
  if (!TIMESTAMP.test(values.timestamp)) throw malformed(SIGNATURE_HEADERS.timestamp);
  if (fromBase64Url(values.nonce)?.length !== NONCE_BYTES) throw malformed(SIGNATURE_HEADERS.nonce);
  const signed = values.signature.length <= MAX_SIGNATURE_TEXT ? fromBase64Url(values.signature) : undefined;
  if (signed === undefined) throw malformed(SIGNATURE_HEADERS.signature);
  let embedded: Uint8Array;
  try {
    embedded = signedMessageUnverified(signed, { maxBytes: MAX_SIGNATURE_TEXT });
  } catch {
    throw malformed(SIGNATURE_HEADERS.signature);
  }

  if (!options.accept.includes(keyId.kind)) throw new ProtocolError('UNKNOWN_KEY');

  const signedSeconds = Number(values.timestamp);
  const nowSeconds = options.clock.now().getTime() / 1000;
  if (!Number.isFinite(nowSeconds) || Math.abs(nowSeconds - signedSeconds) > REQUEST_SKEW_SECONDS) {
    throw new ProtocolError('REQUEST_EXPIRED');
  }

  const expected = utf8(
    requestSigningString({
      audience: options.audience,
      method: options.method,
      target: options.target,
      bodySha256: bodyDigest(options.body),
      timestamp: values.timestamp,
      nonce: values.nonce,
      keyId: values.keyId,
    }),
  );
  if (!equalBytes(embedded, expected)) throw new ProtocolError('SIGNATURE_INVALID');

  const publicKey = await options.resolveKey(keyId);
  if (publicKey === undefined || publicKey.fingerprint !== keyId.fingerprint)
    throw new ProtocolError('UNKNOWN_KEY');
  try {
    verify(signed, publicKey);
  } catch (error) {
    if (isCryptoError(error, 'SIGNATURE_INVALID'))
      throw new ProtocolError('SIGNATURE_INVALID', undefined, { cause: error });
    throw error;
  }

  // Any replay later than this fails the clock check, so the nonce need not be kept longer.
  const expiresAt = new Date((signedSeconds + REQUEST_SKEW_SECONDS + 1) * 1000);
  if (!(await options.rememberNonce(keyId.text, values.nonce, expiresAt))) {
    throw new ProtocolError('REQUEST_REPLAYED');
  }
  return { keyId, publicKey, signedAt: new Date(signedSeconds * 1000) };
}
