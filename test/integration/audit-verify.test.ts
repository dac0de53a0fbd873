// cb-admin audit-verify and audit-monitor through the real bin, on the local stack: events are
// recorded through the real adapter, sequenced by the deployed sequencer (run on demand through
// the functions host's scheduler), cosigned by a test witness, and then tampered with the way an
// operator with the database and the bucket could: an entry's event edited, a tile deleted.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUDIT_COLLECTIONS,
  createFirestoreAuditLog,
  createFirestoreLogRegistry,
} from '../../shared/adapters/firestore-audit.ts';
import { sealAuditEvent, type AuditFields } from '../../shared/audit/fields.ts';
import { tilePath } from '../../shared/core/tlog/index.ts';
import { runSequencer, stackTransparency, testWitness, tlogBucket } from '../helpers/audit-logs.ts';
import { binRunner, writeStackEnvFile, type BinOutcome } from '../helpers/bins.ts';
import { stackBlobStore } from '../helpers/delivery-fixture.ts';
import { useLocalStack } from '../helpers/local-stack.ts';

const HOSPITAL = 'verify-h';
const PATIENT = 'PPPPPPPPPPPPPPPPPPPPPA';
const COUNT = 5;

function event(i: number, extra: Partial<AuditFields> = {}): AuditFields {
  return {
    at: new Date(Date.UTC(2031, 4, 1, 10, 0, i)).toISOString().replace('.000Z', 'Z'),
    actor: { kind: 'device', id: `device-${i}` },
    action: 'record.downloaded',
    hospitalId: HOSPITAL,
    patientRef: PATIENT,
    ...extra,
  };
}

interface VerifyJson {
  keySource: string;
  logs: { logId: string; verdict: { ok: boolean; code?: string; index?: number; size?: number } }[];
}

function verdictOf(outcome: BinOutcome, logId = HOSPITAL) {
  return (JSON.parse(outcome.stdout) as VerifyJson).logs.find((log) => log.logId === logId)?.verdict;
}

describe('cb-admin audit-verify and audit-monitor', () => {
  const local = useLocalStack('audit-verify');
  let dir: string;
  let bin: ReturnType<typeof binRunner>;
  let logKey: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-audit-verify-'));
    bin = binRunner(await writeStackEnvFile(local.stack, dir));
    const audit = createFirestoreAuditLog(local.firestore);
    for (let i = 0; i < COUNT; i++) await audit.append([{ fields: event(i) }]);
    await runSequencer(local.stack);
    logKey = (await createFirestoreLogRegistry(local.firestore).state(HOSPITAL)).verifierKey!;
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('verifies an intact log in full, with the witness cosigned checkpoint, and pinned key or not', async () => {
    const witness = testWitness(HOSPITAL, randomBytes(32), () => Math.floor(Date.now() / 1000));
    expect(await witness.cosignLatest(stackTransparency(local.stack, local.firestore))).toMatchObject({
      size: COUNT,
      recorded: true,
    });
    const registry = await bin('cb-admin', ['audit-verify', '--json']);
    expect(registry.code, registry.stderr).toBe(0);
    expect(JSON.parse(registry.stdout)).toMatchObject({ keySource: 'registry' });
    expect(verdictOf(registry)).toMatchObject({
      ok: true,
      size: COUNT,
      entriesChecked: COUNT,
      witnessedSize: COUNT,
    });

    const pinned = await bin('cb-admin', ['audit-verify', '--log', HOSPITAL, '--log-key', logKey]);
    expect(pinned.code, pinned.stderr).toBe(0);
    expect(pinned.stdout).toContain(`the pinned log key ${logKey}`);
    expect(pinned.stdout).toMatch(new RegExp(`^${HOSPITAL} {2}ok {2}size ${COUNT}`, 'm'));

    // The outside auditor: the bucket and the witnessed note, no database.
    const state = join(dir, 'monitor.json');
    const witnessed = join(dir, 'witnessed.note');
    await writeFile(
      witnessed,
      (await createFirestoreLogRegistry(local.firestore).state(HOSPITAL)).witnessed!.note,
    );
    const monitorArgs = [
      'audit-monitor',
      '--api-base',
      local.stack.env.FUNCTIONS_BASE_URL!,
      '--hospital',
      HOSPITAL,
      '--log-key',
      logKey,
      // A base64url key may begin with '-', so the value is attached with '='.
      `--witness-key=${witness.witnessKey}`,
      '--witnessed',
      witnessed,
      '--state',
      state,
      '--json',
    ];
    const first = await bin('cb-admin', monitorArgs);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({
      ok: true,
      size: COUNT,
      newLeaves: COUNT,
      witnessedSize: COUNT,
    });
    const again = await bin('cb-admin', monitorArgs);
    expect(JSON.parse(again.stdout)).toMatchObject({
      ok: true,
      size: COUNT,
      newLeaves: 0,
      previousSize: COUNT,
    });

    const old = await bin('cb-admin', ['audit-verify', '--retention-key', 'x']);
    expect(old.code).toBe(2);
  }, 90_000); // six runs of cb-admin, each a Node process that loads Themis

  it('reports an edited entry document as ENTRY_MISMATCH at its index', async () => {
    const { docs } = await local.firestore
      .collection(AUDIT_COLLECTIONS.entries)
      .where('logId', '==', HOSPITAL)
      .where('index', '==', 2)
      .get();
    const doc = docs[0]!;
    const original = doc.get('event') as string;
    await doc.ref.update({ event: sealAuditEvent(event(2, { action: 'record.acknowledged' })).event });
    try {
      const outcome = await bin('cb-admin', ['audit-verify', '--json', '--log', HOSPITAL]);
      expect(outcome.code, outcome.stderr).toBe(3);
      expect(verdictOf(outcome)).toMatchObject({ ok: false, code: 'ENTRY_MISMATCH', index: 2 });
    } finally {
      await doc.ref.update({ event: original });
    }
    expect((await bin('cb-admin', ['audit-verify', '--log', HOSPITAL])).code).toBe(0);
  });

  it('reports a deleted tile, to the operator and to the monitor', async () => {
    const blobs = stackBlobStore(local.stack);
    const name = `${HOSPITAL}/${tilePath({ level: 0, index: 0, width: COUNT })}`;
    expect(await blobs.delete(tlogBucket(local.stack), name)).toBe(true);
    const outcome = await bin('cb-admin', ['audit-verify', '--json', '--log', HOSPITAL]);
    expect(outcome.code, outcome.stderr).toBe(3);
    expect(verdictOf(outcome)).toMatchObject({ ok: false, code: 'TILE_MISSING', index: 0 });
    const monitor = await bin('cb-admin', [
      'audit-monitor',
      '--api-base',
      local.stack.env.FUNCTIONS_BASE_URL!,
      '--hospital',
      HOSPITAL,
      '--log-key',
      logKey,
    ]);
    expect(monitor.code).toBe(3);
    expect(monitor.stdout).toContain('TILE_MISSING');
  });
});
