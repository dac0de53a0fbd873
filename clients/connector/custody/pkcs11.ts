// The hospital's keys in a PKCS#11 token (an HSM, or SoftHSM2 in the tests). The token holds
// an EC P-256 key pair and two generic secrets per key version, all created inside it as
// sensitive and not extractable, so the connector only ever holds handles: it hashes a message
// itself and lets the token sign the digest, and lets the token compute every HMAC.
//
// pkcs11js is synchronous and Node runs these calls on one thread, so one session serves every
// operation without two of them ever interleaving on it.
//
// A PKCS#11 module keeps its state per process (a second C_Initialize fails, and C_Finalize
// ends every session), so a process holds at most one open connection to a module at a time:
// a second one is refused rather than allowed to log out or finalise the first.
//
// The PIN is passed to C_Login and nowhere else: no error message is built from it, nor from
// anything the module says beyond its CKR_ name.
import { createHash } from 'node:crypto';
import pkcs11js, { type Template } from 'pkcs11js';
import {
  CryptoError,
  publicKeyFromPoint,
  signedFormFromRaw,
  verify,
  type PublicKey,
  type Signer,
} from '../../../shared/core/crypto/index.ts';
import type { HmacKey } from '../../../shared/core/protocol/index.ts';
import type { KeyCustody } from './custody.ts';

type Handle = Buffer;
type Pkcs11 = InstanceType<typeof pkcs11js.PKCS11>;

/** The label of the hospital's signing key pair (private and public key objects). */
export const PKCS11_SIGNING_LABEL = 'clinic-bridge-signing';

/** The label of a secret key of one version: clinic-bridge-pseudonym-v1, clinic-bridge-binding-v1. */
export function pkcs11SecretLabel(purpose: 'pseudonym' | 'binding', version: number): string {
  return `clinic-bridge-${purpose}-v${checkVersion(version)}`;
}

const SECRET_LABEL = /^clinic-bridge-(pseudonym|binding)-v([1-9][0-9]{0,4})$/;
/** DER of the prime256v1 (P-256) object identifier, 1.2.840.10045.3.1.7. */
const P256_OID = Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
const HMAC_LENGTH = 32;
const RAW_SIGNATURE_LENGTH = 64;
// Signed and checked at every open, then dropped. It is not JSON, so no verifier of the
// protocol's documents could take it for one.
const SELF_TEST_MESSAGE = new TextEncoder().encode('clinic-bridge pkcs11 custody self-test');

export type CustodyErrorCode =
  /** The module, its slot or the token cannot be reached (or the module is busy in this process). */
  | 'HSM_UNAVAILABLE'
  /** The token refused the PIN (wrong, locked, expired) or the session lost its login. */
  | 'HSM_LOGIN_FAILED'
  /** A key the connector needs is not in the token. */
  | 'HSM_KEY_MISSING'
  /** Provisioning found a key it would have created: it never replaces keys. */
  | 'HSM_KEY_EXISTS'
  /** The token failed an operation, or its keys do not check out. */
  | 'HSM_FAILURE'
  /** The custody was closed and may not be used again. */
  | 'CUSTODY_CLOSED';

export class CustodyError extends Error {
  readonly code: CustodyErrorCode;

  constructor(code: CustodyErrorCode, message: string) {
    super(message);
    this.name = 'CustodyError';
    this.code = code;
  }
}

export interface Pkcs11Options {
  /** The vendor's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  readonly modulePath: string;
  /** The label of the token (as the HSM's tools show it). */
  readonly tokenLabel: string;
  /** The token's user PIN. */
  readonly pin: string;
  /**
   * The secrets' version: provisioning creates it (default 1); opening uses it for both keys
   * (default: the highest version of each in the token, so adding clinic-bridge-binding-v2
   * rotates the binding key and leaves the pseudonyms as they were).
   */
  readonly version?: number;
}

export interface Pkcs11Custody extends KeyCustody {
  readonly kind: 'pkcs11';
}

interface Connection {
  readonly lib: Pkcs11;
  readonly session: Handle;
}

/**
 * Creates the hospital's keys in an initialised token: the signing key pair and the pseudonym
 * and binding secrets of `version`, all private, sensitive and not extractable. Refuses with
 * HSM_KEY_EXISTS if any of them is there already, and removes what it created if it fails
 * halfway. Returns the hospital's public key, for the cloud's registration.
 */
