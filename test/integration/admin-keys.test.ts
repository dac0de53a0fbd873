// `cb-admin provision-function-keys` as a key custodian runs it (docs/OPERATIONS.md, step 8):
// the bin as its own process against the whole local stack, the real Firestore and KMS clients,
// no mocks. A function whose key record is gone gets a fresh key that only the function itself
// can unwrap; a key that exists is never replaced, because devices and connectors pinned it; a
// key custodian who cannot encrypt is refused with a stable code and nothing is written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_KEYS_COLLECTION, createFunctionKeys } from '../../shared/adapters/function-keys.ts';
import { createKms } from '../../shared/adapters/google-clients.ts';
import { serviceAccountPrincipal } from '../../shared/emulation.ts';
import { FunctionKeyError } from '../../shared/ports/function-keys.ts';
import { loadCatalog } from '../../shared/runtime/catalog.ts';
import { keyedFunctions } from '../../clients/admin/admin.ts';
import { binRunner, writeStackEnvFile, type BinOutcome } from '../helpers/bins.ts';
import { useLocalStack } from '../helpers/local-stack.ts';
import { stackFunctionKeys } from '../helpers/stack-services.ts';

const catalog = loadCatalog();

interface Reported {
  functionName: string;
  created: boolean;
  publicKey: string;
  kmsKeyVersion: string;
  createdAt: string;
}

/** Each stored key record as written, with Firestore's update time: a rewrite changes it. */
type Stored = Map<string, Record<string, unknown>>;

// Each run starts the bin as its own process (about a second of start-up apiece).
describe('cb-admin provision-function-keys', { timeout: 120_000 }, () => {
  const local = useLocalStack('admin-keys');
  let admin: (...args: string[]) => Promise<BinOutcome>;
  let kms: ReturnType<typeof createKms>;

  beforeAll(async () => {
    const run = binRunner(await writeStackEnvFile(local.stack, local.dataDir));
    admin = (...args) => run('cb-admin', ['provision-function-keys', ...args]);
    kms = createKms(local.stack.env);
  });

  afterAll(async () => {
    await kms?.close();
  });

  const projectId = () => local.stack.env.GCLOUD_PROJECT!;

  async function stored(): Promise<Stored> {
    const { docs } = await local.firestore.collection(FUNCTION_KEYS_COLLECTION).get();
    return new Map(
      docs.map((doc) => [
        doc.id,
        {
          ...doc.data(),
          updateTime: `${doc.updateTime.seconds}.${doc.updateTime.nanoseconds}`,
        },
      ]),
    );
  }

  async function forget(functionName: string): Promise<void> {
    await local.firestore.collection(FUNCTION_KEYS_COLLECTION).doc(functionName).delete();
  }

  async function setVersionState(version: string, state: 'ENABLED' | 'DISABLED'): Promise<void> {
    await kms.updateCryptoKeyVersion({
      cryptoKeyVersion: { name: version, state },
      updateMask: { paths: ['state'] },
    });
  }

  it('provisions a function whose key record was deleted, so that only that function can unwrap it', async () => {
    const before = await stored();
    const oldKey = before.get('records')!.publicKey;
    await forget('records');

    const run = await admin('--function', 'records', '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as Reported[];
    expect(report.map(({ functionName, created }) => ({ functionName, created }))).toEqual([
      { functionName: 'records', created: true },
    ]);
    const [fresh] = report;
    expect(fresh!.publicKey).not.toBe(oldKey);

    const after = await stored();
    expect(after.get('records')!.publicKey).toBe(fresh!.publicKey);
    expect(after.get('records')!.kmsKeyVersion).toBe(fresh!.kmsKeyVersion);
    for (const name of keyedFunctions(catalog).filter((n) => n !== 'records')) {
      expect(after.get(name), name).toEqual(before.get(name));
    }

    // The function, speaking to KMS as its own service account, unwraps the new private key,
    // and it belongs to the published public key (importKeyPair checks the pair).
    const pair = await stackFunctionKeys(local.stack, local.firestore, 'records').keyPair();
    expect(pair.publicKey.toBase64Url()).toBe(fresh!.publicKey);

    // Another function's identity may not: the key was wrapped with records' own KMS key.
    const ingestKms = createKms(
      local.stack.env,
      serviceAccountPrincipal(catalog.functions.ingest!.serviceAccount, projectId()),
    );
    try {
      const asIngest = createFunctionKeys({
        firestore: local.firestore,
        kms: ingestKms,
        catalog,
        projectId: projectId(),
        functionName: 'records',
      });
      const refused = await asIngest.keyPair().catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(FunctionKeyError);
      expect((refused as FunctionKeyError).code).toBe('KEY_ACCESS_DENIED');
    } finally {
      await ingestKms.close();
    }
  });

  it('refuses with a stable code (exit 3) when the KMS key cannot encrypt, and writes nothing', async () => {
    const version = (await stored()).get('pairing')!.kmsKeyVersion as string;
    await forget('pairing');
    await setVersionState(version, 'DISABLED');
    try {
      const refused = await admin('--function', 'pairing');
      expect(refused.code).toBe(3);
      expect(refused.stderr).toMatch(/^cb-admin: KEY_DISABLED: /);
      expect(refused.stdout).toBe('');
      expect((await stored()).has('pairing')).toBe(false);
    } finally {
      await setVersionState(version, 'ENABLED');
    }

    const retried = await admin('--function', 'pairing');
    expect(retried.code).toBe(0);
    expect(retried.stdout).toMatch(/^pairing +created +[A-Za-z0-9_-]{60}\n$/);
    expect((await stored()).has('pairing')).toBe(true);
  });

  it('a second run finds every key present and leaves each stored record byte for byte', async () => {
    const before = await stored();
    const run = await admin();
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toEqual(
      keyedFunctions(catalog).map((name) => expect.stringMatching(new RegExp(`^${name} +already present +`))),
    );
    for (const name of keyedFunctions(catalog)) {
      expect(run.stdout).toContain(`${before.get(name)!.publicKey}`);
    }
    expect(await stored()).toEqual(before);

    const one = JSON.parse((await admin('--function', 'records', '--json')).stdout) as Reported[];
    expect(one).toEqual([
      expect.objectContaining({
        functionName: 'records',
        created: false,
        publicKey: before.get('records')!.publicKey,
      }),
    ]);
    expect(await stored()).toEqual(before);
  });

  it('an unknown function, or one without a key of its own, is a usage error (exit 2)', async () => {
    const before = await stored();
    for (const name of ['nosuch', 'health', '']) {
      const run = await admin('--function', name);
      expect(run.code, name).toBe(2);
      expect(run.stderr, name).toContain(`--function must be one of ${keyedFunctions(catalog).join(', ')}`);
      expect(run.stdout, name).toBe('');
    }
    expect(await stored()).toEqual(before);
  });
});
