// Loading wasm-themis: once per process, with fetch hidden only while the loader looks for it,
// and without leaving behind the process listeners that turn any stray rejection into exit 7.
// Process-wide behaviour is checked in child Node processes, so this worker stays clean.
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  generateContentKey,
  isCryptoError,
  isThemisLoaded,
  loadThemis,
} from '../../shared/core/crypto/index.ts';
import { themis } from '../../shared/core/crypto/themis.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cryptoIndex = pathToFileURL(`${root}shared/core/crypto/index.ts`).href;
const themisModule = pathToFileURL(`${root}shared/core/crypto/themis.ts`).href;

function runNode(script: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    // A crash makes Emscripten print its 2.4 MB minified source; the default 1 MiB buffer
    // limit would kill the child and hide its exit code.
    maxBuffer: 64 * 1024 * 1024,
  });
  // Emscripten prints its whole minified source on a crash; keep only the end.
  return { status: result.status, stdout: result.stdout, stderr: result.stderr.slice(-400) };
}

describe('loadThemis', () => {
  it('loads once, returns the same promise every time, and leaves process listeners and fetch as they were', async () => {
    const events = ['uncaughtException', 'unhandledRejection'] as const;
    const before = events.map((event) => process.listenerCount(event));
    const fetchBefore = globalThis.fetch;
    const first = loadThemis();
    expect(loadThemis()).toBe(first);
    await Promise.all([first, loadThemis()]);
    await loadThemis();
    expect(isThemisLoaded()).toBe(true);
    expect(events.map((event) => process.listenerCount(event))).toEqual(before);
    expect(globalThis.fetch).toBe(fetchBefore);
    expect(generateContentKey()).toBeDefined();
  });

  it('exposes only the cryptosystems Clinic Bridge uses', async () => {
    await loadThemis();
    const exposed = Object.keys(themis()).sort();
    expect(exposed).toEqual(
      [
        'KeyPair',
        'PrivateKey',
        'PublicKey',
        'SecureCellSeal',
        'SecureMessage',
        'SecureMessageSign',
        'SecureMessageVerify',
        'SymmetricKey',
        'ThemisError',
      ].sort(),
    );
    expect(exposed).not.toContain('SecureSession');
    expect(exposed).not.toContain('SecureComparator');
    expect(exposed).not.toContain('SecureCellContextImprint');
  });

  it('in a fresh process: refuses use before loading, survives stray errors afterwards, shares one load between module copies', () => {
    const script = `
      import { generateKeyPair, isCryptoError, isThemisLoaded, loadThemis } from ${JSON.stringify(cryptoIndex)};
      const seen = [];
      process.on('unhandledRejection', (reason) => seen.push('rejection: ' + reason.message));
      process.on('uncaughtException', (error) => seen.push('exception: ' + error.message));
      let notLoaded = false;
      try { generateKeyPair(); } catch (error) { notLoaded = isCryptoError(error, 'THEMIS_NOT_LOADED'); }
      const counts = () => [process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')];
      const before = counts();
      const fetchBefore = globalThis.fetch;
      await Promise.all([loadThemis(), loadThemis()]);
      await loadThemis();
      const copy = await import(${JSON.stringify(`${themisModule}?second-copy`)});
      const copyLoaded = copy.isThemisLoaded();
      await copy.loadThemis();
      const after = counts();
      Promise.reject(new Error('stray rejection'));
      setTimeout(() => { throw new Error('stray exception'); }, 10);
      setTimeout(() => {
        generateKeyPair();
        console.log(JSON.stringify({
          notLoaded, before, after, copyLoaded, seen,
          fetchRestored: globalThis.fetch === fetchBefore && typeof fetchBefore === 'function',
          loaded: isThemisLoaded(),
        }));
      }, 200);
    `;
    const { status, stdout, stderr } = runNode(script);
    expect(status, stderr).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      notLoaded: true,
      before: [1, 1],
      after: [1, 1],
      copyLoaded: true,
      seen: ['rejection: stray rejection', 'exception: stray exception'],
      fetchRestored: true,
      loaded: true,
    });
  });

  it('control: left in place, the listeners wasm-themis installs kill the process with exit code 7', () => {
    const script = `
      import { createRequire } from 'node:module';
      const wasm = createRequire(${JSON.stringify(`${root}package.json`)})('wasm-themis');
      process.on('unhandledRejection', () => {});
      const fetchDescriptor = Object.getOwnPropertyDescriptor(globalThis, 'fetch');
      Object.defineProperty(globalThis, 'fetch', { value: undefined, writable: true, configurable: true });
      const ready = wasm.initialize();
      Object.defineProperty(globalThis, 'fetch', fetchDescriptor);
      await ready.then(() => undefined);
      Promise.reject(new Error('stray rejection'));
      setTimeout(() => console.log('survived'), 200);
    `;
    const { status, stdout } = runNode(script);
    expect(stdout).not.toContain('survived');
    expect(status).toBe(7);
  });

  it('reports THEMIS_NOT_LOADED as a CryptoError before loading', () => {
    const script = `
      import { generateContentKey } from ${JSON.stringify(cryptoIndex)};
      try { generateContentKey(); } catch (error) {
        console.log(JSON.stringify({ code: error.code, name: error.name, message: error.message }));
      }
    `;
    const { status, stdout, stderr } = runNode(script);
    expect(status, stderr).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      code: 'THEMIS_NOT_LOADED',
      name: 'CryptoError',
      message: expect.stringContaining('loadThemis()'),
    });
    expect(isCryptoError(new Error('not ours'))).toBe(false);
  });
});
