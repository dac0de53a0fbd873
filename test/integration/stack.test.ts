// The stack as a newcomer runs it: `npm start` in a child process, read its NAME=value
// lines, use it, stop it with SIGINT, and check that nothing is left running.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFirestore, createKms, createStorage } from '../../shared/adapters/google-clients.ts';
import { spawnStack, type StackProcess } from '../../emulator/process.ts';
import { portIsFree } from '../helpers/net.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const REQUIRED = [
  'GCLOUD_PROJECT',
  'FIRESTORE_EMULATOR_HOST',
  'STORAGE_EMULATOR_HOST',
  'KMS_EMULATOR_HOST',
  'FCM_EMULATOR_URL',
  'FUNCTIONS_BASE_URL',
  'INGEST_BUCKET',
  'RECORDS_BUCKET',
];

function portsOf(env: Record<string, string>): number[] {
  return [
    'FIRESTORE_EMULATOR_HOST',
    'STORAGE_EMULATOR_HOST',
    'KMS_EMULATOR_HOST',
    'FCM_EMULATOR_URL',
    'FUNCTIONS_BASE_URL',
  ].map((name) => Number(/:(\d+)\/?$/.exec(env[name]!)![1]));
}

describe('npm start (the whole local stack)', () => {
  let dataDir: string;
  let stack: StackProcess;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cb-stack-'));
    stack = await spawnStack(['--port-base', '0', '--data-dir', dataDir]);
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('prints every variable a client needs, all on loopback, then ready', () => {
    for (const name of REQUIRED) expect(stack.env[name], name).toBeTruthy();
    for (const port of portsOf(stack.env)) expect(port).toBeGreaterThan(0);
    expect(stack.env.FIRESTORE_EMULATOR_HOST).toMatch(/^127\.0\.0\.1:/);
    expect(stack.env.STORAGE_EMULATOR_HOST).toMatch(/^http:\/\/127\.0\.0\.1:/);
    expect(stack.env.KMS_EMULATOR_HOST).toMatch(/^127\.0\.0\.1:/);
  });

  it("provisions the buckets, one KMS key per function and each function's wrapped Themis key", async () => {
    const storage = createStorage(stack.env.GCLOUD_PROJECT!, stack.env);
    const [buckets] = await storage.getBuckets();
    expect(buckets.map((b) => b.name)).toEqual(
      expect.arrayContaining([stack.env.INGEST_BUCKET, stack.env.RECORDS_BUCKET]),
    );
    const kms = createKms(stack.env);
    const [keys] = await kms.listCryptoKeys({
      parent: `projects/${stack.env.GCLOUD_PROJECT}/locations/europe-west4/keyRings/clinic-bridge`,
    });
    expect(keys.map((k) => k.name!.split('/').at(-1)).sort()).toEqual([
      'ingest',
      'pairing',
      'records',
      'retention',
      'sequencer',
    ]);
    await kms.close();
    const db = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
    const functionKeys = await db.collection('functionKeys').get();
    // The sequencer's key signs inside KMS: no wrapped Themis key of its own.
    expect(functionKeys.docs.map((d) => d.id).sort()).toEqual(['ingest', 'pairing', 'records', 'retention']);
    await db.terminate();
  });

  it('serves the health function, which reaches Firestore and Storage', async () => {
    const response = await fetch(`${stack.env.FUNCTIONS_BASE_URL}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      status: 'ok',
      checks: { firestore: { ok: true }, storage: { ok: true } },
    });
  });

  it('keeps state across a restart, stops on SIGINT leaving no process or port behind', async () => {
    const projectId = stack.env.GCLOUD_PROJECT!;
    const storage = createStorage(projectId, stack.env);
    // The records bucket: nothing is triggered by it (an object in the ingest bucket would be
    // taken by the ingest function).
    await storage.bucket(stack.env.RECORDS_BUCKET!).file('kept.txt').save('still here');
    const db = createFirestore(projectId, stack.env);
    await db.doc('kept/one').set({ n: 1 });
    await db.terminate();

    const ports = portsOf(stack.env);
    expect(await stack.stop()).toBe(0);
    for (const port of ports) expect(await portIsFree(port), `port ${port}`).toBe(true);
    const jvms = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout.split('\n');
    expect(jvms.filter((args) => args.includes(`--port=${ports[0]}`))).toEqual([]);

    stack = await spawnStack(['--port-base', '0', '--data-dir', dataDir]);
    const [contents] = await createStorage(projectId, stack.env)
      .bucket(stack.env.RECORDS_BUCKET!)
      .file('kept.txt')
      .download();
    expect(contents.toString()).toBe('still here');
    const again = createFirestore(projectId, stack.env);
    expect((await again.doc('kept/one').get()).get('n')).toBe(1);
    await again.terminate();
  });

  it('wipes its data with --reset', async () => {
    expect(await stack.stop()).toBe(0);
    stack = await spawnStack(['--port-base', '0', '--data-dir', dataDir, '--reset']);
    const [exists] = await createStorage(stack.env.GCLOUD_PROJECT!, stack.env)
      .bucket(stack.env.RECORDS_BUCKET!)
      .file('kept.txt')
      .exists();
    expect(exists).toBe(false);
  });
});

describe('npm start, killed outright', () => {
  it('takes the Firestore JVM down with it even on SIGKILL', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'cb-killed-'));
    const running = await spawnStack(['--port-base', '0', '--data-dir', dataDir]);
    const firestorePort = portsOf(running.env)[0]!;
    const exited = new Promise((resolve) => running.child.once('exit', resolve));
    running.child.kill('SIGKILL');
    await exited;
    await expect.poll(() => portIsFree(firestorePort), { timeout: 15_000, interval: 250 }).toBe(true);
    await rm(dataDir, { recursive: true, force: true });
  });
});

describe('npm start without its prerequisites', () => {
  it('says what to install when Java and gcloud are missing', async () => {
    const result = spawnSync(
      process.execPath,
      ['emulator/main.ts', '--port-base', '0', '--data-dir', join(tmpdir(), 'cb-none')],
      {
        cwd: root,
        env: {
          PATH: '/nonexistent',
          FIRESTORE_EMULATOR_JAR: '/nonexistent.jar',
          CLOUDSDK_ROOT_DIR: '/nonexistent',
        },
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/Install the Google Cloud CLI/);
    expect(result.stdout).not.toMatch(/ready/);
  });

  it('rejects unknown options with usage and exit code 2', () => {
    const result = spawnSync(process.execPath, ['emulator/main.ts', '--bogus'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/Usage: npm start/);
  });
});
