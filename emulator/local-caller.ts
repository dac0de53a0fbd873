// Whether a request comes from this machine. A development stack bound to the local network
// (`npm start -- --host 0.0.0.0`) serves a phone only what a phone uses; the emulators' control
// endpoints (run a scheduled job, list every recorded push, mark a token dead) have no
// authentication and stay with the developer's own machine.
import type { Socket } from 'node:net';

/** Loopback, or this machine calling itself through one of its own addresses. */
export function isLocalCaller(socket: Pick<Socket, 'remoteAddress' | 'localAddress'>): boolean {
  const remote = socket.remoteAddress;
  if (remote === undefined) return false;
  const bare = remote.startsWith('::ffff:') ? remote.slice('::ffff:'.length) : remote;
  if (bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare)) return true;
  return remote === socket.localAddress;
}
