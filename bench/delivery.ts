// `node bench/delivery.ts [--sizes 200,1024] [--rounds N] [--baseline DIR] [--connector-flags=F]
//   [--device-rounds N]`
// (part of `npm run bench`): one large record
// through every stage as separate processes — the connector (`cb-connector send`: read, seal,
// upload), ingest (the stack's functions host: parse, verify, copy with the digest check,
// receipt) and the device (`cb-device sync`: download, verify, decrypt, write) — with MB/s per
// stage, each stage's ratio to a plain copy of the same file measured in the same run, and the
// peak RSS (VmHWM) of each process. The goal is a flat peak RSS whatever the file size; beside
// the connector's peak stands its floor, the same bin's peak when it only loads its modules.
//
// Connector variants, side by side: after the record has gone through every stage, the same
// file is sent again by each variant, alternating, `--rounds` times, each send waiting for its
// receipt so that ingest never competes with the next one: this tree's connector, a checkout's
// (`--baseline DIR`, e.g. a `git worktree` of the commit before a change) and this tree's run
// with extra Node flags (`--connector-flags='--a --b'`, with the `=`). Each variant's medians of MB/s, peak RSS,
// floor and CPU seconds are printed with their ratio to this tree's connector.
//
// The device, side by side (`--device-rounds N`): the same record synced again N times by each
// of two cb-device runs, alternating: as shipped (its record sink keeps uncollected
// ArrayBuffers under a budget, which needs gc exposed) and the same bin without --expose-gc
// (no collection forced), with each one's seconds and peak RSS.
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnStack, type StackProcess } from '../emulator/process.ts';
import { createBlobStore } from '../shared/adapters/blob-store.ts';
import { createStorage } from '../shared/adapters/google-clients.ts';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { CLIENT_NODE_FLAGS, spawnClient, type ClientName } from '../clients/lib/cli.ts';
import { STACK_ENV_FILE } from '../shared/emulation.ts';
import { receiptObjectName } from '../shared/core/protocol/index.ts';
import { isMain, mbPerSecond, median, peakRssMiB, table, timed, writeResults } from './stats.ts';
import { sha256File, writeRandomFile } from '../test/helpers/random-files.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PATIENT = 'bench-patient-1';
const HOSPITAL = 'bench-hospital';

interface ProcessRun {
  readonly seconds: number;
  readonly peakRssMiB: number;
  /** User + system CPU seconds, as last sampled before the process exited (50 ms resolution). */
  readonly cpuSeconds: number;
  readonly stdout: string;
}

/** How one connector variant is started: whose bin, with which extra Node flags. */
interface ConnectorVariant {
  readonly name: string;
  readonly root: string;
  readonly extraFlags: readonly string[];
}

/** A connector bin of `variant` (this tree's bins are started as spawnClient starts them). */
function spawnConnector(
  variant: ConnectorVariant,
  args: string[],
  env: NodeJS.ProcessEnv,
): ChildProcessWithoutNullStreams {
  if (variant.root === ROOT && variant.extraFlags.length === 0) return spawnClient('cb-connector', args, env);
  const bin = join(variant.root, 'clients', 'cb-connector.ts');
  return spawn(process.execPath, [...CLIENT_NODE_FLAGS, ...variant.extraFlags, bin, ...args], { env });
}