export function provisionPkcs11Keys(options: Pkcs11Options): PublicKey {
  const version = checkVersion(options.version ?? 1);
  const labels = [
    PKCS11_SIGNING_LABEL,
    pkcs11SecretLabel('pseudonym', version),
    pkcs11SecretLabel('binding', version),
  ];
  const connection = connect(options, true);
  const { lib, session } = connection;
  const created: Handle[] = [];
  try {
    for (const label of labels) {
      if (findObjects(connection, [{ type: pkcs11js.CKA_LABEL, value: label }]).length > 0) {
        throw new CustodyError(
          'HSM_KEY_EXISTS',
          `the token already holds "${label}"; provisioning never replaces keys`,
        );
      }
    }
    const id = Buffer.from(PKCS11_SIGNING_LABEL);
    const pair = tokenCall('generate the signing key pair', () =>
      lib.C_GenerateKeyPair(
        session,
        { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
        [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
          { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
          { type: pkcs11js.CKA_TOKEN, value: true },
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_VERIFY, value: true },
          { type: pkcs11js.CKA_EC_PARAMS, value: P256_OID },
          { type: pkcs11js.CKA_LABEL, value: PKCS11_SIGNING_LABEL },
          { type: pkcs11js.CKA_ID, value: id },
        ],
        [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
          { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
          { type: pkcs11js.CKA_TOKEN, value: true },
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: true },
          { type: pkcs11js.CKA_EXTRACTABLE, value: false },
          { type: pkcs11js.CKA_SIGN, value: true },
          { type: pkcs11js.CKA_DERIVE, value: false },
          { type: pkcs11js.CKA_DECRYPT, value: false },
          { type: pkcs11js.CKA_UNWRAP, value: false },
          { type: pkcs11js.CKA_LABEL, value: PKCS11_SIGNING_LABEL },
          { type: pkcs11js.CKA_ID, value: id },
        ],
      ),
    );
    created.push(pair.publicKey, pair.privateKey);
    for (const label of labels.slice(1)) {
      created.push(
        tokenCall(`generate "${label}"`, () =>
          lib.C_GenerateKey(session, { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN }, [
            ...secretTemplate(label),
            { type: pkcs11js.CKA_VALUE_LEN, value: HMAC_LENGTH },
          ]),
        ),
      );
    }
    const publicKey = readPublicKey(connection, pair.publicKey);
    selfTest(connection, pair.privateKey, publicKey);
    return publicKey;
  } catch (error) {
    for (const handle of created.reverse()) {
      try {
        lib.C_DestroyObject(session, handle);
      } catch {
        // Best effort: the error that matters is the one being thrown.
      }
    }
    throw error;
  } finally {
    disconnect(connection);
  }
}

/**
 * Opens the hospital's keys in a token as a KeyCustody. At open it signs a fixed message and
 * verifies it with the token's public key, and computes an HMAC with each secret, so a wrong or
 * unusable key is found at start rather than at the first upload.
 */
export function openPkcs11Custody(options: Pkcs11Options): Pkcs11Custody {
  let connection: Connection | undefined = connect(options, false);
  try {
    const live = connection;
    const privateKey = findKey(live, pkcs11js.CKO_PRIVATE_KEY, PKCS11_SIGNING_LABEL);
    const publicKey = readPublicKey(live, findKey(live, pkcs11js.CKO_PUBLIC_KEY, PKCS11_SIGNING_LABEL));
    const versionOf = (purpose: 'pseudonym' | 'binding'): number =>
      options.version === undefined ? highestVersion(live, purpose) : checkVersion(options.version);
    const pseudonymVersion = versionOf('pseudonym');
    const bindingVersion = versionOf('binding');

    const use = <T>(what: string, operation: (connection: Connection) => T): T => {
      if (!connection) throw new CustodyError('CUSTODY_CLOSED', 'the key custody has been closed');
      const open = connection;
      return tokenCall(what, () => operation(open));
    };
    const hmacKey = (handle: Handle, keyVersion: number): HmacKey =>
      Object.freeze({
        version: keyVersion,
        hmac(...parts: Uint8Array[]): Uint8Array {
          for (const part of parts) {
            if (!(part instanceof Uint8Array)) throw new TypeError('HMAC input must be bytes');
          }
          return use('compute an HMAC', ({ lib, session }) => {
            lib.C_SignInit(session, { mechanism: pkcs11js.CKM_SHA256_HMAC }, handle);
            const mac = lib.C_Sign(session, Buffer.concat(parts), Buffer.alloc(HMAC_LENGTH));
            // A binding secret is an HMAC: only the caller's copy should outlive this call.
            try {
              if (mac.length !== HMAC_LENGTH) {
                throw new CustodyError('HSM_FAILURE', 'the token returned a malformed HMAC');
              }
              return new Uint8Array(mac);
            } finally {
              mac.fill(0);
            }
          });
        },
      });
    const signer: Signer = Object.freeze({
      publicKey,
      sign(message: Uint8Array): Uint8Array {
        if (!(message instanceof Uint8Array) || message.length === 0) {
          throw new CryptoError('INPUT_INVALID', 'cannot sign an empty message');
        }
        const raw = use('sign', (open) => signRaw(open, privateKey, message));
        return signedFormFromRaw(message, raw);
      },
    });

    const pseudonymKey = hmacKey(
      findKey(live, pkcs11js.CKO_SECRET_KEY, pkcs11SecretLabel('pseudonym', pseudonymVersion)),
      pseudonymVersion,
    );
    const bindingKeys = new Map<number, HmacKey>();
    const bindingKeyOf = (keyVersion: number): HmacKey => {
      let key = bindingKeys.get(checkVersion(keyVersion));
      if (!key) {
        const label = pkcs11SecretLabel('binding', keyVersion);
        key = hmacKey(
          use(`find "${label}"`, (open) => findKey(open, pkcs11js.CKO_SECRET_KEY, label)),
          keyVersion,
        );
        bindingKeys.set(keyVersion, key);
      }
      return key;
    };
    const bindingKey = bindingKeyOf(bindingVersion);

    selfTest(live, privateKey, publicKey);
    for (const key of [pseudonymKey, bindingKey]) key.hmac(SELF_TEST_MESSAGE);

    return Object.freeze({
      kind: 'pkcs11',
      signer,
      pseudonymKey,
      bindingKey,
      bindingKeyOf,
      close() {
        if (!connection) return;
        const open = connection;
        connection = undefined;
        disconnect(open);
      },
    });
  } catch (error) {
    if (connection) disconnect(connection);
    connection = undefined;
    throw error;
  }
}

/**
 * For tests only: creates a secret key object with a known value (sensitive, not extractable,
 * usable for HMAC) so that HMACs computed in the token can be compared with node:crypto's.
 * A real token's secrets come from provisionPkcs11Keys and never exist outside it.
 */
export function importPkcs11SecretForTest(
  options: Omit<Pkcs11Options, 'version'> & { readonly label: string; readonly value: Uint8Array },
): void {
  const connection = connect(options, true);
  try {
    tokenCall(`create "${options.label}"`, () =>
      connection.lib.C_CreateObject(connection.session, [
        ...secretTemplate(options.label),
        { type: pkcs11js.CKA_VALUE, value: Buffer.from(options.value) },
      ]),
    );
  } finally {
    disconnect(connection);
  }
}

// ---- the token ----

function checkVersion(version: number): number {
  if (!Number.isSafeInteger(version) || version < 1 || version > 0xffff) {
    throw new RangeError('a key version is 1..65535');
  }
  return version;
}

function secretTemplate(label: string): Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_SIGN, value: true },
    { type: pkcs11js.CKA_VERIFY, value: false },
    { type: pkcs11js.CKA_ENCRYPT, value: false },
    { type: pkcs11js.CKA_DECRYPT, value: false },
    { type: pkcs11js.CKA_WRAP, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: false },
    { type: pkcs11js.CKA_DERIVE, value: false },
    { type: pkcs11js.CKA_LABEL, value: label },
  ];
}

