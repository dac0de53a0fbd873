// `node bench/pairing.ts` (part of `npm run bench`): latency of pairing a device (the
// POST /pairing/v1/pair call: proof-of-possession check, one Firestore transaction, a signed
// certificate), against the health function's round trip measured interleaved in the same run,
// the floor any HTTP function call on this stack pays. The stack runs as its own process, as a
// phone would meet it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnStack } from '../emulator/process.ts';
import { createFirestore } from '../shared/adapters/google-clients.ts';
import {
  inviteTestPatient,
  pairWithInvitation,
  registerTestHospital,
} from '../test/helpers/delivery-fixture.ts';
import { isMain, median, percentile, table, timed, writeResults } from './stats.ts';

export async function benchPairing(options: { readonly pairings: number }): Promise<{
  results: Record<string, unknown>;
  rows: (string | number)[][];
}> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cb-bench-pairing-'));
  const stack = await spawnStack(['--port-base', '0', '--data-dir', dataDir]);
  const firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
  try {
    const hospital = await registerTestHospital(firestore, stack, 'bench-hospital');
    const health = `${stack.env.FUNCTIONS_BASE_URL}/health`;
    const pairMs: number[] = [];
    const healthMs: number[] = [];
    // Warm both paths (first calls pay connection set-up and the function's lazy work).
    await pairWithInvitation(stack, await inviteTestPatient(hospital, 'warm-up'));
    await fetch(health).then((response) => response.arrayBuffer());
    for (let i = 0; i < options.pairings; i++) {
      // Each device is its own patient, so the per-patient device limit never interferes.
      const invitation = await inviteTestPatient(hospital, `bench-patient-${i}`);
      pairMs.push(1000 * (await timed(() => pairWithInvitation(stack, invitation))));
      healthMs.push(1000 * (await timed(() => fetch(health).then((response) => response.arrayBuffer()))));
    }
    const results = {
      pairings: options.pairings,
      pairP50Ms: percentile(pairMs, 50),
      pairP99Ms: percentile(pairMs, 99),
      healthP50Ms: percentile(healthMs, 50),
      healthP99Ms: percentile(healthMs, 99),
      pairToHealthMedianRatio: median(pairMs) / median(healthMs),
    };
    return {
      results: { pairing: results },
      rows: [
        ['pair a device, p50 (client-side, incl. key generation)', results.pairP50Ms, 'ms'],
        ['pair a device, p99', results.pairP99Ms, 'ms'],
        ['health call round trip, p50 (same run)', results.healthP50Ms, 'ms'],
        ['ratio pair / health (medians)', results.pairToHealthMedianRatio, 'x'],
      ],
    };
  } finally {
    await firestore.terminate();
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { pairings: { type: 'string', default: '200' } } });
  const { results, rows } = await benchPairing({ pairings: Number(values.pairings) });
  console.log(table([['measure', 'value', 'unit'], ...rows]));
  console.log(`\nwritten to ${await writeResults('pairing', { at: new Date().toISOString(), ...results })}`);
}