/** utime + stime of a live process, in seconds (Linux). */
async function cpuSeconds(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/** Runs a client bin to completion, sampling its peak RSS and CPU time until it exits. */
async function runClient(
  name: ClientName,
  args: string[],
  env: NodeJS.ProcessEnv,
  variant?: ConnectorVariant,
): Promise<ProcessRun> {
  const started = performance.now();
  const child = variant ? spawnConnector(variant, args, env) : spawnClient(name, args, env);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let peak = 0;
  let cpu = 0;
  const sampler = setInterval(() => {
    void peakRssMiB(child.pid!).then((value) => (peak = Math.max(peak, value ?? 0)));
    void cpuSeconds(child.pid!).then((value) => (cpu = Math.max(cpu, value ?? 0)));
  }, 50);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(sampler);
  if (code !== 0) throw new Error(`${name} ${args[0]} exited with ${code}: ${stderr}`);
  return { seconds: (performance.now() - started) / 1000, peakRssMiB: peak, cpuSeconds: cpu, stdout };
}

interface VariantRuns {
  readonly mbps: number[];
  readonly peakRssMiB: number[];
  readonly floorMiB: number[];
  readonly cpuSeconds: number[];
}

interface SizeRun {
  readonly figures: Record<string, number>;
  readonly variants: Record<string, VariantRuns>;
  readonly device: Record<string, { seconds: number[]; peakRssMiB: number[] }>;
}

/** Syncs the record again with cb-device started with `flags`, as if it had never stored it. */
async function resync(
  deviceHome: string,
  out: string,
  flags: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ seconds: number; peakRssMiB: number }> {
  const enrolments = join(deviceHome, 'enrolments');
  for (const file of await readdir(enrolments)) {
    const enrolment = JSON.parse(await readFile(join(enrolments, file), 'utf8')) as { stored: string[] };
    await writeFile(join(enrolments, file), JSON.stringify({ ...enrolment, stored: [] }));
  }
  await rm(out, { recursive: true, force: true });
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [...flags, join(ROOT, 'clients', 'cb-device.ts'), 'sync', '--out', out, '--home', deviceHome],
    {
      env,
      stdio: 'ignore',
    },
  );
  let peak = 0;
  const sampler = setInterval(() => {
    void peakRssMiB(child.pid!).then((value) => (peak = Math.max(peak, value ?? 0)));
  }, 50);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(sampler);
  if (code !== 0) throw new Error(`cb-device sync exited with ${code}`);
  return { seconds: (performance.now() - started) / 1000, peakRssMiB: peak };
}

