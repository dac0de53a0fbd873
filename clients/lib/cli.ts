// What every client bin shares: one way to fail (a message and an exit code, never a stack
// trace for an expected error). cli-program.ts parses the command line and applies it.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RefusedError } from '../../sdk/errors.ts';
import { isProtocolError } from '../../shared/core/protocol/error-codes.ts';
import { ApiError, NetworkError } from './api-client.ts';

/**
 * V8 flags the bins run with (the shebangs, package.json's npm scripts and packaging/ say the
 * same; test/unit/cli-bins.test.ts and packaging.test.ts hold them to this list). Measured on a
 * 1 GiB record (docs/PERFORMANCE.md): a small young generation and a bounded old one make V8
 * collect the per-chunk garbage early; V8's optimising compilers (TurboFan, Maglev) keep about
 * 20 MiB of compiler memory in the process for code whose hot loops are native crypto and I/O
 * anyway, so the bins run on the baseline tiers only (--liftoff-only --no-opt --no-maglev, all
 * three, which cost CPU but not throughput here); and the device's record sink keeps uncollected
 * ArrayBuffers under a budget (sdk/node.ts), which needs gc exposed.
 */
export const CLIENT_NODE_FLAGS = [
  '--max-semi-space-size=2',
  '--max-old-space-size=96',
  '--liftoff-only',
  '--no-opt',
  '--no-maglev',
  '--expose-gc',
] as const;

export type ClientName = 'cb-admin' | 'cb-connector' | 'cb-device';

const CLIENTS_DIR = fileURLToPath(new URL('..', import.meta.url));

/** Starts a bin as its own process, as `npm run <name>` would (same Node, same flags). */
export function spawnClient(
  name: ClientName,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [...CLIENT_NODE_FLAGS, `${CLIENTS_DIR}${name}.ts`, ...args], { env });
}

/** Exit codes, the same for every bin. */
export const EXIT = {
  OK: 0,
  /** Something failed that is not the user's input (service unreachable, internal error). */
  FAILURE: 1,
  /** Wrong command line, missing configuration. */
  USAGE: 2,
  /** The service or the protocol refused (a stable error code is printed). */
  REFUSED: 3,
} as const;

/** A mistake in how the command was called or configured. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export { RefusedError } from '../../sdk/errors.ts';

/** Maps a thrown error to what the user sees and the exit code. */
export function describeFailure(error: unknown): { message: string; exitCode: number } {
  if (error instanceof UsageError) return { message: error.message, exitCode: EXIT.USAGE };
  if (error instanceof RefusedError)
    return { message: `${error.code}: ${error.message}`, exitCode: EXIT.REFUSED };
  if (error instanceof ApiError) {
    const trace = error.traceId ? ` (trace ${error.traceId})` : '';
    return {
      message: `${error.code}: ${error.message}${trace}`,
      exitCode: error.status >= 500 ? EXIT.FAILURE : EXIT.REFUSED,
    };
  }
  if (error instanceof NetworkError) {
    return {
      message: `${error.code}: ${error.message}; is the service (locally: \`npm start\`) running?`,
      exitCode: EXIT.FAILURE,
    };
  }
  if (isProtocolError(error)) return { message: `${error.code}: ${error.message}`, exitCode: EXIT.REFUSED };
  // The connector's HSM custody (recognised by name, so this file never loads the native binding).
  if ((error as Error | null)?.name === 'CustodyError') {
    const { code, message } = error as Error & { code: string };
    const refused = code === 'HSM_LOGIN_FAILED' || code === 'HSM_KEY_MISSING' || code === 'HSM_KEY_EXISTS';
    return { message: `${code}: ${message}`, exitCode: refused ? EXIT.REFUSED : EXIT.FAILURE };
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED' || (error as Error | null)?.cause !== undefined) {
    const cause = (error as { cause?: { code?: unknown } }).cause;
    if (code === 'ECONNREFUSED' || cause?.code === 'ECONNREFUSED') {
      return {
        message: 'SERVICE_UNREACHABLE: cannot reach the service (is the stack running?)',
        exitCode: EXIT.FAILURE,
      };
    }
  }
  return { message: (error as Error | null)?.message ?? String(error), exitCode: EXIT.FAILURE };
}
