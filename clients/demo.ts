// `npm run demo`: the whole story on a fresh, temporary local stack, told through the same
// command-line clients a hospital and a patient would use. An operator registers a hospital;
// the hospital invites a patient (QR code); the patient's phone pairs from the PNG; the
// hospital sends a FHIR R4 DocumentReference, the PDF it describes and a 200 MiB imaging file;
// the phone is pinged, syncs, verifies and decrypts; every file is compared byte for byte; and
// a plaintext canary is searched for in everything the platform stored. Exits 0 only if every
// step really happened. `--imaging-mib N` changes the size of the imaging file.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnStack, type StackProcess } from '../emulator/process.ts';
import { STACK_ENV_FILE } from '../shared/emulation.ts';
import { spawnClient, type ClientName } from './lib/cli.ts';

const PATIENT_NUMBER = 'DEMO-CANARY-000123456';
const CANARY = 'CLINIC-BRIDGE-DEMO-CANARY-plaintext-7c1f';
const steps: { title: string; ok: boolean }[] = [];

const { values: options } = parseArgs({ options: { 'imaging-mib': { type: 'string', default: '200' } } });
const imagingMiB = Number(options['imaging-mib']);

function expect(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

async function step(title: string, body: () => Promise<string>): Promise<boolean> {
  console.log(`\n▶ ${title}`);
  const started = performance.now();
  try {
    const detail = await body();
    console.log(`  ✔ ${detail} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    steps.push({ title, ok: true });
    return true;
  } catch (error) {
    console.log(`  ✘ ${(error as Error).message}`);
    steps.push({ title, ok: false });
    return false;
  }
}

/** Runs a client as README's walk-through does (`cb-… args`, the bin itself), showing the command and its output. */
async function client(
  name: ClientName,
  args: string[],
  env: NodeJS.ProcessEnv,
  show: { quiet?: boolean; passStderr?: boolean } = {},
): Promise<string> {
  console.log(`  $ ${name} ${args.map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawnClient(name, args, env);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (show.passStderr) process.stdout.write(chunk);
    });
    child.once('exit', (code) => {
      if (!show.quiet) {
        for (const line of stdout.trimEnd().split('\n')) if (line !== '') console.log(`    ${line}`);
      }
      if (code === 0) resolve(stdout);
      else reject(new Error(`${name} exited with ${code}: ${stderr.trim() || stdout.trim()}`));
    });
  });
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A small but valid one-page PDF (a discharge letter) with the canary in its text. */
function dischargeLetterPdf(): Buffer {
  const text = `BT /F1 12 Tf 72 720 Td (Discharge letter - ${CANARY}) Tj ET`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${text.length} >>\nstream\n${text}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let pdf = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(Buffer.byteLength(pdf));
    pdf += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = Buffer.byteLength(pdf);
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) pdf += `${String(offset).padStart(10, '0')} 00000 n \n`;
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(pdf, 'latin1');
}

/** A FHIR R4 DocumentReference describing the PDF (size and SHA-1 as FHIR's Attachment wants). */
function documentReference(pdf: Buffer): string {
  return JSON.stringify(
    {
      resourceType: 'DocumentReference',
      id: 'discharge-2026-001',
      status: 'current',
      type: { coding: [{ system: 'http://loinc.org', code: '18842-5', display: 'Discharge summary' }] },
      subject: { identifier: { system: 'urn:oid:2.16.840.1.113883.2.4.6.3', value: PATIENT_NUMBER } },
      date: '2026-11-23T09:30:00Z',
      description: `Discharge letter ${CANARY}`,
      content: [
        {
          attachment: {
            contentType: 'application/pdf',
            title: 'discharge-letter.pdf',
            size: pdf.length,
            hash: createHash('sha1').update(pdf).digest('base64'),
          },
        },
      ],
    },
    null,
    2,
  );
}

/** A large imaging file (DICOM preamble and prefix, then noise), written in 4 MiB pieces. */
async function imagingFile(path: string, mib: number): Promise<void> {
  const out = createWriteStream(path);
  const header = Buffer.alloc(132);
  header.write('DICM', 128, 'latin1');
  out.write(Buffer.concat([header, Buffer.from(CANARY)]));
  for (let written = 0; written < mib * 1024 * 1024; written += 4 * 1024 * 1024) {
    if (!out.write(randomBytes(4 * 1024 * 1024)))
      await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve) => out.end(() => resolve()));
}

