// Failing fast when a service cannot be reached. The Google clients retry an unreachable endpoint
// for most of a minute (cb-admin hung 45 s with the stack down), and a connect to a silent host
// waits for the operating system's timeout; a plain TCP connect with a short deadline tells a
// user in seconds which address did not answer.
import { connect } from 'node:net';
import { displayUrl, NetworkError } from '../../sdk/errors.ts';

export { displayUrl, NetworkError } from '../../sdk/errors.ts';
export type { NetworkFailureCode } from '../../sdk/errors.ts';

/** How long a service may take to accept a connection before it counts as unreachable. */
export const CONNECT_TIMEOUT_MS = 5000;

function hostAndPort(address: string): { host: string; port: number } {
  // Emulator variables come as host:port (FIRESTORE_EMULATOR_HOST) or as a URL (STORAGE_EMULATOR_HOST).
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `tcp://${address}`);
  const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * Resolves once a TCP connection to `address` (a URL or host:port) is accepted; else rejects
 * with a NetworkError within `timeoutMs`. `name` says in the message what was not reached.
 */
export async function assertReachable(
  address: string,
  name = displayUrl(address),
  timeoutMs = CONNECT_TIMEOUT_MS,
): Promise<void> {
  let target: { host: string; port: number };
  try {
    target = hostAndPort(address);
  } catch {
    throw new NetworkError('SERVICE_UNREACHABLE', name, 'not an address');
  }
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new NetworkError('SERVICE_TIMEOUT', name, `no connection within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new NetworkError('SERVICE_UNREACHABLE', name, error.code ?? error.message));
    });
  });
}

/**
 * Checks every local-stack endpoint the command will use that is set in `env` (on Google Cloud
 * none is: the real endpoints are Google's, and their clients' own deadlines apply).
 */
export async function assertStackReachable(
  env: Readonly<Record<string, string | undefined>>,
  names: readonly string[],
): Promise<void> {
  await Promise.all(
    names.flatMap((name) => {
      const value = env[name];
      return value ? [assertReachable(value, `${displayUrl(value)} (${name})`)] : [];
    }),
  );
}
