// Issue 18: uploads survive a flaky uplink and a connector that dies mid-file. The connector
// (`cb-connector send`, its own process) talks to the storage emulator through a proxy that
// resets connections at seeded random byte offsets, or holds the stream while the test kills
// the connector. What must hold: the record arrives once (one journal line, one record the
// device downloads, byte for byte, ingest's receipt says accepted) and a restarted connector
// resumes the session it persisted instead of sending the file again.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnClient } from '../../clients/lib/cli.ts';
import { storageSessions } from '../../clients/connector/deliver.ts';
import { recoverDropFolder } from '../../clients/connector/drop-recovery.ts';
import { ConnectorHome } from '../../clients/connector/home.ts';
import { readPendingState } from '../../clients/connector/pending-uploads.ts';
import { uploadToSession } from '../../clients/connector/resumable-upload.ts';
import { watchOnce } from '../../clients/connector/watch.ts';
import { createStorage } from '../../shared/adapters/google-clients.ts';
import { stackBlobStore } from '../helpers/delivery-fixture.ts';
import { binRunner, type BinOutcome } from '../helpers/bins.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { onboardConnector, type OnboardedConnector } from '../helpers/onboarded-connector.ts';
import { sha256File, writeRandomFile } from '../helpers/random-files.ts';

const HOSPITAL = 'st-resumable-zh';
const PATIENT = 'resumable-patient-1';
const MIB = 1024 * 1024;
/** Reproduce a failing run with CB_FAULT_SEED=<the seed it printed>. */
const SEED = Number(process.env.CB_FAULT_SEED ?? 18);

