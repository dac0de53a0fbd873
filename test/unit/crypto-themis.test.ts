// Loading wasm-themis: importing shared/core/crypto loads it, once per process, with fetch hidden
// only while the loader looks for it, and without leaving behind the process listeners that turn
// any stray rejection into exit 7. Process-wide behaviour is checked in child Node processes, so
// this worker stays clean.
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateContentKey, isCryptoError } from '../../shared/core/crypto/index.ts';
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

describe('loading Themis', () => {
  it('is done by the import: crypto works at once and fetch is back (listeners: the fresh-process test)', () => {
    expect(generateContentKey()).toBeDefined();
    expect(typeof globalThis.fetch).toBe('function');
    expect(isCryptoError(new Error('not ours'))).toBe(false);
  });

  it('exposes only the cryptosystems Clinic Bridge uses', () => {
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

  it('in a fresh process: usable straight after import, survives stray errors, shares one load between module copies', () => {
    const script = `
      const seen = [];
      process.on('unhandledRejection', (reason) => seen.push('rejection: ' + reason.message));
      process.on('uncaughtException', (error) => seen.push('exception: ' + error.message));
      const counts = () => [process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')];
      const before = counts();
      const fetchBefore = globalThis.fetch;
      const { generateKeyPair } = await import(${JSON.stringify(cryptoIndex)});
      const usable = generateKeyPair().publicKey.toBytes().length === 45;
      const original = await import(${JSON.stringify(themisModule)});
      const copy = await import(${JSON.stringify(`${themisModule}?second-copy`)});
      const shared = copy.themis() === original.themis();
      const after = counts();
      Promise.reject(new Error('stray rejection'));
      setTimeout(() => { throw new Error('stray exception'); }, 10);
      setTimeout(() => {
        generateKeyPair();
        console.log(JSON.stringify({
          usable, before, after, shared, seen,
          fetchRestored: globalThis.fetch === fetchBefore && typeof fetchBefore === 'function',
        }));
      }, 200);
    `;
    const { status, stdout, stderr } = runNode(script);
    expect(status, stderr).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      usable: true,
      before: [1, 1],
      after: [1, 1],
      shared: true,
      seen: ['rejection: stray rejection', 'exception: stray exception'],
      fetchRestored: true,
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
});
