// FunctionKeys (shared/adapters/function-keys.ts) against the official Firestore emulator and
// the local Cloud KMS emulator, whose IAM policy comes from infra/catalog.json: provisioning
// as the owner, loading as the function's own service account, one Decrypt per instance,
// and typed failures for another function's key and for tampered records.
import type { KeyManagementServiceClient } from '@google-cloud/kms';
import type { Firestore } from '@google-cloud/firestore';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startFirestoreEmulator, type FirestoreEmulator } from '../../emulator/firestore/server.ts';
import { policyFromCatalog, writePolicyFile } from '../../emulator/kms/policy.ts';
import { startKmsEmulator, type KmsEmulator } from '../../emulator/kms/server.ts';
import { ManualClock } from '../../shared/adapters/clock.ts';
import {
  createFunctionKeyDirectory,
  createFunctionKeys,
  FUNCTION_KEYS_COLLECTION,
  functionKmsKeyName,
  provisionFunctionKey,
  provisionFunctionKeys,
} from '../../shared/adapters/function-keys.ts';
import { createFirestore, createKms } from '../../shared/adapters/google-clients.ts';
import { sign, verify } from '../../shared/core/crypto/index.ts';
import { serviceAccountPrincipal } from '../../shared/emulation.ts';
import {
  FunctionKeyError,
  type FunctionKeyErrorCode,
  type FunctionKeys,
} from '../../shared/ports/function-keys.ts';
import { loadCatalog, type Catalog } from '../../shared/runtime/catalog.ts';

const PROJECT = 'cb-adapters-keys';
const baseCatalog = loadCatalog();
/** The real catalog plus one function used only for the provisioning race. */
const catalog: Catalog = {
  ...baseCatalog,
  functions: {
    ...baseCatalog.functions,
    racer: {
      serviceAccount: 'cb-racer',
      trigger: { type: 'http' },
      kms: [{ key: 'racer', purpose: 'ENCRYPT_DECRYPT', role: 'roles/cloudkms.cryptoKeyDecrypter' }],
    },
  },
};
const KEYED = Object.keys(baseCatalog.functions)
  .filter((name) => baseCatalog.functions[name]!.kms.some((g) => g.purpose === 'ENCRYPT_DECRYPT'))
  .sort();
const clock = new ManualClock('2031-02-03T04:05:06.000Z');

let dir: string;
let firestoreEmulator: FirestoreEmulator;
let kmsEmulator: KmsEmulator;
let env: Record<string, string>;
let firestore: Firestore;
let owner: KeyManagementServiceClient;
const clients: KeyManagementServiceClient[] = [];

/** A KMS client that speaks as `functionName`'s own service account, as the functions host sets it up. */
function kmsAs(functionName: string): KeyManagementServiceClient {
  const client = createKms(
    env,
    serviceAccountPrincipal(catalog.functions[functionName]!.serviceAccount, PROJECT),
  );
  clients.push(client);
  return client;
}

function keysFor(functionName: string, kms: KeyManagementServiceClient = kmsAs(functionName)): FunctionKeys {
  return createFunctionKeys({ firestore, kms, catalog, projectId: PROJECT, functionName });
}

async function expectKeyError(promise: Promise<unknown>, code: FunctionKeyErrorCode): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(FunctionKeyError);
  expect((error as FunctionKeyError).code, (error as Error).message).toBe(code);
}

const keyDoc = (name: string) => firestore.collection(FUNCTION_KEYS_COLLECTION).doc(name);

