// Key types. Each kind of key is its own class with a private field, so TypeScript treats
// them nominally: a PublicKey cannot be passed where a PrivateKey is expected, nor raw bytes
// where either is. Instances come only from the functions below, which validate what they
// import. Private and content keys never print their bytes: util.inspect, String() and
// JSON.stringify all show a redacted label.
//
// Themis EC keys (what iOS, Android and WasmThemis produce and read) are 45 bytes:
//   0..3   tag: "UEC2" (public, P-256) or "REC2" (private, P-256)
//   4..7   total length, uint32 big-endian (= 45)
//   8..11  CRC32C of all 45 bytes with this field zeroed, uint32 little-endian (Themis checks it)
//   12..44 body: public = SEC1 compressed point (0x02/0x03 + X); private = 0x00 + 32-byte scalar
// Only P-256 EC keys are accepted; Themis' RSA keys and other curves are rejected.
import { platform } from '#platform';
import { crc32c } from '../checksums/crc32c.ts';
import { equalBytes, fromBase64Url, sha256, toBase64Url } from './bytes.ts';
import { CryptoError } from './errors.ts';
import { callThemis, isThemisError, themis } from './themis.ts';

type ThemisPrivateKey = InstanceType<ReturnType<typeof themis>['PrivateKey']>;
type ThemisPublicKey = InstanceType<ReturnType<typeof themis>['PublicKey']>;

export const EC_KEY_LENGTH = 45;
/** Length of a content key in bytes (Themis SymmetricKey). */
export const CONTENT_KEY_LENGTH = 32;

const HEADER_LENGTH = 12;
const PUBLIC_TAG = 'UEC2';
const PRIVATE_TAG = 'REC2';
const MAX_ENCODED_KEY_LENGTH = 256;
// util.inspect's hook, by its registered name, so the key classes need no node:util import.
const INSPECT = Symbol.for('nodejs.util.inspect.custom');

const internal = Symbol('shared/core/crypto/keys');

let publicThemis: (key: PublicKey) => ThemisPublicKey;
let privateThemis: (key: PrivateKey) => ThemisPrivateKey;
let contentBytes: (key: ContentKey) => Uint8Array;
let isPublic: (value: unknown) => value is PublicKey;
let isPrivate: (value: unknown) => value is PrivateKey;
let isContent: (value: unknown) => value is ContentKey;

function checkToken(token: symbol): void {
  if (token !== internal)
    throw new TypeError('keys are created by the functions in shared/core/crypto/keys.ts');
}

/** A Themis EC P-256 public key. */
export class PublicKey {
  readonly #key: ThemisPublicKey;
  readonly #bytes: Uint8Array;
  readonly #fingerprint: string;

  static {
    publicThemis = (key) => key.#key;
    isPublic = (value): value is PublicKey => typeof value === 'object' && value !== null && #key in value;
  }

  /** @internal Use generateKeyPair() or importPublicKey(). */
  constructor(token: symbol, key: ThemisPublicKey) {
    checkToken(token);
    this.#key = key;
    this.#bytes = new Uint8Array(key);
    this.#fingerprint = toBase64Url(sha256(this.#bytes));
    Object.freeze(this);
  }

  /** SHA-256 of the 45 key bytes, base64url without padding (43 characters). For ids and logs. */
  get fingerprint(): string {
    return this.#fingerprint;
  }

  /** The 45 key bytes in Themis format (a copy). */
  toBytes(): Uint8Array {
    return this.#bytes.slice();
  }

