// Runs Google's own Firestore emulator (shipped with the Google Cloud CLI) as a child
// process group. We start the JVM directly instead of `gcloud emulators firestore start`:
// gcloud wraps a shell script that wraps Java, and signalling gcloud leaves the JVM
// holding the port. A detached child is its own process group, so one signal reaches
// everything it started.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, dirname, join, resolve } from 'node:path';

export interface FirestoreEmulatorOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  projectId: string;
  /** Documents are exported here on close() and imported from here on start. */
  dataDir?: string;
  rulesFile?: string;
  log?: (entry: Record<string, unknown>) => void;
}

export interface FirestoreEmulator {
  /** host:port, the value of FIRESTORE_EMULATOR_HOST. */
  readonly address: string;
  readonly port: number;
  /** Writes the current documents to dataDir, so the next start sees them. */
  persist(): Promise<void>;
  /** Persists (when dataDir is set), then stops the JVM and waits until the port is free. */
  close(): Promise<void>;
}

export class FirestoreUnavailableError extends Error {
  override name = 'FirestoreUnavailableError';
}

const EXPORT_NAME = 'snapshot';
const GUARDIAN =
  'java "$@" </dev/null & jvm=$!; ' +
  "trap 'kill $jvm 2>/dev/null; wait $jvm; exit 0' TERM INT; " +
  'while read -r _; do :; done; kill $jvm 2>/dev/null; wait $jvm';
const INSTALL_HINT =
  'Install the Google Cloud CLI with its Firestore emulator (`gcloud components install cloud-firestore-emulator`, ' +
  'or the Debian package google-cloud-cli-firestore-emulator) and a Java 17 runtime (`apt-get install openjdk-17-jre-headless`). ' +
  'Set FIRESTORE_EMULATOR_JAR to the emulator jar if it lives somewhere unusual.';

/** Finds the emulator jar next to the installed gcloud, or where FIRESTORE_EMULATOR_JAR says. */
export function locateFirestoreJar(env: NodeJS.ProcessEnv = process.env): string {
  const candidates: string[] = [];
  if (env.FIRESTORE_EMULATOR_JAR) candidates.push(env.FIRESTORE_EMULATOR_JAR);
  const sdkRoots = [
    env.CLOUDSDK_ROOT_DIR,
    gcloudSdkRoot(env),
    '/usr/lib/google-cloud-sdk',
    '/google-cloud-sdk',
  ];
  for (const root of sdkRoots) {
    if (root) candidates.push(join(root, 'platform/cloud-firestore-emulator/cloud-firestore-emulator.jar'));
  }
  const found = candidates.find((path) => existsSync(path));
  if (!found) throw new FirestoreUnavailableError(`The Firestore emulator was not found. ${INSTALL_HINT}`);
  return found;
}

function gcloudSdkRoot(env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'gcloud');
    if (dir && existsSync(candidate)) return resolve(dirname(realpathSync(candidate)), '..');
  }
  return undefined;
}

export function checkJava(): void {
  const probe = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new FirestoreUnavailableError(`Java was not found on PATH. ${INSTALL_HINT}`);
  }
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Starts tried on fresh ports when the one picked was taken before the JVM could bind it. */
const PORT_ATTEMPTS = 3;

export async function startFirestoreEmulator(
  options: FirestoreEmulatorOptions,
  attempt = 1,
): Promise<FirestoreEmulator> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => {});
  const jar = locateFirestoreJar();
  checkJava();
  const port = options.port || (await freePort(host));
  const address = `${host}:${port}`;
  const snapshotDir = options.dataDir ? join(options.dataDir, EXPORT_NAME) : undefined;
  const metadataFile = snapshotDir ? join(snapshotDir, `${EXPORT_NAME}.overall_export_metadata`) : undefined;

  const args = [
    '-Duser.language=en',
    '-cp',
    jar,
    'com.google.cloud.datastore.emulator.firestore.CloudFirestore',
    'start',
    `--host=${host}`,
    `--port=${port}`,
    `--project_id=${options.projectId}`,
  ];
  if (metadataFile && existsSync(metadataFile)) args.push(`--import-data=${metadataFile}`);
  if (options.rulesFile) args.push(`--rules=${options.rulesFile}`);

  // A small shell watches its stdin, a pipe from us: if this process dies without
  // stopping the emulator (even by SIGKILL), the pipe closes and the JVM is stopped too.
  const child = spawn('sh', ['-c', GUARDIAN, 'firestore-emulator', ...args], {
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-8_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  let running = true;
  void exited.then(() => {
    running = false;
  });

  const stopGroup = async (): Promise<void> => {
    if (!running || child.pid === undefined) return;
    signalGroup(child.pid, 'SIGTERM');
    const forced = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), 5_000);
    await exited;
    clearTimeout(forced);
    // The JVM may leave grandchildren in its group; make sure nothing of it survives.
    signalGroup(child.pid, 'SIGKILL');
  };

  try {
    await waitUntilServing(`http://${address}/`, exited, 60_000);
  } catch (error) {
    await stopGroup();
    // freePort() releases the port it found, and the JVM takes seconds to bind it: on a busy
    // machine (parallel test files each starting a stack) another process can take it first.
    if (!options.port && attempt < PORT_ATTEMPTS && /Address already in use/.test(output)) {
      log({ severity: 'WARNING', message: 'firestore emulator port taken, trying another', address });
      return startFirestoreEmulator(options, attempt + 1);
    }
    throw new FirestoreUnavailableError(
      `The Firestore emulator did not start: ${(error as Error).message}\n${output.trim().slice(-2_000)}`,
    );
  }
  log({ severity: 'INFO', message: 'firestore emulator ready', address });

  const persist = async (): Promise<void> => {
    if (!options.dataDir || !running) return;
    // Export beside the live snapshot and swap, so a crash mid-export never loses the last good one.
    await mkdir(options.dataDir, { recursive: true });
    const staging = join(options.dataDir, `staging-${process.pid}-${Date.now()}`);
    await mkdir(staging, { recursive: true });
    const response = await fetch(`http://${address}/emulator/v1/projects/${options.projectId}:export`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        database: `projects/${options.projectId}/databases/(default)`,
        export_directory: staging,
        export_name: EXPORT_NAME,
      }),
    });
    if (!response.ok) {
      await rm(staging, { recursive: true, force: true });
      throw new Error(`Firestore export failed with HTTP ${response.status}: ${await response.text()}`);
    }
    const previous = `${snapshotDir}.old`;
    await rm(previous, { recursive: true, force: true });
    if (existsSync(snapshotDir!)) await rename(snapshotDir!, previous);
    await rename(join(staging, EXPORT_NAME), snapshotDir!);
    await rm(previous, { recursive: true, force: true });
    await rm(staging, { recursive: true, force: true });
    await removeStaleStaging(options.dataDir);
  };

  return {
    address,
    port,
    persist,
    async close() {
      try {
        await persist();
      } catch (error) {
        log({
          severity: 'WARNING',
          message: 'firestore export on close failed',
          error: (error as Error).message,
        });
      }
      await stopGroup();
    },
  };
}

async function removeStaleStaging(dataDir: string): Promise<void> {
  for (const entry of await readdir(dataDir)) {
    if (entry.startsWith('staging-')) await rm(join(dataDir, entry), { recursive: true, force: true });
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

async function waitUntilServing(url: string, exited: Promise<unknown>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  while (Date.now() < deadline) {
    if (gone) throw new Error('the emulator process exited');
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`not serving after ${timeoutMs} ms`);
}