describe('resumable uploads through a faulty link', { timeout: 600_000 }, () => {
  let onboarded: OnboardedConnector;
  let dir: string;
  const proxies: FaultProxy[] = [];

  /** A stack environment whose Cloud Storage is reached through `proxy`. */
  async function envThrough(proxy: FaultProxy, name: string): Promise<string> {
    const file = join(dir, `${name}.env`);
    const text = Object.entries(onboarded.stack.env)
      .map(([key, value]) => `${key}=${key === 'STORAGE_EMULATOR_HOST' ? proxy.url : value}\n`)
      .join('');
    await writeFile(file, text);
    return file;
  }

  async function proxy(options: { cuts?: number; cutBetween?: [number, number] } = {}): Promise<FaultProxy> {
    const port = Number(new URL(onboarded.stack.env.STORAGE_EMULATOR_HOST!).port);
    const started = await FaultProxy.start({ targetPort: port, seed: SEED, ...options });
    proxies.push(started);
    return started;
  }

  const journalFor = async (file: string) =>
    (await new ConnectorHome(onboarded.home).journal()).filter((entry) => entry.file === file);

  const sync = (out: string) =>
    onboarded.bin('cb-device', ['sync', '--out', out, '--home', join(dir, 'device')]);

  beforeAll(async () => {
    onboarded = await onboardConnector({ hospitalId: HOSPITAL });
    dir = onboarded.dir;
    const qr = join(dir, 'invite.png');
    expect((await onboarded.connector('invite', PATIENT, '--out', qr)).code).toBe(0);
    expect((await onboarded.bin('cb-device', ['pair', qr, '--home', join(dir, 'device')])).code).toBe(0);
  });

  afterAll(async () => {
    for (const started of proxies) await started.close();
    await onboarded?.close();
  });

  it('a 300 MiB send survives five connection resets and arrives once', async () => {
    const file = join(dir, 'scan-300.bin');
    const digest = await writeRandomFile(file, 300);
    // The container is the file plus a few KiB: every cut falls inside the upload.
    const faulty = await proxy({ cuts: 5, cutBetween: [2 * MIB, 290 * MIB] });
    const points = faulty.cutPoints;
    const send = binRunner(await envThrough(faulty, 'faulty'));
    const sent: BinOutcome = await send('cb-connector', [
      'send',
      file,
      '--patient',
      PATIENT,
      '--class',
      'imaging',
      '--wait',
      '--timeout',
      '300',
      '--home',
      onboarded.home,
    ]);
    expect(sent.code, `seed ${SEED}, cut points ${points.join(',')}: ${sent.stderr}`).toBe(0);
    expect(faulty.cutsDone).toBe(5);
    const uploadId = /^([A-Za-z0-9_-]{22}) {2}sent/m.exec(sent.stdout)?.[1];
    expect(sent.stdout).toContain(`${uploadId}  accepted`);
    // Everything went up once, plus what the resets lost in flight (a few chunks at most).
    expect(faulty.upstreamBytes).toBeGreaterThan(300 * MIB);
    expect(faulty.upstreamBytes).toBeLessThan(300 * MIB + 5 * 8 * MIB + MIB);

    // One journal line, nothing pending, one record that decrypts to the file.
    expect((await journalFor(file)).map((entry) => entry.uploadId)).toEqual([uploadId]);
    expect(await readdir(join(onboarded.home, 'uploads'))).toEqual([]);
    const synced = await sync(join(dir, 'received-300'));
    expect(synced.code).toBe(0);
    expect(synced.stdout).toContain('1 new record(s)');
    expect(await sha256File(join(dir, 'received-300', 'scan-300.bin'))).toBe(digest);
    const again = await sync(join(dir, 'received-300'));
    expect(again.stdout).toContain('0 new record(s)');
  });

  it('a connector killed mid-upload resumes its session after a restart and sends nothing twice', async () => {
    const file = join(dir, 'scan-64.bin');
    const digest = await writeRandomFile(file, 64);
    const link = await proxy();
    const env = { ...process.env, CB_STACK_ENV: await envThrough(link, 'held') };
    const held = link.holdAfter(24 * MIB);
    const child = spawnClient(
      'cb-connector',
      ['send', file, '--patient', PATIENT, '--home', onboarded.home],
      env,
    );
    let childOut = '';
    child.stdout.on('data', (piece: Buffer) => (childOut += piece.toString()));
    child.stderr.on('data', (piece: Buffer) => (childOut += piece.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once('exit', (_code, signal) => resolve(signal)),
    );
    await Promise.race([
      held,
      exited.then(() => {
        throw new Error(`the connector finished before it was killed: ${childOut}`);
      }),
    ]);

    // Mid-upload: sealed into the home, session started and persisted, about a third sent.
    const [uploadId, ...others] = await readdir(join(onboarded.home, 'uploads'));
    expect(others).toEqual([]);
    const state = await readPendingState(join(onboarded.home, 'uploads', uploadId!));
    expect(state?.sessionUri).toMatch(/upload_id=/);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    link.release();
    expect(await journalFor(file)).toEqual([]);

    const before = link.upstreamBytes;
    const restarted = await binRunner(await envThrough(link, 'held'))('cb-connector', [
      'send',
      file,
      '--patient',
      PATIENT,
      '--wait',
      '--timeout',
      '120',
      '--home',
      onboarded.home,
    ]);
    expect(restarted.code, restarted.stderr).toBe(0);
    // The same upload, finished: not a second one.
    expect(restarted.stdout).toContain(`${uploadId}  sent`);
    expect(restarted.stdout).toContain(`${uploadId}  accepted`);
    const after = link.upstreamBytes - before;
    expect(after).toBeGreaterThan(0);
    expect(after).toBeLessThan(state!.size - 20 * MIB);

    expect((await journalFor(file)).map((entry) => entry.uploadId)).toEqual([uploadId]);
    expect(await readdir(join(onboarded.home, 'uploads'))).toEqual([]);
    const synced = await sync(join(dir, 'received-64'));
    expect(synced.stdout).toContain('1 new record(s)');
    expect(await sha256File(join(dir, 'received-64', 'scan-64.bin'))).toBe(digest);
    // The session's credential never reached the connector's output.
    expect(restarted.stdout + childOut).not.toContain(
      new URL(state!.sessionUri!).searchParams.get('upload_id')!,
    );
    await readFile(join(onboarded.home, 'journal.jsonl'), 'utf8').then((text) =>
      expect(text).not.toContain('upload_id'),
    );
  });

  it('a drop folder survives a crash mid-file: the sealed upload resumes, the unsealed file is requeued, each arrives once', async () => {
    const drop = join(dir, 'drop');
    const sending = join(drop, 'sending', PATIENT);
    await mkdir(sending, { recursive: true });
    // As watch.ts leaves them when the connector dies: one file half uploaded, one not sealed yet.
    const letter = join(sending, 'letter.bin');
    const letterDigest = await writeRandomFile(letter, 16);
    await writeFile(join(sending, 'note.txt'), 'not sealed before the crash\n');
    const link = await proxy();
    const held = link.holdAfter(6 * MIB);
    const child = spawnClient(
      'cb-connector',
      ['send', letter, '--patient', PATIENT, '--home', onboarded.home],
      {
        ...process.env,
        CB_STACK_ENV: await envThrough(link, 'drop'),
      },
    );
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await held;
    child.kill('SIGKILL');
    await exited;
    link.release();

    const { env } = onboarded.stack;
    // The watch loop's own sends find Cloud Storage where the bins do: in the process environment.
    const saved = { host: process.env.STORAGE_EMULATOR_HOST, project: process.env.GCLOUD_PROJECT };
    process.env.STORAGE_EMULATOR_HOST = env.STORAGE_EMULATOR_HOST;
    process.env.GCLOUD_PROJECT = env.GCLOUD_PROJECT;
    const connector = await new ConnectorHome(onboarded.home).open('drop-recovery-test');
    try {
      const blobs = stackBlobStore(onboarded.stack);
      const lines: string[] = [];
      // Whatever a pass reports (lines or events), kept to explain a failure.
      const log = (line: unknown) => lines.push(JSON.stringify(line));
      const recovery = await recoverDropFolder(connector, blobs, {
        dir: drop,
        log,
        upload: { startSession: storageSessions(createStorage(env.GCLOUD_PROJECT!, env)) },
      });
      expect(recovery).toEqual({ resumed: 1, pending: 0, requeued: 1 });
      expect(await readdir(join(drop, 'inbox', PATIENT))).toEqual(['note.txt']);
      expect(await readdir(join(onboarded.home, 'uploads'))).toEqual([]);

      const options = { dir: drop, contentClass: 'document' as const, expiresDays: 30, settleMs: 0, log };
      let pass = await watchOnce(connector, blobs, options);
      expect(pass.sent).toBe(1); // note.txt; letter.bin went up in the recovery
      for (let i = 0; i < 120 && pass.waiting > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        pass = await watchOnce(connector, blobs, options);
      }
      expect(pass.waiting).toBe(0);
      expect((await readdir(join(drop, 'done', PATIENT))).sort(), lines.join('\n')).toEqual([
        'letter.bin',
        'note.txt',
      ]);
      const journal = await connector.home.journal();
      expect(journal.filter((entry) => entry.file.endsWith(`${sep}letter.bin`))).toHaveLength(1);
      expect(journal.filter((entry) => entry.file.endsWith(`${sep}note.txt`))).toHaveLength(1);
    } finally {
      connector.custody.close();
      process.env.STORAGE_EMULATOR_HOST = saved.host;
      process.env.GCLOUD_PROJECT = saved.project;
      if (saved.host === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      if (saved.project === undefined) delete process.env.GCLOUD_PROJECT;
    }
    const synced = await sync(join(dir, 'received-drop'));
    expect(synced.stdout).toContain('2 new record(s)');
    expect(await sha256File(join(dir, 'received-drop', 'letter.bin'))).toBe(letterDigest);
  });

  it('Cloud Storage refuses to create an object whose bytes differ from the digest the connector sealed', async () => {
    const { env } = onboarded.stack;
    const storage = createStorage(env.GCLOUD_PROJECT!, env);
    const name = `hospitals/${HOSPITAL}/uploads/digest-check.cbr`;
    const bytes = randomBytes(3 * 256 * 1024 + 17);
    const sessionUri = await storageSessions(storage)({
      bucket: env.INGEST_BUCKET!,
      name,
      size: bytes.length,
      contentType: 'application/octet-stream',
    });
    const source = (md5: string) => ({
      size: bytes.length,
      md5,
      async *range(start: number, end: number) {
        yield bytes.subarray(start, end);
      },
    });
    const wrong = createHash('md5').update('other bytes').digest('base64');
    const refused = await uploadToSession({
      sessionUri,
      source: source(wrong),
      chunkBytes: 256 * 1024,
    }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'UPLOAD_REFUSED', status: 400 });
    expect(await stackBlobStore(onboarded.stack).stat(env.INGEST_BUCKET!, name)).toBeUndefined();
  });
});
