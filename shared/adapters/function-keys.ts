// FunctionKeys over Firestore and Cloud KMS (invariant 4).
//
// Each function's Themis signing key pair is stored in Firestore at functionKeys/{function}:
//   format             "clinic-bridge/function-key/v1"
//   publicKey          the 45-byte Themis public key, base64url
//   wrappedPrivateKey  KMS Encrypt of the 45-byte Themis private key, base64
//   kmsKeyVersion      the CryptoKeyVersion that wrapped it
//   createdAt          Firestore timestamp
// The ciphertext is bound (KMS additional authenticated data) to the project, the function,
// the purpose and the public key, so a record copied to another function, another project
// or paired with another public key does not unwrap. Only the function's own service
// account may Decrypt with its key (infra/catalog.json); the owner or operator who
// provisions needs Encrypt. The Cloud KMS client does not compute or check CRC32C fields;
// this file does, both ways.
import type { KeyManagementServiceClient } from '@google-cloud/kms';
import { Timestamp, type Firestore } from '@google-cloud/firestore';
import { z } from 'zod';
import { crc32c } from '../core/checksums/crc32c.ts';
import {
  exportPrivateKey,
  generateKeyPair,
  importKeyPair,
  importPublicKey,
  isCryptoError,
  type KeyPair,
  type PublicKey,
} from '../core/crypto/index.ts';
import type { Clock } from '../ports/clock.ts';
import {
  FunctionKeyError,
  type FunctionKeyDirectory,
  type FunctionKeyErrorCode,
  type FunctionKeys,
  type PublishedFunctionKey,
} from '../ports/function-keys.ts';
import { cryptoKeyName, type Catalog } from '../runtime/catalog.ts';
import type { RuntimeContext } from '../runtime/function.ts';
import { createKms } from './google-clients.ts';
import { systemClock } from './clock.ts';

export const FUNCTION_KEYS_COLLECTION = 'functionKeys';
export const FUNCTION_KEY_FORMAT = 'clinic-bridge/function-key/v1';
const PURPOSE = 'themis-signing-key';
const FUNCTION_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** The two KMS calls this file makes; the official client satisfies it. */
export type KmsCrypto = Pick<KeyManagementServiceClient, 'encrypt' | 'decrypt'>;

const recordSchema = z.object({
  format: z.literal(FUNCTION_KEY_FORMAT),
  publicKey: z.string().min(1).max(256),
  wrappedPrivateKey: z.string().min(1).max(4096),
  kmsKeyVersion: z.string().min(1).max(512),
  createdAt: z.instanceof(Timestamp),
});
type KeyRecord = z.infer<typeof recordSchema>;

/** The KMS key that wraps `functionName`'s private key: its ENCRYPT_DECRYPT grant in the catalog. */
export function functionKmsKeyName(catalog: Catalog, projectId: string, functionName: string): string {
  const grant = catalog.functions[functionName]?.kms.find((g) => g.purpose === 'ENCRYPT_DECRYPT');
  if (!grant) {
    throw new FunctionKeyError(
      'KEY_NOT_CONFIGURED',
      `the catalog gives "${functionName}" no ENCRYPT_DECRYPT key`,
    );
  }
  return cryptoKeyName(catalog, grant.key, projectId);
}

/** The additional authenticated data that binds a wrapped key to where it belongs. */
export function functionKeyAad(
  projectId: string,
  functionName: string,
  publicKeyBase64Url: string,
): Uint8Array {
  return new TextEncoder().encode(
    [
      FUNCTION_KEY_FORMAT,
      `project=${projectId}`,
      `function=${functionName}`,
      `purpose=${PURPOSE}`,
      `publicKey=${publicKeyBase64Url}`,
    ].join('\n'),
  );
}

export interface FunctionKeysOptions {
  readonly firestore: Firestore;
  /** A client that speaks as the function itself (createKms(env, localPrincipal) locally). */
  readonly kms: KmsCrypto;
  readonly catalog: Catalog;
  readonly projectId: string;
  readonly functionName: string;
}