/** Runs `body` with the stored record changed by `change`, then puts the original back. */
async function withRecord(
  name: string,
  change: (record: Record<string, unknown>) => Record<string, unknown>,
  body: () => Promise<void>,
): Promise<void> {
  const original = (await keyDoc(name).get()).data()!;
  await keyDoc(name).set(change({ ...original }));
  try {
    await body();
  } finally {
    await keyDoc(name).set(original);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-adapters-keys-'));
  const policyFile = join(dir, 'policy.json');
  await writePolicyFile(policyFile, policyFromCatalog(catalog, PROJECT));
  [firestoreEmulator, kmsEmulator] = await Promise.all([
    startFirestoreEmulator({ projectId: PROJECT }),
    startKmsEmulator({ port: 0, dataDir: join(dir, 'kms'), policyFile }),
  ]);
  env = { FIRESTORE_EMULATOR_HOST: firestoreEmulator.address, KMS_EMULATOR_HOST: kmsEmulator.address };
  firestore = createFirestore(PROJECT, env);
  owner = createKms(env);
  clients.push(owner);
  // What the stack (and infra/) provisions: the key ring and one key per catalog grant, with
  // the grant's algorithm (the sequencer's signing key has no default in Cloud KMS).
  const location = `projects/${PROJECT}/locations/${catalog.location}`;
  await owner.createKeyRing({ parent: location, keyRingId: catalog.keyRing, keyRing: {} });
  for (const fn of Object.values(catalog.functions)) {
    for (const grant of fn.kms) {
      await owner.createCryptoKey({
        parent: `${location}/keyRings/${catalog.keyRing}`,
        cryptoKeyId: grant.key,
        cryptoKey: {
          purpose: grant.purpose,
          ...(grant.algorithm ? { versionTemplate: { algorithm: grant.algorithm } } : {}),
        },
      });
    }
  }
});