/** Loads the module, finds the token by label, opens a session and logs the user in. */
function connect(options: Omit<Pkcs11Options, 'version'>, write: boolean): Connection {
  const { modulePath, tokenLabel, pin } = options;
  if (typeof modulePath !== 'string' || modulePath === '') {
    throw new CustodyError('HSM_UNAVAILABLE', 'no PKCS#11 module path was given');
  }
  if (typeof tokenLabel !== 'string' || tokenLabel === '') {
    throw new CustodyError('HSM_UNAVAILABLE', 'no token label was given');
  }
  if (typeof pin !== 'string' || pin === '') {
    throw new CustodyError('HSM_LOGIN_FAILED', 'no PIN was given for the token');
  }
  const lib = new pkcs11js.PKCS11();
  try {
    lib.load(modulePath);
  } catch {
    throw new CustodyError('HSM_UNAVAILABLE', `cannot load the PKCS#11 module ${modulePath}`);
  }
  try {
    lib.C_Initialize();
  } catch (error) {
    unload(lib);
    const name = ckrName(error);
    throw new CustodyError(
      'HSM_UNAVAILABLE',
      name === 'CKR_CRYPTOKI_ALREADY_INITIALIZED'
        ? `the PKCS#11 module ${modulePath} is already in use in this process: close the other custody first`
        : `the PKCS#11 module ${modulePath} did not initialise (${name})`,
    );
  }
  let session: Handle | undefined;
  try {
    const slot = findSlot(lib, tokenLabel);
    const flags = pkcs11js.CKF_SERIAL_SESSION | (write ? pkcs11js.CKF_RW_SESSION : 0);
    session = tokenCall(`open a session with token "${tokenLabel}"`, () => lib.C_OpenSession(slot, flags));
    const opened = session;
    try {
      lib.C_Login(opened, pkcs11js.CKU_USER, pin);
    } catch (error) {
      const name = ckrName(error);
      throw new CustodyError(
        codeOf(name) === 'HSM_UNAVAILABLE' ? 'HSM_UNAVAILABLE' : 'HSM_LOGIN_FAILED',
        `the token "${tokenLabel}" refused the login (${name})`,
      );
    }
    return { lib, session: opened };
  } catch (error) {
    if (session) {
      try {
        lib.C_CloseSession(session);
      } catch {
        // Finalising below ends it anyway.
      }
    }
    finalize(lib);
    throw error;
  }
}