/** A function's own keys, speaking to KMS as the identity its host gave it (composition roots). */
export function ownFunctionKeys(
  context: RuntimeContext,
  firestore: Firestore,
  catalog: Catalog,
): FunctionKeys {
  return createFunctionKeys({
    firestore,
    kms: createKms(context.env, context.localPrincipal),
    catalog,
    projectId: context.projectId,
    functionName: context.functionName,
  });
}

/** The function's own key pair, unwrapped on first use and then shared (one Decrypt per instance). */
export function createFunctionKeys(options: FunctionKeysOptions): FunctionKeys {
  const { firestore, kms, catalog, projectId, functionName } = options;
  checkFunctionName(functionName);
  let loading: Promise<KeyPair> | undefined;
  const load = async (): Promise<KeyPair> => {
    const keyName = functionKmsKeyName(catalog, projectId, functionName);
    const record = await readRecord(firestore, functionName);
    if (!record) {
      throw new FunctionKeyError('KEY_NOT_PROVISIONED', `no key is provisioned for "${functionName}"`);
    }
    const publicKey = parsePublicKey(record.publicKey);
    const ciphertext = decodeBase64(record.wrappedPrivateKey);
    const aad = functionKeyAad(projectId, functionName, publicKey.toBase64Url());
    const plaintext = await kmsDecrypt(kms, keyName, ciphertext, aad);
    try {
      return importKeyPair(plaintext, publicKey.toBytes());
    } catch (error) {
      throw new FunctionKeyError(
        'KEY_RECORD_INVALID',
        'the unwrapped private key does not match the public key',
        {
          cause: error,
        },
      );
    } finally {
      plaintext.fill(0);
    }
  };
  return Object.freeze({
    keyPair(): Promise<KeyPair> {
      loading ??= load().catch((error: unknown) => {
        loading = undefined; // the next cold-start attempt tries again
        throw error;
      });
      return loading;
    },
  });
}

export interface ProvisionFunctionKeyOptions extends FunctionKeysOptions {
  /** Default: the system clock. */
  readonly clock?: Clock;
}

export interface ProvisionedFunctionKey extends PublishedFunctionKey {
  /** False when a key already existed (it is kept, never replaced). */
  readonly created: boolean;
}

/**
 * Creates `functionName`'s key pair if it has none: generates it with Themis, wraps the private
 * key with the function's own KMS key and create-only writes the record. Safe to repeat and to
 * race: an existing record is kept and returned. `kms` must speak for a principal that may
 * Encrypt with the key (the owner locally; the operator running cb-admin in a project).
 */
export async function provisionFunctionKey(
  options: ProvisionFunctionKeyOptions,
): Promise<ProvisionedFunctionKey> {
  const { firestore, kms, catalog, projectId, functionName } = options;
  checkFunctionName(functionName);
  const keyName = functionKmsKeyName(catalog, projectId, functionName);
  const existing = await readRecord(firestore, functionName);
  if (existing) return { ...published(functionName, existing), created: false };

  const pair = generateKeyPair();
  const publicKey = pair.publicKey.toBase64Url();
  const secret = exportPrivateKey(pair.privateKey);
  let wrapped: { ciphertext: Uint8Array; version: string };
  try {
    wrapped = await kmsEncrypt(kms, keyName, secret, functionKeyAad(projectId, functionName, publicKey));
  } finally {
    secret.fill(0);
  }
  const record: KeyRecord = {
    format: FUNCTION_KEY_FORMAT,
    publicKey,
    wrappedPrivateKey: Buffer.from(wrapped.ciphertext).toString('base64'),
    kmsKeyVersion: wrapped.version,
    createdAt: Timestamp.fromDate((options.clock ?? systemClock).now()),
  };
  try {
    await keyDoc(firestore, functionName).create(record);
  } catch (error) {
    if (grpcCode(error) !== ALREADY_EXISTS) throw firestoreError(error);
    // Another provisioner won the race: keep its key.
    const winner = await readRecord(firestore, functionName);
    if (!winner) throw firestoreError(error);
    return { ...published(functionName, winner), created: false };
  }
  return { ...published(functionName, record), created: true };
}