afterAll(async () => {
  for (const client of clients) await client.close();
  await firestore?.terminate();
  await kmsEmulator?.close();
  await firestoreEmulator?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('FunctionKeys over Firestore and Cloud KMS', () => {
  it('a function cannot provision its own key: its service account may only Decrypt', async () => {
    await expectKeyError(
      provisionFunctionKey({
        firestore,
        kms: kmsAs('retention'),
        catalog,
        projectId: PROJECT,
        functionName: 'retention',
      }),
      'KEY_ACCESS_DENIED',
    );
    expect((await keyDoc('retention').get()).exists).toBe(false);
  });

  it('before provisioning, loading fails with KEY_NOT_PROVISIONED', async () => {
    await expectKeyError(keysFor('pairing').keyPair(), 'KEY_NOT_PROVISIONED');
  });

  it('provisions every keyed function once, as the owner, and is idempotent', async () => {
    const first = await provisionFunctionKeys({
      firestore,
      kms: owner,
      catalog: baseCatalog,
      projectId: PROJECT,
      clock,
    });
    expect(first.map((k) => k.functionName)).toEqual(KEYED);
    expect(KEYED).not.toContain('health');
    // A function whose only key signs (the sequencer's Ed25519 key) has no Themis key to wrap.
    expect(baseCatalog.functions.sequencer?.kms.length).toBeGreaterThan(0);
    expect(KEYED).not.toContain('sequencer');
    for (const key of first) {
      expect(key.created).toBe(true);
      expect(key.createdAt.toISOString()).toBe('2031-02-03T04:05:06.000Z');
      expect(key.kmsKeyVersion).toBe(
        `${functionKmsKeyName(catalog, PROJECT, key.functionName)}/cryptoKeyVersions/1`,
      );
      const stored = (await keyDoc(key.functionName).get()).data()!;
      expect(Object.keys(stored).sort()).toEqual([
        'createdAt',
        'format',
        'kmsKeyVersion',
        'publicKey',
        'wrappedPrivateKey',
      ]);
      expect(stored['publicKey']).toBe(key.publicKey.toBase64Url());
    }
    const again = await provisionFunctionKeys({
      firestore,
      kms: owner,
      catalog: baseCatalog,
      projectId: PROJECT,
    });
    expect(again.map((k) => k.created)).toEqual(KEYED.map(() => false));
    expect(again.map((k) => k.publicKey.toBase64Url())).toEqual(first.map((k) => k.publicKey.toBase64Url()));
  });

  it('loads as the function itself: a working key pair whose public half is the published one', async () => {
    const pair = await keysFor('ingest').keyPair();
    const published = await createFunctionKeyDirectory({ firestore }).publishedPublicKeys();
    expect(published.map((k) => k.functionName)).toEqual(KEYED);
    const ingest = published.find((k) => k.functionName === 'ingest')!;
    expect(pair.publicKey.equals(ingest.publicKey)).toBe(true);
    const message = new TextEncoder().encode('receipt for upload u-1');
    expect(verify(sign(message, pair.privateKey), ingest.publicKey)).toEqual(message);
  });

  it('does exactly one KMS Decrypt per instance, however many concurrent and later loads', async () => {
    const kms = kmsAs('records');
    const decrypt = vi.spyOn(kms, 'decrypt');
    const keys = keysFor('records', kms);
    const pairs = await Promise.all(Array.from({ length: 25 }, () => keys.keyPair()));
    const later = await keys.keyPair();
    expect(decrypt).toHaveBeenCalledTimes(1);
    for (const pair of pairs) expect(pair).toBe(later);
    // The request carried the CRC32C fields the client does not compute itself.
    const [request] = decrypt.mock.calls[0]!;
    expect(request?.ciphertextCrc32c?.value).toEqual(expect.any(Number));
    expect(request?.additionalAuthenticatedDataCrc32c?.value).toEqual(expect.any(Number));
  });

  it("loading function A's key as function B's principal fails with KEY_ACCESS_DENIED", async () => {
    await expectKeyError(keysFor('pairing', kmsAs('ingest')).keyPair(), 'KEY_ACCESS_DENIED');
    await expectKeyError(keysFor('retention', kmsAs('records')).keyPair(), 'KEY_ACCESS_DENIED');
    // The owner could Decrypt, but the function's host never runs as the owner; a function
    // without a key in the catalog has nothing to load.
    await expectKeyError(keysFor('health', owner).keyPair(), 'KEY_NOT_CONFIGURED');
  });

  it('a tampered wrapped key fails with KEY_UNWRAP_FAILED, and the failure is not cached', async () => {
    const keys = keysFor('pairing');
    await withRecord(
      'pairing',
      (record) => {
        const wrapped = Buffer.from(record['wrappedPrivateKey'] as string, 'base64');
        wrapped[wrapped.length - 5]! ^= 0x01;
        return { ...record, wrappedPrivateKey: wrapped.toString('base64') };
      },
      () => expectKeyError(keys.keyPair(), 'KEY_UNWRAP_FAILED'),
    );
    // Restored: the same instance now loads (the failed attempt was not memoised).
    await expect(keys.keyPair()).resolves.toBeDefined();
  });

  it('the wrapped key is bound to its public key and its function', async () => {
    const ingestPublic = ((await keyDoc('ingest').get()).data() as { publicKey: string }).publicKey;
    // Another public key beside the same wrapped key: the binding (KMS AAD) no longer holds.
    await withRecord(
      'pairing',
      (record) => ({ ...record, publicKey: ingestPublic }),
      () => expectKeyError(keysFor('pairing').keyPair(), 'KEY_UNWRAP_FAILED'),
    );
    // Pairing's whole record copied over records': records' own key cannot open it.
    const pairingRecord = (await keyDoc('pairing').get()).data()!;
    await withRecord(
      'records',
      () => pairingRecord,
      () => expectKeyError(keysFor('records').keyPair(), 'KEY_UNWRAP_FAILED'),
    );
    // A malformed record is reported as such, before any KMS call.
    await withRecord(
      'retention',
      (record) => ({ ...record, wrappedPrivateKey: 'not base64!' }),
      () => expectKeyError(keysFor('retention').keyPair(), 'KEY_RECORD_INVALID'),
    );
  });

  it('concurrent provisioners of a new function agree on one key', async () => {
    const runs = await Promise.all(
      Array.from({ length: 3 }, () =>
        provisionFunctionKey({ firestore, kms: owner, catalog, projectId: PROJECT, functionName: 'racer' }),
      ),
    );
    expect(runs.filter((r) => r.created)).toHaveLength(1);
    const [first] = runs;
    for (const run of runs) expect(run.publicKey.equals(first!.publicKey)).toBe(true);
    const pair = await keysFor('racer').keyPair();
    expect(pair.publicKey.equals(first!.publicKey)).toBe(true);
  });
});
