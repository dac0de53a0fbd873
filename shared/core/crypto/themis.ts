// Loads wasm-themis, the WebAssembly build of Themis, once per process, and hands out the
// ready module. This is the only file that imports wasm-themis at run time. The load is this
// module's top-level await, so whoever imports shared/core/crypto gets a ready Themis: no
// caller can reach a crypto function before it is loaded, or forget to load it.
//
// wasm-themis 0.15 has three traps on Node 18 and later, all handled here:
//  1. Its Emscripten loader calls fetch() on a file path when a global fetch exists, and that
//     fails (themis issue 1062). The loader checks for fetch synchronously, inside the call to
//     initialize(), so we hide globalThis.fetch for exactly that synchronous call and put it
//     back before awaiting anything: no other code ever sees fetch missing.
//  2. initialize() may run once per process; awaiting the exported `initialized` as well would
//     start a second initialisation. We never touch `initialized`, and we never `await` the
//     Emscripten module object (it is never returned from an async function either).
//  3. The loader installs process-wide uncaughtException and unhandledRejection listeners that
//     rethrow, so any stray rejection anywhere later kills the process with exit code 7. They
//     are installed synchronously during the same call, so we diff process.listeners() around
//     it and remove exactly the new ones.
//
// The load state lives on globalThis, not in this module: wasm-themis is a process-wide
// singleton (Node's require cache), so a second copy of this module (test isolation, a
// bundled duplicate) must share the state instead of initialising Themis a second time.
//
// Only the cryptosystems Clinic Bridge uses are exposed. Secure Session and Secure Comparator
// (which hold WASM memory until destroy()) and the integrity-less Context Imprint mode are
// left out on purpose, so nothing in the code base can reach for them by accident.
import type * as WasmThemis from 'wasm-themis';
import { CryptoError } from './errors.ts';

export type Themis = Readonly<
  Pick<
    typeof WasmThemis,
    | 'SecureCellSeal'
    | 'SecureMessage'
    | 'SecureMessageSign'
    | 'SecureMessageVerify'
    | 'KeyPair'
    | 'PrivateKey'
    | 'PublicKey'
    | 'SymmetricKey'
    | 'ThemisError'
  >
>;

interface LoadState {
  promise: Promise<void>;
  module?: Themis;
}

const SLOT = Symbol.for('clinic-bridge.crypto.themis');
const LISTENED_EVENTS = ['uncaughtException', 'unhandledRejection'] as const;

function state(): LoadState | undefined {
  return (globalThis as { [SLOT]?: LoadState })[SLOT];
}

/** Initialises Themis once per process; a second module copy joins the first one's load. */
function loadThemis(): Promise<void> {
  const existing = state();
  if (existing) return existing.promise;
  const fresh = {} as LoadState;
  fresh.promise = initialise(fresh).catch((error: unknown) => {
    delete (globalThis as { [SLOT]?: LoadState })[SLOT];
    throw error instanceof CryptoError
      ? error
      : new CryptoError('THEMIS_LOAD_FAILED', 'could not initialise wasm-themis', { cause: error });
  });
  (globalThis as { [SLOT]?: LoadState })[SLOT] = fresh;
  return fresh.promise;
}

async function initialise(target: LoadState): Promise<void> {
  const wasm = await import('wasm-themis');
  await startInitialize(wasm.initialize);
  target.module = Object.freeze({
    SecureCellSeal: wasm.SecureCellSeal,
    SecureMessage: wasm.SecureMessage,
    SecureMessageSign: wasm.SecureMessageSign,
    SecureMessageVerify: wasm.SecureMessageVerify,
    KeyPair: wasm.KeyPair,
    PrivateKey: wasm.PrivateKey,
    PublicKey: wasm.PublicKey,
    SymmetricKey: wasm.SymmetricKey,
    ThemisError: wasm.ThemisError,
  });
}

/**
 * Calls initialize() with fetch hidden and the loader's process listeners removed, all within
 * one synchronous stretch. Returns a promise that settles with initialisation but carries no
 * value, so the Emscripten module object is never awaited. Both traps are Node's: in a browser
 * the loader needs fetch to download libthemis.wasm (from beside the page, Emscripten's default)
 * and installs no process listeners, so nothing is hidden there.
 */
function startInitialize(initialize: () => Promise<unknown>): Promise<void> {
  const onNode = typeof process === 'object' && typeof process.versions?.node === 'string';
  if (!onNode) return initialize().then(() => undefined);
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(LISTENED_EVENTS.map((event) => [event, new Set(emitter.listeners(event))]));
  const fetchDescriptor = Object.getOwnPropertyDescriptor(globalThis, 'fetch');
  let pending: Promise<unknown>;
  try {
    if (fetchDescriptor) {
      Object.defineProperty(globalThis, 'fetch', { value: undefined, writable: true, configurable: true });
    }
    pending = initialize();
  } finally {
    if (fetchDescriptor) Object.defineProperty(globalThis, 'fetch', fetchDescriptor);
    for (const event of LISTENED_EVENTS) {
      const known = before.get(event)!;
      for (const listener of emitter.listeners(event)) {
        if (!known.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
      }
    }
  }
  return pending.then(() => undefined);
}

await loadThemis();
const ready: Themis = state()!.module!;

/** The ready Themis module. */
export function themis(): Themis {
  return ready;
}

/** True for the errors Themis itself throws (wrong key, wrong context, tampered data: code 11). */
export function isThemisError(error: unknown): boolean {
  return error instanceof ready.ThemisError;
}

/**
 * Runs a Themis call. A ThemisError (Themis refusing the input) becomes `rejected()`; anything
 * else (a WebAssembly abort, out of memory) becomes THEMIS_FAILURE, never an input error.
 */
export function callThemis<T>(call: () => T, rejected: () => CryptoError): T {
  try {
    return call();
  } catch (error) {
    if (error instanceof CryptoError) throw error;
    if (isThemisError(error)) throw withCause(rejected(), error);
    throw new CryptoError('THEMIS_FAILURE', 'Themis failed unexpectedly', { cause: error });
  }
}

/** Like callThemis, but returns undefined when Themis refuses the input. */
export function tryThemis<T>(call: () => T): T | undefined {
  try {
    return call();
  } catch (error) {
    if (isThemisError(error)) return undefined;
    if (error instanceof CryptoError) throw error;
    throw new CryptoError('THEMIS_FAILURE', 'Themis failed unexpectedly', { cause: error });
  }
}

function withCause(error: CryptoError, cause: unknown): CryptoError {
  return new CryptoError(error.code, error.message, { ...error.details, cause });
}