function disconnect({ lib, session }: Connection): void {
  for (const step of [() => lib.C_Logout(session), () => lib.C_CloseSession(session)]) {
    try {
      step();
    } catch {
      // Finalising ends the login and the session whatever happened here.
    }
  }
  finalize(lib);
}

function finalize(lib: Pkcs11): void {
  try {
    lib.C_Finalize();
  } catch {
    // Nothing more can be done for a module that will not finalise; unload it regardless.
  }
  unload(lib);
}

function unload(lib: Pkcs11): void {
  try {
    lib.close();
  } catch {
    // Already unloaded.
  }
}

function findSlot(lib: Pkcs11, tokenLabel: string): Handle {
  const slots = tokenCall('list the slots', () => lib.C_GetSlotList(true));
  const matching = slots.filter((slot) => {
    try {
      return lib.C_GetTokenInfo(slot).label.replace(/[ \0]+$/, '') === tokenLabel;
    } catch {
      return false; // A slot whose token went away is not the one asked for.
    }
  });
  if (matching.length === 0) {
    throw new CustodyError('HSM_UNAVAILABLE', `no token labelled "${tokenLabel}" is present`);
  }
  if (matching.length > 1) {
    throw new CustodyError('HSM_UNAVAILABLE', `more than one token is labelled "${tokenLabel}"`);
  }
  return matching[0]!;
}

function findObjects({ lib, session }: Connection, template: Template): Handle[] {
  return tokenCall('search the token', () => {
    lib.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_TOKEN, value: true }, ...template]);
    try {
      const found: Handle[] = [];
      for (
        let batch = lib.C_FindObjects(session, 16);
        batch.length > 0;
        batch = lib.C_FindObjects(session, 16)
      ) {
        found.push(...batch);
      }
      return found;
    } finally {
      lib.C_FindObjectsFinal(session);
    }
  });
}

/** The one key object of a class with a label; two would make the choice ambiguous. */
function findKey(connection: Connection, objectClass: number, label: string): Handle {
  const found = findObjects(connection, [
    { type: pkcs11js.CKA_CLASS, value: objectClass },
    { type: pkcs11js.CKA_LABEL, value: label },
  ]);
  if (found.length === 0) throw new CustodyError('HSM_KEY_MISSING', `the token holds no key "${label}"`);
  if (found.length > 1) throw new CustodyError('HSM_FAILURE', `the token holds more than one key "${label}"`);
  return found[0]!;
}