/** Every stored file under `dir` that holds the canary bytes. */
async function filesWithCanary(dir: string): Promise<string[]> {
  const needle = Buffer.from(CANARY);
  const hits: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    let tail = Buffer.alloc(0);
    for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
      const window = Buffer.concat([tail, chunk as Buffer]);
      if (window.includes(needle)) {
        hits.push(path);
        break;
      }
      tail = window.subarray(Math.max(0, window.length - needle.length));
    }
  }
  return hits;
}

async function main(): Promise<number> {
  const work = await mkdtemp(join(tmpdir(), 'clinic-bridge-demo-'));
  const dataDir = join(work, 'stack');
  let stack: StackProcess | undefined;
  console.log('Clinic Bridge demo: a record from a hospital to a patient’s phone, end to end encrypted.');
  console.log(`Everything runs on a fresh local stack in ${work} and is removed afterwards.`);
  try {
    const started = await step('Start the local Google Cloud stack (npm start)', async () => {
      stack = await spawnStack(['--port-base', '0', '--data-dir', dataDir]);
      return `Firestore, Cloud Storage, Cloud KMS, FCM and the functions are up at ${stack.env.FUNCTIONS_BASE_URL}`;
    });
    if (!started || !stack) return 1;
    const env = { ...process.env, CB_STACK_ENV: join(dataDir, STACK_ENV_FILE) };
    const connectorHome = ['--home', join(work, 'hospital-connector')];
    const deviceHome = ['--home', join(work, 'patient-phone')];
    const files = join(work, 'to-send');
    const received = join(work, 'received');
    await mkdir(files);

    const onboarded = await step('The hospital makes its keys; the operator registers it', async () => {
      const publicKey = (
        await client('cb-connector', ['keys', '--hospital', 'st-demo-zh', ...connectorHome], env)
      ).trim();
      const onboarding = await client(
        'cb-admin',
        ['register-hospital', '--id', 'st-demo-zh', '--public-key', publicKey, '--json'],
        env,
        { quiet: true },
      );
      await writeFile(join(work, 'onboarding.json'), onboarding);
      await client(
        'cb-connector',
        ['configure', '--from', join(work, 'onboarding.json'), ...connectorHome],
        env,
      );
      return 'the connector pins the pairing and ingest functions’ public keys';
    });
    const qr = join(work, 'invitation.png');
    const invited =
      onboarded &&
      (await step(
        'The hospital invites the patient: a QR code, as a PNG (drawn on screen only on a terminal)',
        async () => {
          await client('cb-connector', ['invite', PATIENT_NUMBER, '--out', qr, ...connectorHome], env);
          return 'only a keyed pseudonym of the patient number left the hospital';
        },
      ));
    const paired =
      invited &&
      (await step('The patient’s phone scans the PNG and pairs', async () => {
        await client('cb-device', ['pair', qr, '--platform', 'android', ...deviceHome], env);
        return 'fresh device key, proof of possession, binding proof, certificate from the pairing function';
      }));

    const pdf = dischargeLetterPdf();
    const plan = [
      {
        name: 'discharge-documentreference.json',
        args: ['--class', 'fhir', '--title', 'Discharge summary (FHIR)'],
      },
      { name: 'discharge-letter.pdf', args: ['--class', 'document', '--title', 'Discharge letter'] },
      { name: 'ct-thorax.dcm', args: ['--class', 'imaging', '--title', 'CT thorax', '--progress'] },
    ];
    await writeFile(join(files, plan[0]!.name), documentReference(pdf));
    await writeFile(join(files, plan[1]!.name), pdf);
    const sent =
      paired &&
      (await step(
        `The hospital sends a FHIR DocumentReference, its PDF and a ${imagingMiB} MiB scan`,
        async () => {
          await imagingFile(join(files, plan[2]!.name), imagingMiB);
          for (const file of plan) {
            await client(
              'cb-connector',
              [
                'send',
                join(files, file.name),
                '--patient',
                PATIENT_NUMBER,
                ...file.args,
                '--wait',
                '--timeout',
                '600',
                ...connectorHome,
              ],
              env,
              { passStderr: true },
            );
          }
          return 'each file encrypted for the verified device, uploaded, checked by ingest and receipted';
        },
      ));
    const synced =
      sent &&
      (await step('The phone gets the push, downloads, verifies and decrypts', async () => {
        const output = await client(
          'cb-device',
          ['sync', '--wait', '60', '--out', received, ...deviceHome],
          env,
        );
        expect(output.includes('Push received (records)'), 'no push arrived');
        expect(output.includes('3 new record(s)'), 'not all three records were stored');
        return 'pinged by FCM with an opaque hint, then three signed downloads, each acknowledged';
      }));
    if (synced) {
      await step('Every file arrived byte for byte', async () => {
        for (const file of plan) {
          const [a, b] = await Promise.all([
            sha256(join(files, file.name)),
            sha256(join(received, file.name)),
          ]);
          expect(a === b, `${file.name} differs`);
          console.log(`    ${file.name}  sha256 ${a.slice(0, 16)}…  identical`);
        }
        return 'identical';
      });
      await step(
        "The hospital's connector witnesses the audit log: it grew consistently, so it cosigns",
        async () => {
          // The sequencer runs every minute on its own; here it is run at once, as an operator may.
          const run = await fetch(`${stack!.env.FUNCTIONS_BASE_URL}/_scheduler/jobs/sequencer:run`, {
            method: 'POST',
          });
          expect(run.ok, 'the sequencer could not be run');
          const witnessed = await client('cb-connector', ['witness', ...connectorHome], env);
          expect(/^Cosigned the audit log at \d+ entries/m.test(witnessed), 'the witness did not cosign');
          return 'checkpoint signed with the log key in KMS, cosigned with the hospital key';
        },
      );
      await step('The patient reads who did what with their records (NEN 7513 access log)', async () => {
        const log = await client('cb-device', ['access-log', ...deviceHome], env);
        expect(/[1-9]\d* verified against the cosigned audit log/.test(log), 'no entry verified');
        for (const action of [
          'device.paired',
          'record.created',
          'record.downloaded',
          'record.acknowledged',
        ]) {
          expect(log.includes(action), `the access log lacks ${action}`);
        }
        return 'ids and actors only, each proven to be in the log the hospital witnessed';
      });
      await step('The operator runs retention and verifies every audit log in full', async () => {
        await client('cb-admin', ['run-retention'], env);
        const verified = await client('cb-admin', ['audit-verify', '--log', 'st-demo-zh'], env);
        expect(/^st-demo-zh {2}ok {2}/m.test(verified), 'the audit log did not verify');
        return 'nothing was due yet; every tile and entry matches the signed, cosigned tree';
      });
      await step('Nothing readable reached the cloud: the canary is in no stored byte', async () => {
        const pushes = await (await fetch(`${stack!.env.FCM_EMULATOR_URL}/_recorder/messages`)).text();
        expect(
          !pushes.includes(CANARY) && !pushes.includes(PATIENT_NUMBER),
          'a push payload holds plaintext',
        );
        const code = await stack!.stop(); // saves Firestore to disk, so it is scanned too
        stack = undefined;
        expect(code === 0, `the stack stopped with ${code}`);
        const hits = await filesWithCanary(dataDir);
        expect(hits.length === 0, `plaintext found in ${hits.join(', ')}`);
        const sample = JSON.parse(await readFile(join(work, 'onboarding.json'), 'utf8')) as {
          hospitalId: string;
        };
        return `Storage, Firestore, KMS and push state of ${sample.hospitalId}’s delivery scanned: ciphertext only`;
      });
    }
  } finally {
    await stack?.stop();
    await rm(work, { recursive: true, force: true });
  }
  const failed = steps.filter((s) => !s.ok).length;
  console.log(`\n${steps.length - failed} of ${steps.length} steps passed; the temporary stack was removed.`);
  return failed === 0 && steps.length === 11 ? 0 : 1;
}

process.exitCode = await main();
