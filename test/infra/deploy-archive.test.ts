// The deploy archive (`npm run build`) is what Cloud Functions installs: it must hold only what
// the functions import, and install and load every function on its own, far from the repo's
// node_modules. The install comes from the npm cache that `npm ci` filled (no network needed).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog } from '../../shared/runtime/catalog.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)));
}

/** The package a bare specifier names: `firebase-admin/app` → `firebase-admin`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Every package the archive's JavaScript imports, statically or dynamically. */
function importedPackages(dir: string): Set<string> {
  const builtins = new Set(builtinModules);
  const found = new Set<string>();
  for (const file of filesUnder(dir).filter((f) => f.endsWith('.js'))) {
    const { importedFiles } = ts.preProcessFile(readFileSync(join(dir, file), 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      // `#…` are the archive's own "imports" (shared/core's platform), not packages.
      if (
        fileName.startsWith('.') ||
        fileName.startsWith('#') ||
        fileName.startsWith('node:') ||
        builtins.has(fileName)
      )
        continue;
      found.add(packageOf(fileName));
    }
  }
  return found;
}

/** npm for a directory outside the repo: none of the parent `npm test`'s settings leak in. */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
}

describe('the deploy archive', () => {
  let work: string;
  let archive: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'cb-archive-'));
    archive = join(work, 'archive');
    execFileSync(process.execPath, [join(ROOT, 'functions/build-archive.ts'), '--out', archive], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  }, 120_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('ships compiled functions and shared code, the catalog and its manifest, nothing else', () => {
    const tops = new Set(filesUnder(archive).map((file) => file.split('/')[0]));
    expect([...tops].sort()).toEqual(['functions', 'infra', 'package-lock.json', 'package.json', 'shared']);
    const files = filesUnder(archive);
    expect(files.filter((f) => f.startsWith('infra/'))).toEqual(['infra/catalog.json']);
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
    expect(files).toContain('functions/index.js');
  });

  it('declares exactly the packages its code imports, pinned to what the tests ran with', () => {
    const manifest = readJson(join(archive, 'package.json'));
    const dependencies = manifest.dependencies as Record<string, string>;
    expect(Object.keys(dependencies).sort()).toEqual([...importedPackages(archive)].sort());
    const lock = readJson(join(ROOT, 'package-lock.json')).packages as Record<string, { version: string }>;
    for (const [name, version] of Object.entries(dependencies)) {
      expect(version, name).toBe(lock[`node_modules/${name}`]!.version);
    }
    // What only the clients, the local stack or the tests use never reaches production.
    for (const unshipped of ['jsqr', 'pngjs', 'qrcode', 'cron-parser', '@grpc/proto-loader', 'vitest']) {
      expect(dependencies).not.toHaveProperty(unshipped);
    }
    expect(manifest.main).toBe('functions/index.js');
  });

  it('installs from its own lock and loads every function in the catalog with only that', () => {
    const install = (...mode: string[]) =>
      spawnSync('npm', ['ci', ...mode, '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], {
        cwd: archive,
        env: npmEnv(),
        encoding: 'utf8',
        timeout: 240_000,
      });
    // The cache `npm ci` filled is enough; the registry is asked only if the cache was cleared.
    let installed = install('--offline');
    if (installed.status !== 0) installed = install('--prefer-offline');
    expect(installed.status, installed.stderr.slice(-2000)).toBe(0);
    const modules = readdirSync(join(archive, 'node_modules'));
    expect(modules).not.toContain('jsqr');
    expect(modules).not.toContain('vitest');

    const names = Object.keys(loadCatalog().functions).sort();
    const loaded = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `await import('./functions/index.js');
         const { getFunction } = await import('@google-cloud/functions-framework/testing');
         const names = ${JSON.stringify(names)};
         console.log(JSON.stringify(names.filter((name) => typeof getFunction(name) === 'function')));`,
      ],
      {
        cwd: archive,
        encoding: 'utf8',
        timeout: 60_000,
        env: {
          PATH: process.env.PATH,
          GOOGLE_CLOUD_PROJECT: 'clinic-bridge-archive-test',
          SERVICE_ACCOUNT_EMAIL: 'archive-test@clinic-bridge-archive-test.iam.gserviceaccount.com',
          METADATA_SERVER_DETECTION: 'none',
        },
      },
    );
    expect(loaded.status, loaded.stderr.slice(-2000)).toBe(0);
    expect(JSON.parse(loaded.stdout.trim())).toEqual(names);
  }, 300_000);
});
