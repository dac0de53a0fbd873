// A service that cannot be reached, or does not answer, is reported in seconds with its URL and a
// stable code (SERVICE_UNREACHABLE, SERVICE_TIMEOUT): by the API client, by the reachability
// check, and by cb-admin, which used to hang for 45 s in the Google clients' retries when the
// stack was down. Real sockets on 127.0.0.1; nothing is mocked.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApiClient } from '../../clients/lib/api-client.ts';
import { assertReachable, displayUrl, NetworkError } from '../../clients/lib/reachability.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);

/** A port nothing listens on: bound once to learn a free number, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

describe('network failures', () => {
  let silent: Server;
  let silentPort: number;
  const sockets: Socket[] = [];
  let dir: string;

  beforeAll(async () => {
    // Accepts connections and never answers: a hung service.
    silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    silentPort = (silent.address() as { port: number }).port;
    dir = await mkdtemp(join(tmpdir(), 'cb-cli-network-'));
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((done) => silent.close(done));
    await rm(dir, { recursive: true, force: true });
  });

  it('names an address nobody listens on, with SERVICE_UNREACHABLE', async () => {
    const port = await closedPort();
    const error = await assertReachable(`127.0.0.1:${port}`).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ code: 'SERVICE_UNREACHABLE' });
    expect((error as Error).message).toBe(`cannot reach 127.0.0.1:${port} (ECONNREFUSED)`);
    await expect(assertReachable(`http://127.0.0.1:${silentPort}/x`)).resolves.toBeUndefined();
  });

  it('API calls: refused at once, and a service that never answers times out, naming the URL without its query', async () => {
    const port = await closedPort();
    const refused = createApiClient({ apiBase: `http://127.0.0.1:${port}` });
    const started = Date.now();
    const error = await refused
      .call({ method: 'GET', target: '/records/v1/records?pageSize=10' }, z.unknown())
      .catch((caught: unknown) => caught);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error).toMatchObject({ code: 'SERVICE_UNREACHABLE' });
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);

    const hung = createApiClient({ apiBase: `http://127.0.0.1:${silentPort}`, answerTimeoutMs: 300 });
    const timedOut = await hung
      .call({ method: 'GET', target: '/records/v1/access-log?pageSize=5&treeSize=9' }, z.unknown())
      .catch((caught: unknown) => caught);
    expect(timedOut).toBeInstanceOf(NetworkError);
    expect(timedOut).toMatchObject({
      code: 'SERVICE_TIMEOUT',
      url: `http://127.0.0.1:${silentPort}/records/v1/access-log`,
    });
    expect((timedOut as Error).message).toBe(
      `no answer from http://127.0.0.1:${silentPort}/records/v1/access-log (no answer within 0.3 s)`,
    );
  });

  it('shows URLs without query or fragment', () => {
    expect(displayUrl('http://h:1/a/b?token=secret#x')).toBe('http://h:1/a/b');
    expect(displayUrl('http://h:1')).toBe('http://h:1');
    expect(displayUrl('127.0.0.1:8471')).toBe('127.0.0.1:8471');
  });

  it('cb-admin with the stack down exits 1 within 5 s, naming the address and the code', async () => {
    const admin = join(ROOT, 'clients/cb-admin.ts');
    // What starting the bin costs on this machine (its imports) is not the wait being measured.
    const before = Date.now();
    await run(process.execPath, [admin, '--version']);
    const startUp = Date.now() - before;
    const port = await closedPort();
    const envFile = join(dir, 'stack.env');
    await writeFile(
      envFile,
      `GCLOUD_PROJECT=down\nFIRESTORE_EMULATOR_HOST=127.0.0.1:${port}\nFUNCTIONS_BASE_URL=http://127.0.0.1:${port}\n`,
    );
    for (const command of ['list-hospitals', 'run-retention']) {
      const started = Date.now();
      const outcome = await run(process.execPath, [admin, command, '--env', envFile]).catch(
        (error: unknown) => error as { code: number; stderr: string },
      );
      // Twice the start-up absorbs a busy machine's jitter; the hang this replaced was 45 s.
      expect(Date.now() - started - 2 * startUp, command).toBeLessThan(5000);
      expect(outcome).toMatchObject({ code: 1 });
      const { stderr } = outcome as { stderr: string };
      expect(stderr).toMatch(
        new RegExp(`^cb-admin: SERVICE_UNREACHABLE: cannot reach 127\\.0\\.0\\.1:${port}`),
      );
      expect(stderr).not.toContain('    at ');
    }
  });
});