/** Provisions every function in the catalog that has an ENCRYPT_DECRYPT key, in name order. */
export async function provisionFunctionKeys(
  options: Omit<ProvisionFunctionKeyOptions, 'functionName'>,
): Promise<ProvisionedFunctionKey[]> {
  const results: ProvisionedFunctionKey[] = [];
  for (const functionName of Object.keys(options.catalog.functions).sort()) {
    const fn = options.catalog.functions[functionName];
    if (!fn?.kms.some((grant) => grant.purpose === 'ENCRYPT_DECRYPT')) continue;
    results.push(await provisionFunctionKey({ ...options, functionName }));
  }
  return results;
}

/** Lists the published public keys; reading them needs no KMS access. */
export function createFunctionKeyDirectory(options: { readonly firestore: Firestore }): FunctionKeyDirectory {
  return Object.freeze({
    async publishedPublicKeys(): Promise<readonly PublishedFunctionKey[]> {
      let docs;
      try {
        ({ docs } = await options.firestore.collection(FUNCTION_KEYS_COLLECTION).get());
      } catch (error) {
        throw firestoreError(error);
      }
      return docs
        .map((doc) => published(doc.id, parseRecord(doc.data())))
        .sort((a, b) => (a.functionName < b.functionName ? -1 : a.functionName > b.functionName ? 1 : 0));
    },
  });
}

// ---- Firestore ----

function keyDoc(firestore: Firestore, functionName: string) {
  return firestore.collection(FUNCTION_KEYS_COLLECTION).doc(functionName);
}

async function readRecord(firestore: Firestore, functionName: string): Promise<KeyRecord | undefined> {
  let snapshot;
  try {
    snapshot = await keyDoc(firestore, functionName).get();
  } catch (error) {
    throw firestoreError(error);
  }
  return snapshot.exists ? parseRecord(snapshot.data()) : undefined;
}

function parseRecord(data: unknown): KeyRecord {
  const result = recordSchema.safeParse(data);
  if (!result.success)
    throw new FunctionKeyError('KEY_RECORD_INVALID', 'the stored function key record is malformed');
  return result.data;
}

function published(functionName: string, record: KeyRecord): PublishedFunctionKey {
  return Object.freeze({
    functionName,
    publicKey: parsePublicKey(record.publicKey),
    kmsKeyVersion: record.kmsKeyVersion,
    createdAt: record.createdAt.toDate(),
  });
}

function parsePublicKey(text: string): PublicKey {
  try {
    return importPublicKey(text);
  } catch (error) {
    throw new FunctionKeyError('KEY_RECORD_INVALID', 'the stored public key is not a Themis public key', {
      cause: isCryptoError(error) ? error : undefined,
    });
  }
}

// ---- Cloud KMS ----

