// `node bench/ingest.ts` (part of `npm run bench`): records per second through the ingest
// function for 64 KiB records (upload dropped → signed receipt in the outbox), against a bare
// pipeline measured in the same run that moves the same bytes the same way — read the upload,
// write it to the records bucket, write one Firestore document, delete the upload — with none
// of ingest's checks (container parsing, manifest signature, devices, digest, receipt, push).
// The ratio is what ingest's checks and bookkeeping cost. Uploads are sealed before timing, and
// go to `patients` different patients in turn, as a hospital's traffic does (each patient's
// audit chain takes its appends one at a time; see docs/PERFORMANCE.md).
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnStack } from '../emulator/process.ts';
import { createFirestore } from '../shared/adapters/google-clients.ts';
import {
  collectBytes,
  dropUpload,
  functionPublicKey,
  pairTestDevice,
  registerTestHospital,
  sealTestUpload,
  stackBlobStore,
  waitForReceipt,
  type TestDevice,
} from '../test/helpers/delivery-fixture.ts';
import { inParallel } from '../shared/core/in-parallel.ts';
import { isMain, table, timed, writeResults } from './stats.ts';

const RECORD_BYTES = 64 * 1024;

export async function benchIngest(options: {
  readonly records: number;
  readonly concurrency: number;
  readonly patients: number;
}): Promise<{
  results: Record<string, unknown>;
  rows: (string | number)[][];
}> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cb-bench-ingest-'));
  const stack = await spawnStack(['--port-base', '0', '--data-dir', dataDir]);
  const firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
  const blobs = stackBlobStore(stack);
  try {
    const hospital = await registerTestHospital(firestore, stack, 'bench-hospital');
    const devices: TestDevice[] = [];
    for (let i = 0; i < options.patients; i++)
      devices.push(await pairTestDevice(stack, hospital, `bench-patient-${i}`));
    let turn = 0;
    const ingestKey = await functionPublicKey(firestore, 'ingest');
    const seal = async () => {
      const device = devices[turn++ % devices.length]!;
      const sealed = await sealTestUpload(hospital, {
        patientRef: device.patientRef,
        recipients: [device],
        file: new Uint8Array(randomBytes(RECORD_BYTES)),
      });
      return {
        name: sealed.objectName,
        uploadId: sealed.manifest.uploadId,
        bytes: await collectBytes(sealed.bytes()),
      };
    };
    const warm = await seal();
    await dropUpload(stack, warm.name, warm.bytes);
    await waitForReceipt(stack, hospital.hospitalId, warm.uploadId, ingestKey);

    const uploads = await Promise.all(Array.from({ length: options.records }, seal));
    const ingestSeconds = await timed(() =>
      inParallel(uploads, options.concurrency, async (upload) => {
        await dropUpload(stack, upload.name, upload.bytes);
        const receipt = await waitForReceipt(stack, hospital.hospitalId, upload.uploadId, ingestKey, 120_000);
        if (receipt.status !== 'accepted') throw new Error(`upload rejected: ${receipt.errorCode}`);
      }),
    );

    // The bare pipeline, with its own uploads under a prefix no function listens to the same way:
    // written to the outbox bucket, so the ingest function is not triggered.
    const bare = uploads.map((upload, i) => ({ ...upload, name: `bench/bare/${i}.cbr` }));
    const outbox = stack.env.OUTBOX_BUCKET!;
    const records = stack.env.RECORDS_BUCKET!;
    for (const upload of bare) {
      await blobs.createOnly(
        outbox,
        upload.name,
        (async function* () {
          yield upload.bytes;
        })(),
      );
    }
    const bareSeconds = await timed(() =>
      inParallel(bare, options.concurrency, async (upload) => {
        const info = await blobs.stat(outbox, upload.name);
        await blobs.createOnly(
          records,
          `bench/bare/${upload.uploadId}.cbr`,
          blobs.read(outbox, upload.name, { generation: info!.generation }),
        );
        await firestore
          .collection('benchBare')
          .doc(upload.uploadId)
          .create({ size: info!.size, at: new Date() });
        await blobs.delete(outbox, upload.name, { ifGenerationMatch: info!.generation });
      }),
    );
    const results = {
      records: options.records,
      recordBytes: RECORD_BYTES,
      concurrency: options.concurrency,
      patients: options.patients,
      ingestRecordsPerSecond: options.records / ingestSeconds,
      barePipelineRecordsPerSecond: options.records / bareSeconds,
      ingestToBareRatio: bareSeconds / ingestSeconds,
    };
    return {
      results: { ingest: results },
      rows: [
        [
          `ingest, ${options.records} x 64 KiB to ${options.patients} patient(s) (drop → verified receipt)`,
          results.ingestRecordsPerSecond,
          'records/s',
        ],
        [
          'bare copy + Firestore write + delete, same bytes',
          results.barePipelineRecordsPerSecond,
          'records/s',
        ],
        ['ratio ingest / bare pipeline', results.ingestToBareRatio, 'x'],
      ],
    };
  } finally {
    await firestore.terminate();
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      records: { type: 'string', default: '100' },
      concurrency: { type: 'string', default: '4' },
      patients: { type: 'string', default: '10' },
    },
  });
  const { results, rows } = await benchIngest({
    records: Number(values.records),
    concurrency: Number(values.concurrency),
    patients: Number(values.patients),
  });
  console.log(table([['measure', 'value', 'unit'], ...rows]));
  console.log(`\nwritten to ${await writeResults('ingest', { at: new Date().toISOString(), ...results })}`);
}
