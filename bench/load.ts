// The load run (threat model D3): many phones syncing while the connector sends. Phones are
// paired from their invitation QR text and sync with the device client's own code
// (clients/device: list, download, verify, decrypt, acknowledge), polling (`--sync poll`, the
// stress test) or on each push as a phone does (`--sync push`); the connector seals,
// drops and waits for each signed receipt, a few at a time. The run reports what went wrong
// (records lost or delivered twice, every refused request by status and code) and how long
// things took (request latency per kind, drop-to-stored delivery), all from the same run.
// `node bench/load.ts --patients 20 --devices 2 --records 240 --reference 40` alone; the security suite runs a
// small one on every CI run and asserts only the counts, never a time.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Firestore } from '@google-cloud/firestore';
import { ApiError, type ApiClient } from '../clients/lib/api-client.ts';
import { DeviceHome, pairFromQr, syncRecords, type Enrolment } from '../sdk/index.ts';
import { FileDeviceStore, fileRecordSink } from '../sdk/node.ts';
import { localPushToken, waitForPush } from '../clients/device/local-push.ts';
import { spawnStack } from '../emulator/process.ts';
import { RECORDS_COLLECTION } from '../shared/adapters/firestore-records.ts';
import { createFirestore } from '../shared/adapters/google-clients.ts';
import { encodeInvitationQr } from '../shared/core/protocol/index.ts';
import { inParallel } from '../shared/core/in-parallel.ts';
import {
  collectBytes,
  dropUpload,
  functionPublicKey,
  inviteTestPatient,
  registerTestHospital,
  sealTestUpload,
  waitForReceipt,
  type StackEnv,
} from '../test/helpers/delivery-fixture.ts';
import { isMain, percentile, table, writeResults } from './stats.ts';

export interface LoadOptions {
  readonly patients: number;
  readonly devicesPerPatient: number;
  readonly records: number;
  /** Uploads the connector has in flight at once. */
  readonly concurrency: number;
  readonly recordBytes: number;
  /** Gives up (and counts what is missing as lost) after this long. */
  readonly deadlineMs: number;
  /** How long a phone waits between syncs when it polls. */
  readonly pollMs?: number;
  /**
   * 'poll' (the stress test): every phone syncs every `pollMs`. 'push' (as a phone does): a phone
   * syncs when its push arrives, long-polling the local FCM recorder as cb-device's watch does.
   */
  readonly sync?: 'poll' | 'push';
  /** Records sent first with the phones idle: the reference the loaded rate is compared with. */
  readonly referenceRecords: number;
}

export interface Spread {
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
}

export interface LoadFigures {
  readonly devices: number;
  readonly recordsSent: number;
  readonly receiptsRejected: number;
  /** Device deliveries expected (each record to each of its patient's phones). */
  readonly deliveriesExpected: number;
  readonly deliveriesStored: number;
  readonly lost: number;
  readonly duplicated: number;
  /** Records Firestore holds that do not carry a stored ack from every recipient. */
  readonly unacknowledged: number;
  readonly requests: number;
  /** Refused or failed requests by "status code" (e.g. "503 UNAVAILABLE"); empty is the goal. */
  readonly rejections: Readonly<Record<string, number>>;
  readonly latencyMs: Readonly<Record<'list' | 'content (headers)' | 'ack', Spread>>;
  readonly deliveryMs: Spread;
  readonly seconds: number;
  /** The connector's rate with the phones idle, and while they sync, in records/s. */
  readonly sendRate: { readonly alone: number; readonly whileSyncing: number; readonly ratio: number };
}

function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { count: 0, p50: 0, p95: 0, max: 0 };
  return {
    count: values.length,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    max: Math.max(...values),
  };
}

type RequestKind = keyof LoadFigures['latencyMs'];

function kindOf(target: string): RequestKind {
  if (target.endsWith('/content')) return 'content (headers)';
  if (target.endsWith('/ack')) return 'ack';
  return 'list';
}

