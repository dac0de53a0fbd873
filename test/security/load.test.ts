// Threat D3 (docs/THREAT_MODEL.md): a bounded load run on the local stack on every CI run. Phones
// paired from their QR text sync with the device client's own code while the connector sends
// (bench/load.ts drives both). The test asserts only what must hold under load: every record
// reaches every phone of its patient exactly once, acknowledged, with no request refused. The
// latency and rejection figures go into the security report; times are never asserted here
// (a larger run is `node bench/load.ts`).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRows, runLoad } from '../../bench/load.ts';
import { startStack, type Stack } from '../../emulator/stack.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { recordEvidence } from '../helpers/evidence.ts';
import { captureStdout, type StdoutCapture } from '../helpers/stdout-capture.ts';

const LOAD = {
  patients: Number(process.env.LOAD_PATIENTS ?? 8),
  devicesPerPatient: 2,
  records: Number(process.env.LOAD_RECORDS ?? 40),
  referenceRecords: 8,
  concurrency: 4,
  recordBytes: 16 * 1024,
  deadlineMs: 150_000,
};

describe('D3 load: phones syncing while the connector sends', () => {
  let dataDir: string;
  let stack: Stack;
  let firestore: Firestore;
  let quiet: StdoutCapture;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cb-load-'));
    stack = await startStack({ dataDir: join(dataDir, 'stack'), portBase: 0 });
    firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
  });

  afterAll(async () => {
    quiet?.restore();
    await firestore?.terminate();
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it(
    `${LOAD.patients * LOAD.devicesPerPatient} phones, ${LOAD.records} records: none lost, none twice, none refused`,
    async () => {
      quiet = captureStdout();
      const figures = await runLoad(stack, firestore, dataDir, LOAD);
      quiet.restore();
      // The same rows the benchmark prints, for the security report.
      recordEvidence({
        kind: 'load',
        figures: Object.fromEntries(
          loadRows(figures).map(([measure, value, unit]) => [
            measure,
            `${typeof value === 'number' ? value.toFixed(2) : value} ${unit}`.trim(),
          ]),
        ),
      });
      // One comparison, so that a failure shows every count at once.
      expect({
        receiptsRejected: figures.receiptsRejected,
        deliveriesExpected: figures.deliveriesExpected,
        deliveriesStored: figures.deliveriesStored,
        lost: figures.lost,
        duplicated: figures.duplicated,
        unacknowledged: figures.unacknowledged,
        rejections: figures.rejections,
      }).toEqual({
        receiptsRejected: 0,
        deliveriesExpected: LOAD.records * LOAD.devicesPerPatient,
        deliveriesStored: LOAD.records * LOAD.devicesPerPatient,
        lost: 0,
        duplicated: 0,
        unacknowledged: 0,
        rejections: {},
      });
    },
    LOAD.deadlineMs + 60_000,
  );
});
