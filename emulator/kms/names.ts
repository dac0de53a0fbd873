// Cloud KMS resource names. A malformed name is INVALID_ARGUMENT before anything else
// happens, so handlers only ever see names of the right shape.
import { invalidArgument } from './errors.ts';

const PROJECT = '[a-z0-9][a-z0-9.:-]{0,62}';
const LOCATION = '[a-z0-9][a-z0-9-]{0,62}';
const ID = '[a-zA-Z0-9_-]{1,63}';
const VERSION = '[1-9][0-9]{0,8}';

const ID_PATTERN = new RegExp(`^${ID}$`);
const LOCATION_PATTERN = new RegExp(`^projects/(${PROJECT})/locations/(${LOCATION})$`);
const KEY_RING_PATTERN = new RegExp(`^projects/${PROJECT}/locations/${LOCATION}/keyRings/(${ID})$`);
const CRYPTO_KEY_PATTERN = new RegExp(
  `^(projects/${PROJECT}/locations/${LOCATION}/keyRings/${ID})/cryptoKeys/(${ID})$`,
);
const VERSION_PATTERN = new RegExp(
  `^(projects/${PROJECT}/locations/${LOCATION}/keyRings/${ID}/cryptoKeys/${ID})/cryptoKeyVersions/(${VERSION})$`,
);

const TEMPLATES = {
  Location: 'projects/{project}/locations/{location}',
  KeyRing: 'projects/{project}/locations/{location}/keyRings/{keyRing}',
  CryptoKey: 'projects/{project}/locations/{location}/keyRings/{keyRing}/cryptoKeys/{cryptoKey}',
  CryptoKeyVersion:
    'projects/{project}/locations/{location}/keyRings/{keyRing}/cryptoKeys/{cryptoKey}/cryptoKeyVersions/{version}',
} as const;

export interface CryptoKeyName {
  readonly name: string;
  readonly keyRing: string;
}

export interface VersionName {
  readonly name: string;
  /** The CryptoKey the version belongs to. */
  readonly cryptoKey: string;
  readonly id: number;
}

function required(value: string, field: string): string {
  if (!value) throw invalidArgument(`The required field '${field}' is empty.`);
  return value;
}

function malformed(value: string, field: string, kind: keyof typeof TEMPLATES) {
  return invalidArgument(
    `The value '${truncate(value)}' of field '${field}' is not a valid ${kind} name; expected ${TEMPLATES[kind]}.`,
  );
}

function truncate(value: string): string {
  return value.length > 200 ? `${value.slice(0, 200)}...` : value;
}

export function parseLocation(value: string, field: string): string {
  if (!LOCATION_PATTERN.test(required(value, field))) throw malformed(value, field, 'Location');
  return value;
}

export function parseKeyRing(value: string, field: string): string {
  if (!KEY_RING_PATTERN.test(required(value, field))) throw malformed(value, field, 'KeyRing');
  return value;
}

export function parseCryptoKey(value: string, field: string): CryptoKeyName {
  const match = CRYPTO_KEY_PATTERN.exec(required(value, field));
  if (!match) throw malformed(value, field, 'CryptoKey');
  return { name: value, keyRing: match[1]! };
}

export function parseVersion(value: string, field: string): VersionName {
  const match = VERSION_PATTERN.exec(required(value, field));
  if (!match) throw malformed(value, field, 'CryptoKeyVersion');
  return { name: value, cryptoKey: match[1]!, id: Number(match[2]) };
}

/** Encrypt takes either: a CryptoKey (use its primary) or one of its versions. */
export function parseCryptoKeyOrVersion(value: string, field: string): VersionName | CryptoKeyName {
  if (VERSION_PATTERN.test(required(value, field))) return parseVersion(value, field);
  if (CRYPTO_KEY_PATTERN.test(value)) return parseCryptoKey(value, field);
  throw invalidArgument(
    `The value '${truncate(value)}' of field '${field}' is neither a CryptoKey nor a CryptoKeyVersion name.`,
  );
}

export function parseId(value: string, field: string): string {
  if (!ID_PATTERN.test(required(value, field))) {
    throw invalidArgument(
      `The value '${truncate(value)}' of field '${field}' must match ${ID_PATTERN.source}.`,
    );
  }
  return value;
}

export function versionName(cryptoKey: string, id: number): string {
  return `${cryptoKey}/cryptoKeyVersions/${id}`;
}

export function isVersionName(name: VersionName | CryptoKeyName): name is VersionName {
  return 'id' in name;
}