/** The same client, timing each request and noting each refusal. */
function measuredApi(
  api: ApiClient,
  note: (kind: RequestKind, ms: number, refusal: string | undefined) => void,
): ApiClient {
  const measure = async <T>(target: string, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      const result = await run();
      note(kindOf(target), performance.now() - started, undefined);
      return result;
    } catch (error) {
      const refusal = error instanceof ApiError ? `${error.status} ${error.code}` : 'network error';
      note(kindOf(target), performance.now() - started, refusal);
      throw error;
    }
  };
  return {
    call: (request, schema) => measure(request.target, () => api.call(request, schema)),
    raw: (request) => measure(request.target, () => api.raw(request)),
  };
}

interface Phone {
  readonly home: DeviceHome;
  readonly outDir: string;
  readonly patient: number;
  readonly deviceId: string;
  readonly enrolment: Enrolment;
}

/** Runs the load against a stack that is up; `workDir` holds the phones' homes and files. */
export async function runLoad(
  stack: StackEnv,
  firestore: Firestore,
  workDir: string,
  options: LoadOptions,
): Promise<LoadFigures> {
  const hospital = await registerTestHospital(
    firestore,
    stack,
    // Hex: a hospital id allows only lower-case letters, digits and '-'.
    `load-${randomBytes(4).toString('hex')}`,
  );
  const ingestKey = await functionPublicKey(firestore, 'ingest');
  const phones: Phone[] = [];
  const patientRefs: string[] = [];
  for (let patient = 0; patient < options.patients; patient++) {
    for (let device = 0; device < options.devicesPerPatient; device++) {
      const invitation = await inviteTestPatient(hospital, `load-patient-${patient}`);
      patientRefs[patient] = invitation.patientRef;
      const home = new DeviceHome(new FileDeviceStore(join(workDir, `phone-${patient}-${device}`)));
      const qr = encodeInvitationQr({
        apiBase: stack.env.FUNCTIONS_BASE_URL!,
        hospitalId: hospital.hospitalId,
        hospitalPublicKey: hospital.keys.publicKey,
        invitationId: invitation.invitationId,
        token: invitation.token,
        bindingSecret: invitation.bindingSecret,
        // No connector witnesses this load run's log: any key (the phones' syncs do not follow it).
        witnessKey: new Uint8Array(randomBytes(32)),
      });
      const paired = await pairFromQr(home, qr, {
        platform: 'android',
        fcmToken: localPushToken(),
        now: new Date(),
      });
      phones.push({
        home,
        outDir: join(workDir, `phone-${patient}-${device}-files`),
        patient,
        deviceId: paired.deviceId,
        enrolment: await home.open(),
      });
    }
  }
  const samples: Record<RequestKind, number[]> = { list: [], 'content (headers)': [], ack: [] };
  const rejections: Record<string, number> = {};
  const note = (kind: RequestKind, ms: number, refusal: string | undefined) => {
    samples[kind].push(ms);
    if (refusal) rejections[refusal] = (rejections[refusal] ?? 0) + 1;
  };
  const droppedAt = new Map<string, number>();
  const sentTo = new Map<number, string[]>();
  const deliveries: number[] = [];
  let receiptsRejected = 0;
  let sending = true;
  const deadline = Date.now() + options.deadlineMs;

  /** Seals, drops and waits for the receipt of each record, a few at a time. */
  const send = (indices: readonly number[], timeDelivery: boolean) =>
    inParallel(indices, options.concurrency, async (index) => {
      const patient = index % options.patients;
      const sealed = await sealTestUpload(hospital, {
        patientRef: patientRefs[patient]!,
        recipients: phones
          .filter((phone) => phone.patient === patient)
          .map((phone) => ({ deviceId: phone.deviceId, keys: phone.enrolment.keys })),
        file: new Uint8Array(randomBytes(options.recordBytes)),
      });
      const bytes = await collectBytes(sealed.bytes());
      if (timeDelivery) droppedAt.set(sealed.manifest.recordId, performance.now());
      await dropUpload(stack, sealed.objectName, bytes);
      const receipt = await waitForReceipt(
        stack,
        hospital.hospitalId,
        sealed.manifest.uploadId,
        ingestKey,
        Math.max(1000, deadline - Date.now()),
      );
      if (receipt.status !== 'accepted') {
        receiptsRejected++;
        return;
      }
      sentTo.set(patient, [...(sentTo.get(patient) ?? []), receipt.recordId]);
    });
  const indices = Array.from({ length: options.records }, (_, index) => index);
  const reference = Math.min(options.referenceRecords, options.records);

  // The reference, in the same run: the connector alone, the phones idle.
  const alone = performance.now();
  await send(indices.slice(0, reference), false);
  const aloneSeconds = (performance.now() - alone) / 1000;

  const started = performance.now();
  let loadedSeconds = 0;
  const connector = (async () => {
    try {
      await send(indices.slice(reference), true);
    } finally {
      loadedSeconds = (performance.now() - started) / 1000;
      sending = false;
    }
  })();

  const onPush = options.sync === 'push';
  const syncing = phones.map(async (phone) => {
    for (;;) {
      // The phone's own list of what it stored; the files are counted once, at the end.
      let enrolment = await phone.home.open();
      const caughtUp = !sending && (sentTo.get(phone.patient) ?? []).length <= enrolment.data.stored.length;
      if (caughtUp || Date.now() > deadline) return;
      if (onPush) {
        // A bounded wait, so that a phone notices the end of the run without a push.
        const hint = await waitForPush(stack.env.FCM_EMULATOR_URL!, enrolment, phone.home, 1000);
        if (hint !== 'records') continue;
        // waitForPush kept the last push it saw; the sync must not write back the older copy.
        enrolment = await phone.home.open();
      }
      try {
        const results = await syncRecords(
          phone.home,
          { ...enrolment, api: measuredApi(enrolment.api, note) },
          fileRecordSink(phone.outDir),
        );
        for (const result of results) {
          const dropped = droppedAt.get(result.recordId);
          if (result.outcome === 'stored' && dropped !== undefined)
            deliveries.push(performance.now() - dropped);
        }
      } catch {
        // Already counted as a rejection; a phone tries again at its next sync.
      }
      if (!onPush) await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 50));
    }
  });
  await Promise.all([connector, ...syncing]);
  const seconds = (performance.now() - started) / 1000;

  let expected = 0;
  let stored = 0;
  let lost = 0;
  let duplicated = 0;
  for (const phone of phones) {
    const mine = new Set(sentTo.get(phone.patient) ?? []);
    const files = await storedBy(phone);
    expected += mine.size;
    stored += files.length;
    duplicated += files.length - new Set(files).size;
    lost += [...mine].filter((recordId) => !files.includes(recordId)).length;
  }
  const records = await firestore
    .collection(RECORDS_COLLECTION)
    .where('hospitalId', '==', hospital.hospitalId)
    .get();
  const unacknowledged = records.docs.filter((doc) => {
    const acks = (doc.get('acks') ?? {}) as Record<string, { outcome?: string }>;
    return (doc.get('recipients') as string[]).some((deviceId) => acks[deviceId]?.outcome !== 'stored');
  }).length;
  return {
    devices: phones.length,
    recordsSent: options.records,
    receiptsRejected,
    deliveriesExpected: expected,
    deliveriesStored: stored,
    lost,
    duplicated: duplicated + Math.max(0, records.size - (options.records - receiptsRejected)),
    unacknowledged,
    requests: Object.values(samples).reduce((sum, values) => sum + values.length, 0),
    rejections,
    latencyMs: {
      list: spread(samples.list),
      'content (headers)': spread(samples['content (headers)']),
      ack: spread(samples.ack),
    },
    deliveryMs: spread(deliveries),
    seconds,
    sendRate: {
      alone: reference / aloneSeconds,
      whileSyncing: (options.records - reference) / loadedSeconds,
      ratio: (options.records - reference) / loadedSeconds / (reference / aloneSeconds),
    },
  };
}