  toBase64Url(): string {
    return toBase64Url(this.#bytes);
  }

  equals(other: PublicKey): boolean {
    return isPublic(other) && equalBytes(this.#bytes, other.#bytes);
  }

  toJSON(): string {
    return this.toBase64Url();
  }

  toString(): string {
    return `PublicKey(${this.#fingerprint})`;
  }

  [INSPECT](): string {
    return this.toString();
  }
}

/** A Themis EC P-256 private key. Its bytes leave only through exportPrivateKey(). */
export class PrivateKey {
  readonly #key: ThemisPrivateKey;

  static {
    privateThemis = (key) => key.#key;
    isPrivate = (value): value is PrivateKey => typeof value === 'object' && value !== null && #key in value;
  }

  /** @internal Use generateKeyPair() or importPrivateKey(). */
  constructor(token: symbol, key: ThemisPrivateKey) {
    checkToken(token);
    this.#key = key;
    Object.freeze(this);
  }

  toJSON(): string {
    return '[PrivateKey]';
  }

  toString(): string {
    return '[PrivateKey]';
  }

  [INSPECT](): string {
    return '[PrivateKey]';
  }
}

/** A record's random 32-byte content key (Themis SymmetricKey) for Secure Cell. */
export class ContentKey {
  readonly #bytes: Uint8Array;

  static {
    contentBytes = (key) => key.#bytes;
    isContent = (value): value is ContentKey =>
      typeof value === 'object' && value !== null && #bytes in value;
  }

  /** @internal Use generateContentKey() or unwrapContentKey(). */
  constructor(token: symbol, bytes: Uint8Array) {
    checkToken(token);
    this.#bytes = bytes;
    Object.freeze(this);
  }

  toJSON(): string {
    return '[ContentKey]';
  }

  toString(): string {
    return '[ContentKey]';
  }

  [INSPECT](): string {
    return '[ContentKey]';
  }
}

export interface KeyPair {
  readonly privateKey: PrivateKey;
  readonly publicKey: PublicKey;
}

/** A fresh EC P-256 key pair from Themis. */
export function generateKeyPair(): KeyPair {
  const pair = callThemis(
    () => new (themis().KeyPair)(),
    () => new CryptoError('THEMIS_FAILURE', 'Themis could not generate a key pair'),
  );
  return Object.freeze({
    privateKey: new PrivateKey(internal, pair.privateKey),
    publicKey: new PublicKey(internal, pair.publicKey),
  });
}

/** Validates and imports a public key: 45 Themis bytes, or their base64url text. */
export function importPublicKey(input: Uint8Array | string): PublicKey {
  const bytes = keyBytes(input, 'public key');
  checkContainer(bytes, PUBLIC_TAG, 'public');
  const key = construct(() => new (themis().PublicKey)(bytes), 'public');
  // Themis checks the container; the platform checks the point is on the curve.
  if (platform.p256Compress(bytes.subarray(HEADER_LENGTH)) === undefined) {
    throw new CryptoError('KEY_INVALID', 'public key is not a point on P-256');
  }
  return new PublicKey(internal, key);
}

/**
 * The public key of a SEC1 point on P-256 (compressed or uncompressed), as a hardware token
 * reports it, in Themis' 45-byte container.
 */
export function publicKeyFromPoint(point: Uint8Array): PublicKey {
  const compressed = platform.p256Compress(point);
  if (compressed === undefined) throw new CryptoError('KEY_INVALID', 'not a point on P-256');
  const bytes = new Uint8Array(EC_KEY_LENGTH);
  bytes.set([...PUBLIC_TAG].map((c) => c.charCodeAt(0)));
  const view = new DataView(bytes.buffer);
  view.setUint32(4, EC_KEY_LENGTH, false);
  bytes.set(compressed, HEADER_LENGTH);
  view.setUint32(8, crc32c(bytes), true);
  return importPublicKey(bytes);
}

/** Validates and imports a private key: 45 Themis bytes, or their base64url text. */
export function importPrivateKey(input: Uint8Array | string): PrivateKey {
  const bytes = keyBytes(input, 'private key');
  checkContainer(bytes, PRIVATE_TAG, 'private');
  const key = construct(() => new (themis().PrivateKey)(bytes), 'private');
  if (bytes[HEADER_LENGTH] !== 0) throw new CryptoError('KEY_INVALID', 'private key body is malformed');
  if (platform.p256PublicOf(bytes.subarray(HEADER_LENGTH + 1)) === undefined) {
    throw new CryptoError('KEY_INVALID', 'private key is not a valid P-256 scalar');
  }
  return new PrivateKey(internal, key);
}

/** Imports a private and a public key and checks that they belong together. */
export function importKeyPair(privateKey: Uint8Array | string, publicKey: Uint8Array | string): KeyPair {
  const pair = Object.freeze({
    privateKey: importPrivateKey(privateKey),
    publicKey: importPublicKey(publicKey),
  });
  const scalar = new Uint8Array(privateThemis(pair.privateKey)).subarray(HEADER_LENGTH + 1);
  const derived = platform.p256PublicOf(scalar);
  if (derived === undefined || !equalBytes(derived, pair.publicKey.toBytes().subarray(HEADER_LENGTH))) {
    throw new CryptoError('KEY_PAIR_MISMATCH', 'the public key does not belong to the private key');
  }
  return pair;
}

/**
 * The 45 private key bytes (a copy), for sealing with Cloud KMS or the device keystore.
 * Never log or store them in the clear.
 */
export function exportPrivateKey(key: PrivateKey): Uint8Array {
  return new Uint8Array(privateThemisKey(key));
}

/** A fresh random content key for one record. */
export function generateContentKey(): ContentKey {
  const generated = callThemis(
    () => new (themis().SymmetricKey)(),
    () => new CryptoError('THEMIS_FAILURE', 'Themis could not generate a content key'),
  );
  const bytes = new Uint8Array(generated);
  if (bytes.length !== CONTENT_KEY_LENGTH) {
    throw new CryptoError('THEMIS_FAILURE', 'Themis generated a symmetric key of unexpected length');
  }
  return new ContentKey(internal, bytes);
}

// ---- For the other files in shared/core/crypto only (not re-exported by index.ts). ----

export function publicThemisKey(key: PublicKey): ThemisPublicKey {
  if (!isPublic(key)) throw new CryptoError('KEY_INVALID', 'expected a PublicKey');
  return publicThemis(key);
}

export function privateThemisKey(key: PrivateKey): ThemisPrivateKey {
  if (!isPrivate(key)) throw new CryptoError('KEY_INVALID', 'expected a PrivateKey');
  return privateThemis(key);
}

export function contentKeyBytes(key: ContentKey): Uint8Array {
  if (!isContent(key)) throw new CryptoError('KEY_INVALID', 'expected a ContentKey');
  return contentBytes(key);
}

export function assertKeyPair(pair: KeyPair, what: string): void {
  if (typeof pair !== 'object' || pair === null || !isPrivate(pair.privateKey) || !isPublic(pair.publicKey)) {
    throw new CryptoError('KEY_INVALID', `${what} must be a KeyPair`);
  }
}

/** Content key from unwrapped bytes (a copy). */
export function contentKeyFromBytes(bytes: Uint8Array): ContentKey {
  if (bytes.length !== CONTENT_KEY_LENGTH)
    throw new CryptoError('KEY_INVALID', 'content key has the wrong length');
  return new ContentKey(internal, bytes.slice());
}

// ---- Helpers ----

function keyBytes(input: unknown, what: string): Uint8Array {
  if (typeof input === 'string') {
    if (input.length > MAX_ENCODED_KEY_LENGTH) throw new CryptoError('KEY_INVALID', `${what} is too long`);
    try {
      return fromBase64Url(input, what);
    } catch {
      throw new CryptoError('KEY_INVALID', `${what} is not base64url`);
    }
  }
  if (!(input instanceof Uint8Array))
    throw new CryptoError('KEY_INVALID', `${what} must be bytes or base64url`);
  // A plain copy: wasm-themis key classes subclass Uint8Array, and their slice() and
  // subarray() go through that subclass's constructor and misbehave.
  return new Uint8Array(input);
}

function checkContainer(bytes: Uint8Array, tag: string, kind: 'public' | 'private'): void {
  if (bytes.length !== EC_KEY_LENGTH) {
    throw new CryptoError('KEY_INVALID', `${kind} key must be ${EC_KEY_LENGTH} bytes (Themis EC P-256)`);
  }
  const actual = String.fromCharCode(...bytes.subarray(0, 4));
  if (actual !== tag) {
    const other = kind === 'public' ? PRIVATE_TAG : PUBLIC_TAG;
    throw new CryptoError(
      'KEY_INVALID',
      actual === other ? `expected a ${kind} key, got the other kind` : `not a Themis EC P-256 ${kind} key`,
    );
  }
}

function construct<T>(make: () => T, kind: string): T {
  try {
    return make();
  } catch (error) {
    if (isThemisError(error)) throw new CryptoError('KEY_INVALID', `Themis rejected the ${kind} key`);
    throw error;
  }
}
