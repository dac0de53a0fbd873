// `node bench/ingest.ts` (part of `npm run bench`): records per second through the ingest
// function for 64 KiB records (upload dropped → signed receipt in the outbox), against a bare
// pipeline measured in the same run that moves the same bytes the same way — write the upload,
// read it, write it to the records bucket, write one Firestore document, delete the upload —
// with none of ingest's checks (container parsing, manifest signature, devices, digest,
// receipt, audit event, push) and no event between the drop and the work. The ratio is what
// ingest's checks, bookkeeping and event hand-off cost. Ingest is timed twice: in lock-step (each
// of `concurrency` slots drops an upload and waits for its receipt) and as a bundle (all dropped,
// then the receipts collected, as `cb-connector watch` sends). Uploads are sealed before timing,
// and go to `patients` different patients in turn; `--spread N` also times the same number of
// records spread over N patients, so the ratio of the two shows whether one patient's records
// queue behind each other (they did while each patient's audit trail had one head document).
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
  /** Also time the same number of records spread over this many patients. */
  readonly spread?: number;
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
    const spreadDevices: TestDevice[] = [];
    for (let i = 0; i < (options.spread ?? 0); i++)
      spreadDevices.push(await pairTestDevice(stack, hospital, `bench-spread-${i}`));
    const ingestKey = await functionPublicKey(firestore, 'ingest');
    const sealFor = (to: readonly TestDevice[]) => {
      let turn = 0;
      return async () => {
        const device = to[turn++ % to.length]!;
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
    };
    type Upload = Awaited<ReturnType<ReturnType<typeof sealFor>>>;
    const accepted = async (upload: Upload) => {
      const receipt = await waitForReceipt(stack, hospital.hospitalId, upload.uploadId, ingestKey, 120_000);
      if (receipt.status !== 'accepted') throw new Error(`upload rejected: ${receipt.errorCode}`);
    };
    // Lock-step: each of the `concurrency` slots waits for its upload's receipt before the next.
    const ingestAll = (uploads: readonly Upload[]) =>
      timed(() =>
        inParallel(uploads, options.concurrency, async (upload) => {
          await dropUpload(stack, upload.name, upload.bytes);
          await accepted(upload);
        }),
      );
    // As `cb-connector watch` sends a bundle: every upload dropped (as many at once as in
    // lock-step), then the receipts collected; ingest works on them meanwhile.
    const ingestBundle = (uploads: readonly Upload[]) =>
      timed(async () => {
        await inParallel(uploads, options.concurrency, (upload) =>
          dropUpload(stack, upload.name, upload.bytes),
        );
        await inParallel(uploads, options.concurrency, accepted);
      });
    const seal = sealFor(devices);
    const warm = await seal();
    await dropUpload(stack, warm.name, warm.bytes);
    await waitForReceipt(stack, hospital.hospitalId, warm.uploadId, ingestKey);

    const uploads = await Promise.all(Array.from({ length: options.records }, seal));
    const ingestSeconds = await ingestAll(uploads);
    const bundleSeconds = await ingestBundle(
      await Promise.all(Array.from({ length: options.records }, seal)),
    );
    const spreadSeconds =
      spreadDevices.length > 0
        ? await ingestAll(await Promise.all(Array.from({ length: options.records }, sealFor(spreadDevices))))
        : undefined;

    // The bare pipeline, with its own uploads under a prefix no function listens to the same way:
    // written to the outbox bucket, so the ingest function is not triggered.
    const bare = uploads.map((upload, i) => ({ ...upload, name: `bench/bare/${i}.cbr` }));
    const outbox = stack.env.OUTBOX_BUCKET!;
    const records = stack.env.RECORDS_BUCKET!;
    const bareSeconds = await timed(() =>
      inParallel(bare, options.concurrency, async (upload) => {
        // The drop is timed here as it is for ingest: both clocks start before the upload is written.
        await blobs.createOnly(
          outbox,
          upload.name,
          (async function* () {
            yield upload.bytes;
          })(),
        );
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
      bundleRecordsPerSecond: options.records / bundleSeconds,
      bundleToBareRatio: bareSeconds / bundleSeconds,
      ...(spreadSeconds === undefined
        ? {}
        : {
            spreadPatients: spreadDevices.length,
            spreadRecordsPerSecond: options.records / spreadSeconds,
            onePatientToSpreadRatio: spreadSeconds / ingestSeconds,
          }),
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
        [
          `ingest, the same ${options.records} dropped as a bundle, then the receipts collected`,
          results.bundleRecordsPerSecond,
          'records/s',
        ],
        ['ratio bundle / bare pipeline', results.bundleToBareRatio, 'x'],
        ...(spreadSeconds === undefined
          ? []
          : [
              [
                `ingest, same records spread over ${spreadDevices.length} patients`,
                options.records / spreadSeconds,
                'records/s',
              ],
              [
                `ratio ${options.patients} patient(s) / ${spreadDevices.length} patients`,
                spreadSeconds / ingestSeconds,
                'x',
              ],
            ]),
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
      spread: { type: 'string', default: '0' },
    },
  });
  const { results, rows } = await benchIngest({
    records: Number(values.records),
    concurrency: Number(values.concurrency),
    patients: Number(values.patients),
    spread: Number(values.spread),
  });
  console.log(table([['measure', 'value', 'unit'], ...rows]));
  console.log(`\nwritten to ${await writeResults('ingest', { at: new Date().toISOString(), ...results })}`);
}
