// `npm run demo`: starts a fresh, temporary local stack and walks through what it offers,
// using the official Google Cloud clients exactly as the functions will. It exits 0 only
// if every step really happened. Record delivery (pairing, connector, device) is the next
// milestone; until then this demo shows the stack itself.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFirestore, createKms, createStorage } from '../shared/adapters/google-clients.ts';
import { cryptoKeyName, loadCatalog } from '../shared/runtime/catalog.ts';
import { serviceAccountPrincipal } from '../shared/emulation.ts';
import { startStack, type Stack } from '../emulator/stack.ts';

const steps: { title: string; ok: boolean; detail: string }[] = [];

async function step(title: string, run: () => Promise<string>): Promise<void> {
  process.stdout.write(`  ${title} ... `);
  try {
    const detail = await run();
    steps.push({ title, ok: true, detail });
    process.stdout.write(`ok (${detail})\n`);
  } catch (error) {
    steps.push({ title, ok: false, detail: (error as Error).message });
    process.stdout.write(`FAILED: ${(error as Error).message}\n`);
  }
}

function expect(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

async function main(): Promise<number> {
  const dataDir = await mkdtemp(join(tmpdir(), 'clinic-bridge-demo-'));
  console.log('Clinic Bridge demo: the local Google Cloud stack\n');
  console.log(`Starting a fresh stack in ${dataDir} ...`);
  const started = performance.now();
  let stack: Stack | undefined;
  try {
    stack = await startStack({ dataDir, portBase: 0 });
    console.log(`Ready in ${((performance.now() - started) / 1000).toFixed(1)} s. A client would use:\n`);
    for (const [name, value] of Object.entries(stack.env)) console.log(`    ${name}=${value}`);
    console.log('');
    await walkThrough(stack);
  } catch (error) {
    console.error(`The stack failed: ${(error as Error).message}`);
    steps.push({ title: 'start the stack', ok: false, detail: (error as Error).message });
  } finally {
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  const failed = steps.filter((s) => !s.ok);
  console.log(
    `\n${steps.length - failed.length} of ${steps.length} steps passed; the temporary stack was removed.`,
  );
  return failed.length === 0 && steps.length > 0 ? 0 : 1;
}

async function walkThrough(stack: Stack): Promise<void> {
  const env = stack.env;
  const projectId = env.GCLOUD_PROJECT!;
  const catalog = loadCatalog();

  await step('health function reports every dependency reachable', async () => {
    const response = await fetch(`${env.FUNCTIONS_BASE_URL}/health`);
    const body = (await response.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(
      response.status === 200 && body.status === 'ok',
      `health said ${response.status} ${JSON.stringify(body)}`,
    );
    return Object.keys(body.checks).join(', ');
  });

  await step('Cloud Storage: 4 MiB upload and validated download through @google-cloud/storage', async () => {
    const bytes = randomBytes(4 * 1024 * 1024);
    const file = createStorage(projectId, env).bucket(env.INGEST_BUCKET!).file('demo/sample.bin');
    await file.save(bytes, {
      resumable: true,
      validation: 'crc32c',
      preconditionOpts: { ifGenerationMatch: 0 },
    });
    const [back] = await file.download({ validation: 'crc32c' });
    expect(back.equals(bytes), 'downloaded bytes differ');
    const [again] = await file
      .save(bytes, { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } })
      .then(
        () => [false],
        (error: { code?: number }) => [error.code === 412],
      );
    expect(again === true, 'a create-only second upload was not refused');
    return 'bytes identical, CRC32C checked, create-only retry refused with 412';
  });

  await step('Cloud KMS: each function may use its own key and no other', async () => {
    const kms = createKms(env);
    try {
      const pairingKey = cryptoKeyName(catalog, 'pairing', projectId);
      const ingestKey = cryptoKeyName(catalog, 'ingest', projectId);
      const secret = randomBytes(32);
      const [wrapped] = await kms.encrypt({ name: pairingKey, plaintext: secret });
      const [wrappedForIngest] = await kms.encrypt({ name: ingestKey, plaintext: secret });
      const asPairing = createKms(
        env,
        serviceAccountPrincipal(catalog.functions.pairing!.serviceAccount, projectId),
      );
      const [opened] = await asPairing.decrypt({ name: pairingKey, ciphertext: wrapped.ciphertext });
      expect(
        Buffer.from(opened.plaintext as Uint8Array).equals(secret),
        'pairing could not unwrap its own key',
      );
      const denied = await asPairing
        .decrypt({ name: ingestKey, ciphertext: wrappedForIngest.ciphertext })
        .then(
          () => false,
          (error: { code?: number }) => error.code === 7,
        );
      await asPairing.close();
      expect(denied, "pairing was allowed to use ingest's key");
      return "pairing unwrapped with its key; PERMISSION_DENIED on ingest's";
    } finally {
      await kms.close();
    }
  });

  await step('Firestore: create-only document through the official emulator', async () => {
    const db = createFirestore(projectId, env);
    try {
      const doc = db.collection('demo').doc('hello');
      await doc.create({ at: new Date().toISOString() });
      const duplicate = await doc.create({}).then(
        () => false,
        (error: { code?: number }) => error.code === 6,
      );
      expect(duplicate, 'second create was not refused');
      return 'created once, ALREADY_EXISTS on the second try';
    } finally {
      await db.terminate();
    }
  });

  await step('FCM: a data-only push is recorded and reaches the waiting device', async () => {
    const token = `demo-device-${randomBytes(4).toString('hex')}`;
    const waiting = fetch(`${env.FCM_EMULATOR_URL}/_recorder/tokens/${token}/messages?after=0&waitMs=5000`);
    const sent = await fetch(`${env.FCM_EMULATOR_URL}/v1/projects/${projectId}/messages:send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer local' },
      body: JSON.stringify({ message: { token, data: { kind: 'records-waiting' } } }),
    });
    expect(sent.status === 200, `send answered ${sent.status}`);
    const received = (await (await waiting).json()) as { messages: unknown[] };
    expect(received.messages.length === 1, 'the device saw no message');
    const notification = await fetch(`${env.FCM_EMULATOR_URL}/v1/projects/${projectId}/messages:send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer local' },
      body: JSON.stringify({ message: { token, notification: { title: 'Lab result' } } }),
    });
    expect(notification.status === 400, 'a visible notification was accepted');
    return 'delivered to the long-poll; a visible notification refused';
  });

  await step('Cloud Scheduler: jobs listed with the cron expression infra uses', async () => {
    const jobs = (await (await fetch(`${env.FUNCTIONS_BASE_URL}/_scheduler/jobs`)).json()) as {
      jobs: unknown[];
    };
    const retention = catalog.functions.retention?.trigger;
    return `${jobs.jobs.length} job(s) deployed now; retention will run on "${retention?.type === 'schedule' ? retention.cron : '?'}"`;
  });
}

process.exitCode = await main();