async function kmsEncrypt(
  kms: KmsCrypto,
  name: string,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Promise<{ ciphertext: Uint8Array; version: string }> {
  let response;
  try {
    [response] = await kms.encrypt({
      name,
      plaintext: Buffer.from(plaintext),
      additionalAuthenticatedData: Buffer.from(aad),
      plaintextCrc32c: { value: crc32c(plaintext) },
      additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
    });
  } catch (error) {
    throw kmsError(error, 'Encrypt');
  }
  const ciphertext = bytesOf(response.ciphertext);
  if (
    response.verifiedPlaintextCrc32c !== true ||
    response.verifiedAdditionalAuthenticatedDataCrc32c !== true ||
    !ciphertext ||
    int64(response.ciphertextCrc32c) !== crc32c(ciphertext)
  ) {
    throw new FunctionKeyError('KEY_INTEGRITY', 'a KMS Encrypt request or response failed its CRC32C check');
  }
  if (!response.name?.startsWith(`${name}/cryptoKeyVersions/`)) {
    throw new FunctionKeyError('KEY_INTEGRITY', 'KMS Encrypt answered for another key');
  }
  return { ciphertext, version: response.name };
}

async function kmsDecrypt(
  kms: KmsCrypto,
  name: string,
  ciphertext: Uint8Array,
  aad: Uint8Array,
): Promise<Uint8Array> {
  let response;
  try {
    [response] = await kms.decrypt({
      name,
      ciphertext: Buffer.from(ciphertext),
      additionalAuthenticatedData: Buffer.from(aad),
      ciphertextCrc32c: { value: crc32c(ciphertext) },
      additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
    });
  } catch (error) {
    throw kmsError(error, 'Decrypt');
  }
  const plaintext = bytesOf(response.plaintext);
  if (!plaintext || int64(response.plaintextCrc32c) !== crc32c(plaintext)) {
    plaintext?.fill(0);
    throw new FunctionKeyError('KEY_INTEGRITY', 'a KMS Decrypt response failed its CRC32C check');
  }
  return plaintext;
}

function bytesOf(value: Uint8Array | string | null | undefined): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return new Uint8Array(Buffer.from(value, 'base64'));
  return undefined;
}

/** The client returns Int64Value.value as a string (or a Long, or a number). */
export function int64(value: { value?: unknown } | null | undefined): number | undefined {
  const raw = value?.value;
  if (raw === undefined || raw === null) return undefined;
  const number = Number(typeof raw === 'object' ? String(raw) : raw);
  return Number.isSafeInteger(number) ? number : undefined;
}

// ---- Errors ----

const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;
const PERMISSION_DENIED = 7;
const FAILED_PRECONDITION = 9;
const UNAUTHENTICATED = 16;

function grpcCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function kmsError(error: unknown, method: string): FunctionKeyError {
  const code = grpcCode(error);
  let mapped: FunctionKeyErrorCode;
  if (code === PERMISSION_DENIED || code === UNAUTHENTICATED) mapped = 'KEY_ACCESS_DENIED';
  else if (code === INVALID_ARGUMENT) {
    // KMS says "Decryption failed" for a changed ciphertext or binding, and names the field
    // for a checksum that did not match what it received.
    const details = String((error as { details?: unknown }).details ?? (error as Error).message ?? '');
    mapped = /crc32c/i.test(details) ? 'KEY_INTEGRITY' : 'KEY_UNWRAP_FAILED';
  } else if (code === NOT_FOUND) mapped = 'KEY_NOT_PROVISIONED';
  else if (code === FAILED_PRECONDITION) mapped = 'KEY_DISABLED';
  else mapped = 'KEY_SERVICE_UNAVAILABLE';
  return new FunctionKeyError(
    mapped,
    `KMS ${method} failed: ${mapped}${code === undefined ? '' : ` (gRPC ${code})`}`,
    {
      cause: error,
    },
  );
}

function firestoreError(error: unknown): FunctionKeyError {
  if (error instanceof FunctionKeyError) return error;
  const code = grpcCode(error);
  const mapped: FunctionKeyErrorCode =
    code === PERMISSION_DENIED || code === UNAUTHENTICATED ? 'KEY_ACCESS_DENIED' : 'KEY_SERVICE_UNAVAILABLE';
  return new FunctionKeyError(
    mapped,
    `Firestore failed: ${mapped}${code === undefined ? '' : ` (gRPC ${code})`}`,
    {
      cause: error,
    },
  );
}

// ---- Helpers ----

function checkFunctionName(name: string): void {
  if (!FUNCTION_NAME.test(name)) throw new FunctionKeyError('KEY_NOT_CONFIGURED', 'not a function name');
}

function decodeBase64(text: string): Uint8Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length === 0 || bytes.toString('base64') !== text) {
    throw new FunctionKeyError('KEY_RECORD_INVALID', 'the stored wrapped key is not base64');
  }
  return new Uint8Array(bytes);
}