/** The record ids a phone stored, one per file it wrote (a record stored twice shows twice). */
async function storedBy(phone: Phone): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(phone.outDir);
  } catch {
    return [];
  }
  const ids: string[] = [];
  for (const name of names.filter((entry) => entry.endsWith('.json'))) {
    const about = JSON.parse(await readFile(join(phone.outDir, name), 'utf8')) as { recordId: string };
    ids.push(about.recordId);
  }
  return ids;
}

export function loadRows(figures: LoadFigures): (string | number)[][] {
  const rows: (string | number)[][] = [
    [
      `load: ${figures.devices} phones syncing while ${figures.recordsSent} records are sent`,
      figures.seconds,
      's',
    ],
    ['deliveries stored / expected', `${figures.deliveriesStored} / ${figures.deliveriesExpected}`, ''],
    ['receipts rejected', String(figures.receiptsRejected), ''],
    [
      'lost, duplicated, unacknowledged',
      `${figures.lost}, ${figures.duplicated}, ${figures.unacknowledged}`,
      '',
    ],
    [
      'refused requests',
      Object.entries(figures.rejections)
        .map(([what, n]) => `${what} ×${n}`)
        .join(', ') || 'none',
      `of ${figures.requests}`,
    ],
  ];
  for (const [kind, values] of Object.entries(figures.latencyMs)) {
    rows.push([
      `${kind} latency p50 / p95 / max`,
      `${values.p50.toFixed(0)} / ${values.p95.toFixed(0)} / ${values.max.toFixed(0)}`,
      'ms',
    ]);
  }
  rows.push(['connector alone (phones idle)', figures.sendRate.alone, 'records/s']);
  rows.push(['connector while the phones sync', figures.sendRate.whileSyncing, 'records/s']);
  rows.push(['ratio while syncing / alone', figures.sendRate.ratio, 'x']);
  const d = figures.deliveryMs;
  rows.push([
    'drop → stored on the phone p50 / p95 / max',
    `${d.p50.toFixed(0)} / ${d.p95.toFixed(0)} / ${d.max.toFixed(0)}`,
    'ms',
  ]);
  return rows;
}