async function oneSize(
  mib: number,
  variants: readonly ConnectorVariant[],
  rounds: number,
  deviceRounds: number,
): Promise<SizeRun> {
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
    const blobs = createBlobStore(createStorage(stack.env.GCLOUD_PROJECT!, stack.env));
    const receiptOf = async (output: string) => {
      const uploadId = /^([A-Za-z0-9_-]{22}) {2}sent/m.exec(output)?.[1];
      if (!uploadId) throw new Error('no upload id from cb-connector send');
      while (!(await blobs.stat(stack!.env.OUTBOX_BUCKET!, receiptObjectName(HOSPITAL, uploadId)))) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const ingestSeconds = await timed(() => receiptOf(sent.stdout));
    const stackPeak = (await peakRssMiB(stack.child.pid!)) ?? 0;
    const synced = await runClient('cb-device', ['sync', '--out', join(work, 'received'), ...device], env);
    if (!synced.stdout.includes('1 new record'))
      throw new Error(`sync did not store the record: ${synced.stdout}`);
    if ((await sha256File(join(work, 'received', 'scan.bin'))) !== digest)
      throw new Error('the record differs');

    const rate = (seconds: number) => mbPerSecond(mib * 1024 * 1024, seconds);
    const byVariant: Record<string, VariantRuns> = {};
    for (let round = 0; round < (variants.length > 0 ? rounds : 0); round++) {
      for (const variant of variants) {
        const floor = await runClient('cb-connector', ['--help'], env, variant);
        const again = await runClient(
          'cb-connector',
          ['send', source, '--patient', PATIENT, '--class', 'imaging', ...connector],
          env,
          variant,
        );
        await receiptOf(again.stdout);
        const runs = (byVariant[variant.name] ??= { mbps: [], peakRssMiB: [], floorMiB: [], cpuSeconds: [] });
        runs.mbps.push(rate(again.seconds));
        runs.peakRssMiB.push(again.peakRssMiB);
        runs.floorMiB.push(floor.peakRssMiB);
        runs.cpuSeconds.push(again.cpuSeconds);
      }
    }

    const deviceRuns: SizeRun['device'] = {};
    for (let round = 0; round < deviceRounds; round++) {
      for (const [name, flags] of [
        ['as shipped', CLIENT_NODE_FLAGS],
        ['without --expose-gc', CLIENT_NODE_FLAGS.filter((flag) => flag !== '--expose-gc')],
      ] as const) {
        const run = await resync(join(work, 'device'), join(work, 'received'), flags, env);
        const runs = (deviceRuns[name] ??= { seconds: [], peakRssMiB: [] });
        runs.seconds.push(run.seconds);
        runs.peakRssMiB.push(run.peakRssMiB);
      }
    }

    const copyRate = mbPerSecond(mib * 1024 * 1024, copySeconds);
    const figures = {
      mib,
      plainCopyMBps: copyRate,
      connectorMBps: rate(sent.seconds),
      connectorPeakRssMiB: sent.peakRssMiB,
      connectorIdlePeakRssMiB: idle.peakRssMiB,
      connectorCpuSeconds: sent.cpuSeconds,
      ingestMBps: rate(ingestSeconds),
      stackPeakRssMiB: stackPeak,
      deviceMBps: rate(synced.seconds),
      devicePeakRssMiB: synced.peakRssMiB,
      connectorToCopyRatio: rate(sent.seconds) / copyRate,
      ingestToCopyRatio: rate(ingestSeconds) / copyRate,
      deviceToCopyRatio: rate(synced.seconds) / copyRate,
    };
    return { figures, variants: byVariant, device: deviceRuns };
  } finally {
    await stack?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

export async function benchDelivery(options: {
  readonly sizesMiB: readonly number[];
  readonly rounds?: number;
  readonly baseline?: string;
  readonly connectorFlags?: readonly string[];
  readonly deviceRounds?: number;
}): Promise<{
  results: Record<string, unknown>;
  rows: (string | number)[][];
}> {
  const variants: ConnectorVariant[] = [];
  if (options.baseline || options.connectorFlags?.length) {
    variants.push({ name: 'this tree', root: ROOT, extraFlags: [] });
    if (options.baseline) variants.push({ name: 'baseline', root: options.baseline, extraFlags: [] });
    if (options.connectorFlags?.length) {
      variants.push({
        name: `this tree ${options.connectorFlags.join(' ')}`,
        root: ROOT,
        extraFlags: options.connectorFlags,
      });
    }
  }
  const sizes: SizeRun[] = [];
  for (const mib of options.sizesMiB) {
    sizes.push(await oneSize(mib, variants, options.rounds ?? 1, options.deviceRounds ?? 0));
  }
  const runs = sizes.map((size) => size.figures);
  const rows: (string | number)[][] = [];
  for (const [index, r] of runs.entries()) {
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
    const measured = sizes[index]!.variants;
    const reference = measured['this tree'];
    for (const [name, v] of Object.entries(measured)) {
      const mbps = median(v.mbps);
      const rounds = `median of ${v.mbps.length}`;
      rows.push(
        [`${label}, ${name}: connector send (${rounds})`, mbps, 'MB/s'],
        [`${label}, ${name}: connector send ÷ plain copy`, mbps / r.plainCopyMBps!, '×'],
        [`${label}, ${name}: connector peak RSS (${rounds})`, median(v.peakRssMiB), 'MiB'],
        [`${label}, ${name}: connector floor, --help (${rounds})`, median(v.floorMiB), 'MiB'],
        [`${label}, ${name}: connector CPU (${rounds})`, median(v.cpuSeconds), 's'],
      );
      if (reference && name !== 'this tree') {
        rows.push([`${label}, ${name} ÷ this tree: send MB/s`, mbps / median(reference.mbps), '×']);
      }
    }
  }
  for (const [index, size] of sizes.entries()) {
    const label = `${runs[index]!.mib} MiB record`;
    const shipped = size.device['as shipped'];
    for (const [name, d] of Object.entries(size.device)) {
      const of = `median of ${d.seconds.length}`;
      rows.push(
        [`${label}, device ${name}: sync seconds (${of})`, median(d.seconds), 's'],
        [`${label}, device ${name}: peak RSS (${of})`, median(d.peakRssMiB), 'MiB'],
      );
      if (shipped && name !== 'as shipped') {
        rows.push([
          `${label}, device as shipped ÷ ${name}: sync seconds`,
          median(shipped.seconds) / median(d.seconds),
          '×',
        ]);
      }
    }
  }
  return {
    results: {
      delivery: runs,
      connectorVariants: sizes.map((size) => size.variants),
      deviceVariants: sizes.map((size) => size.device),
    },
    rows,
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '200,1024' },
      rounds: { type: 'string', default: '1' },
      baseline: { type: 'string' },
      'connector-flags': { type: 'string' },
      'device-rounds': { type: 'string', default: '0' },
    },
  });
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  const { results, rows } = await benchDelivery({
    sizesMiB: values.sizes.split(',').map(Number),
    rounds: Number(values.rounds),
    deviceRounds: Number(values['device-rounds']),
    ...(values.baseline ? { baseline: values.baseline } : {}),
    ...(values['connector-flags']
      ? { connectorFlags: values['connector-flags'].split(/\s+/).filter(Boolean) }
      : {}),
  });
  console.log(table([['measure', 'value', 'unit'], ...rows]));
  console.log(`\nwritten to ${await writeResults('delivery', { at: new Date().toISOString(), ...results })}`);
}
