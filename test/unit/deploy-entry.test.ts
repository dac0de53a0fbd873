// The deployment archive's entry point registers every function that exists in functions/,
// each under the name infra/ deploys it with (the entry point), and nothing is built at import.
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { getFunction } from '@google-cloud/functions-framework/testing';
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '../../shared/runtime/catalog.ts';

const FUNCTIONS_DIR = fileURLToPath(new URL('../../functions', import.meta.url));

describe('deployment entry point (functions/index.ts)', () => {
  it('registers every function folder under its catalog name', async () => {
    process.env.GOOGLE_CLOUD_PROJECT ??= 'cb-deploy-entry';
    process.env.SERVICE_ACCOUNT_EMAIL ??= 'cb-test@cb-deploy-entry.iam.gserviceaccount.com';
    await import('../../functions/index.ts');
    const folders = (await readdir(FUNCTIONS_DIR, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    expect(folders.length).toBeGreaterThanOrEqual(4);
    const catalog = loadCatalog();
    for (const name of folders) {
      expect(catalog.functions[name], `${name} is in infra/catalog.json`).toBeDefined();
      expect(typeof getFunction(name), `${name} is registered`).toBe('function');
    }
  });
});