export async function benchLoad(
  options: LoadOptions,
): Promise<{ results: Record<string, unknown>; rows: (string | number)[][] }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cb-bench-load-'));
  const stack = await spawnStack(['--port-base', '0', '--data-dir', join(dataDir, 'stack')]);
  const firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
  try {
    const figures = await runLoad(stack, firestore, dataDir, options);
    return { results: { load: { options, figures } }, rows: loadRows(figures) };
  } finally {
    await firestore.terminate();
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function syncMode(value: string): 'poll' | 'push' {
  if (value === 'poll' || value === 'push') return value;
  throw new Error(`--sync is poll or push, not ${JSON.stringify(value)}`);
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      patients: { type: 'string', default: '20' },
      devices: { type: 'string', default: '2' },
      records: { type: 'string', default: '240' },
      concurrency: { type: 'string', default: '4' },
      reference: { type: 'string', default: '40' },
      'poll-ms': { type: 'string', default: '50' },
      sync: { type: 'string', default: 'poll' },
      'record-kib': { type: 'string', default: '16' },
      'deadline-s': { type: 'string', default: '600' },
    },
  });
  const { results, rows } = await benchLoad({
    patients: Number(values.patients),
    devicesPerPatient: Number(values.devices),
    records: Number(values.records),
    concurrency: Number(values.concurrency),
    referenceRecords: Number(values.reference),
    pollMs: Number(values['poll-ms']),
    sync: syncMode(values.sync),
    recordBytes: Number(values['record-kib']) * 1024,
    deadlineMs: Number(values['deadline-s']) * 1000,
  });
  console.log(table([['measure', 'value', 'unit'], ...rows]));
  console.log(`\nwritten to ${await writeResults('load', { at: new Date().toISOString(), ...results })}`);
}