/** The highest version of the pseudonym or binding keys in the token. */
function highestVersion(connection: Connection, purpose: 'pseudonym' | 'binding'): number {
  let highest = 0;
  for (const handle of findObjects(connection, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
  ])) {
    const [label] = tokenCall('read a key label', () =>
      connection.lib.C_GetAttributeValue(connection.session, handle, [{ type: pkcs11js.CKA_LABEL }]),
    );
    const match = SECRET_LABEL.exec(label?.value.toString('utf8') ?? '');
    const version = match?.[1] === purpose ? Number(match[2]) : 0;
    if (version <= 0xffff) highest = Math.max(highest, version);
  }
  if (highest === 0) {
    throw new CustodyError('HSM_KEY_MISSING', `the token holds no clinic-bridge-${purpose}-v<n> key`);
  }
  return highest;
}

/** The public key from CKA_EC_POINT, which PKCS#11 wraps in a DER OCTET STRING. */
function readPublicKey(connection: Connection, handle: Handle): PublicKey {
  const [attribute] = tokenCall('read the public key', () =>
    connection.lib.C_GetAttributeValue(connection.session, handle, [{ type: pkcs11js.CKA_EC_POINT }]),
  );
  const value = new Uint8Array(attribute?.value ?? []);
  // An OCTET STRING of 65 (uncompressed) or 33 (compressed) bytes. Some older modules return the
  // bare point instead, which is 65 or 33 bytes itself, so the lengths tell the two apart.
  const wrapped = value[0] === 0x04 && (value[1] === 65 || value[1] === 33) && value.length === value[1] + 2;
  try {
    return publicKeyFromPoint(wrapped ? value.subarray(2) : value);
  } catch {
    throw new CustodyError('HSM_FAILURE', `the token's "${PKCS11_SIGNING_LABEL}" key is not a P-256 key`);
  }
}

function signRaw({ lib, session }: Connection, privateKey: Handle, message: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(message).digest();
  lib.C_SignInit(session, { mechanism: pkcs11js.CKM_ECDSA }, privateKey);
  const raw = lib.C_Sign(session, digest, Buffer.alloc(RAW_SIGNATURE_LENGTH));
  if (raw.length !== RAW_SIGNATURE_LENGTH) {
    throw new CustodyError('HSM_FAILURE', 'the token returned a signature that is not P-256');
  }
  return new Uint8Array(raw);
}

/** Signs the self-test message in the token and checks it with the token's public key. */
function selfTest(connection: Connection, privateKey: Handle, publicKey: PublicKey): void {
  const raw = tokenCall('sign the self-test', () => signRaw(connection, privateKey, SELF_TEST_MESSAGE));
  try {
    verify(signedFormFromRaw(SELF_TEST_MESSAGE, raw), publicKey);
  } catch {
    throw new CustodyError(
      'HSM_FAILURE',
      `the token's signature does not verify with its "${PKCS11_SIGNING_LABEL}" public key`,
    );
  }
}

/** Runs a token operation; a PKCS#11 failure becomes a CustodyError that names only its CKR_. */
function tokenCall<T>(what: string, operation: () => T): T {
  try {
    return operation();
  } catch (error) {
    if (error instanceof CustodyError || error instanceof CryptoError) throw error;
    const name = ckrName(error);
    throw new CustodyError(codeOf(name), `the token could not ${what} (${name})`);
  }
}

function ckrName(error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  return /^CKR_[A-Z0-9_]+/.exec(message)?.[0] ?? 'an error outside PKCS#11';
}

function codeOf(ckr: string): CustodyErrorCode {
  if (
    ckr.startsWith('CKR_PIN_') ||
    ckr === 'CKR_USER_NOT_LOGGED_IN' ||
    ckr === 'CKR_USER_PIN_NOT_INITIALIZED'
  ) {
    return 'HSM_LOGIN_FAILED';
  }
  if (
    [
      'CKR_DEVICE_REMOVED',
      'CKR_DEVICE_ERROR',
      'CKR_TOKEN_NOT_PRESENT',
      'CKR_TOKEN_NOT_RECOGNIZED',
      'CKR_SLOT_ID_INVALID',
      'CKR_SESSION_CLOSED',
      'CKR_SESSION_HANDLE_INVALID',
      'CKR_CRYPTOKI_NOT_INITIALIZED',
    ].includes(ckr)
  ) {
    return 'HSM_UNAVAILABLE';
  }
  return 'HSM_FAILURE';
}
