// Invariant 4, locally: a function hosted by the stack can use its own KMS key and not
// another function's, because the host names its service account and the KMS emulator
// enforces the grants derived from the catalog.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKms } from '../../shared/adapters/google-clients.ts';
import { cryptoKeyName, loadCatalog } from '../../shared/runtime/catalog.ts';
import { startStack, type Stack } from '../../emulator/stack.ts';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const catalog = loadCatalog(join(fixtures, 'catalog.json'));
const PERMISSION_DENIED = 7;

describe('function identity on the local stack', () => {
  let dataDir: string;
  let stack: Stack;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cb-identity-'));
    stack = await startStack({ dataDir, portBase: 0, catalog, functionsDir: join(fixtures, 'functions') });
  });
  afterAll(async () => {
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function wrapAsOwner(key: string, secret: Buffer): Promise<string> {
    const kms = createKms(stack.env);
    const [result] = await kms.encrypt({
      name: cryptoKeyName(catalog, key, stack.env.GCLOUD_PROJECT!),
      plaintext: secret,
    });
    await kms.close();
    return Buffer.from(result.ciphertext as Uint8Array).toString('base64');
  }

  async function unwrapInFunction(key: string, ciphertext: string) {
    const response = await fetch(`${stack.env.FUNCTIONS_BASE_URL}/key-user`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: cryptoKeyName(catalog, key, stack.env.GCLOUD_PROJECT!), ciphertext }),
    });
    return (await response.json()) as { allowed: boolean; plaintext?: string; code?: number };
  }

  it('lets a function unwrap with its own key', async () => {
    const secret = randomBytes(32);
    const result = await unwrapInFunction('own', await wrapAsOwner('own', secret));
    expect(result).toEqual({ allowed: true, plaintext: secret.toString('base64') });
  });

  it("denies a function another function's key", async () => {
    const result = await unwrapInFunction('neighbours', await wrapAsOwner('neighbours', randomBytes(32)));
    expect(result).toEqual({ allowed: false, code: PERMISSION_DENIED });
  });
});
