// `node bench/delivery.ts [--sizes 200,1024]` (part of `npm run bench`): one large record
// through every stage as separate processes — the connector (`cb-connector send`: read, seal,
// upload), ingest (the stack's functions host: parse, verify, copy with the digest check,
// receipt) and the device (`cb-device sync`: download, verify, decrypt, write) — with MB/s per
// stage, each stage's ratio to a plain copy of the same file measured in the same run, and the
// peak RSS (VmHWM) of each process. The goal is a flat peak RSS whatever the file size; beside
// the connector's peak stands its floor, the same bin's peak when it only loads its modules.
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnStack, type StackProcess } from '../emulator/process.ts';
import { createBlobStore } from '../shared/adapters/blob-store.ts';
import { createStorage } from '../shared/adapters/google-clients.ts';
import { spawnClient, type ClientName } from '../clients/lib/cli.ts';
import { STACK_ENV_FILE } from '../shared/emulation.ts';
import { receiptObjectName } from '../shared/core/protocol/index.ts';
import { isMain, mbPerSecond, peakRssMiB, table, timed, writeResults } from './stats.ts';
import { sha256File, writeRandomFile } from '../test/helpers/random-files.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PATIENT = 'bench-patient-1';
const HOSPITAL = 'bench-hospital';

interface ProcessRun {
  readonly seconds: number;
  readonly peakRssMiB: number;
  readonly stdout: string;
}

/** Runs a client bin to completion, sampling its peak RSS until it exits. */
async function runClient(name: ClientName, args: string[], env: NodeJS.ProcessEnv): Promise<ProcessRun> {
  const started = performance.now();
  const child = spawnClient(name, args, env);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let peak = 0;
  const sampler = setInterval(() => {
    void peakRssMiB(child.pid!).then((value) => (peak = Math.max(peak, value ?? 0)));
  }, 50);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(sampler);
  if (code !== 0) throw new Error(`${name} ${args[0]} exited with ${code}: ${stderr}`);
  return { seconds: (performance.now() - started) / 1000, peakRssMiB: peak, stdout };
}

async function oneSize(mib: number): Promise<Record<string, number>> {
  const work = await mkdtemp(join(tmpdir(), `cb-bench-delivery-${mib}-`));
  const dataDir = join(work, 'stack');
  let stack: StackProcess | undefined;
  try {
    stack = await spawnStack(['--port-base', '0', '--data-dir', dataDir]);
    const env = { ...process.env, CB_STACK_ENV: join(dataDir, STACK_ENV_FILE) };
    const connector = ['--home', join(work, 'connector')];
    const device = ['--home', join(work, 'device')];
    const publicKey = (
      await runClient('cb-connector', ['keys', '--hospital', HOSPITAL, ...connector], env)
    ).stdout.trim();
    const onboarding = await runClient(
      'cb-admin',
      ['register-hospital', '--id', HOSPITAL, '--public-key', publicKey, '--json'],
      env,
    );
    await writeFile(join(work, 'onboarding.json'), onboarding.stdout);
    await runClient(
      'cb-connector',
      ['configure', '--from', join(work, 'onboarding.json'), ...connector],
      env,
    );
    await runClient('cb-connector', ['invite', PATIENT, '--out', join(work, 'qr.png'), ...connector], env);
    await runClient('cb-device', ['pair', join(work, 'qr.png'), ...device], env);

    const source = join(work, 'scan.bin');
    const digest = await writeRandomFile(source, mib);
    const copySeconds = await timed(() => copyFile(source, join(work, 'copy.bin')));
    await rm(join(work, 'copy.bin'));

    // The floor under the send's peak: the same bin loading its modules and doing nothing.
    const idle = await runClient('cb-connector', ['--help'], env);
    const sent = await runClient(
      'cb-connector',
      ['send', source, '--patient', PATIENT, '--class', 'imaging', ...connector],
      env,
    );
    const uploadId = /^([A-Za-z0-9_-]{22}) {2}sent/m.exec(sent.stdout)?.[1];
    if (!uploadId) throw new Error('no upload id from cb-connector send');
    const blobs = createBlobStore(createStorage(stack.env.GCLOUD_PROJECT!, stack.env));
    const ingestSeconds = await timed(async () => {
      while (!(await blobs.stat(stack!.env.OUTBOX_BUCKET!, receiptObjectName(HOSPITAL, uploadId)))) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
    const stackPeak = (await peakRssMiB(stack.child.pid!)) ?? 0;
    const synced = await runClient('cb-device', ['sync', '--out', join(work, 'received'), ...device], env);
    if (!synced.stdout.includes('1 new record'))
      throw new Error(`sync did not store the record: ${synced.stdout}`);
    if ((await sha256File(join(work, 'received', 'scan.bin'))) !== digest)
      throw new Error('the record differs');

    const copyRate = mbPerSecond(mib * 1024 * 1024, copySeconds);
    const rate = (seconds: number) => mbPerSecond(mib * 1024 * 1024, seconds);
    return {
      mib,
      plainCopyMBps: copyRate,
      connectorMBps: rate(sent.seconds),
      connectorPeakRssMiB: sent.peakRssMiB,
      connectorIdlePeakRssMiB: idle.peakRssMiB,
      ingestMBps: rate(ingestSeconds),
      stackPeakRssMiB: stackPeak,
      deviceMBps: rate(synced.seconds),
      devicePeakRssMiB: synced.peakRssMiB,
      connectorToCopyRatio: rate(sent.seconds) / copyRate,
      ingestToCopyRatio: rate(ingestSeconds) / copyRate,
      deviceToCopyRatio: rate(synced.seconds) / copyRate,
    };
  } finally {
    await stack?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

export async function benchDelivery(options: { readonly sizesMiB: readonly number[] }): Promise<{
  results: Record<string, unknown>;
  rows: (string | number)[][];
}> {
  const runs: Record<string, number>[] = [];
  for (const mib of options.sizesMiB) runs.push(await oneSize(mib));
  const rows: (string | number)[][] = [];
  for (const r of runs) {
    const label = `${r.mib} MiB record`;
    rows.push(
      [`${label}: plain file copy (reference)`, r.plainCopyMBps!, 'MB/s'],
      [`${label}: connector read+seal+upload`, r.connectorMBps!, 'MB/s'],
      [`${label}: ingest verify+copy+receipt`, r.ingestMBps!, 'MB/s'],
      [`${label}: device download+verify+decrypt`, r.deviceMBps!, 'MB/s'],
      [`${label}: connector peak RSS`, r.connectorPeakRssMiB!, 'MiB'],
      [`${label}: connector peak RSS loading its modules only (--help)`, r.connectorIdlePeakRssMiB!, 'MiB'],
      [`${label}: stack (functions host + emulators) peak RSS`, r.stackPeakRssMiB!, 'MiB'],
      [`${label}: device peak RSS`, r.devicePeakRssMiB!, 'MiB'],
    );
  }
  return { results: { delivery: runs }, rows };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { sizes: { type: 'string', default: '200,1024' } } });
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  const { results, rows } = await benchDelivery({ sizesMiB: values.sizes.split(',').map(Number) });
  console.log(table([['measure', 'value', 'unit'], ...rows]));
  console.log(`\nwritten to ${await writeResults('delivery', { at: new Date().toISOString(), ...results })}`);
}
