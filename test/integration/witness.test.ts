// The hospital's connector as the witness of its audit transparency log, and the patient's
// device following that log, through the real bins on the local stack: the connector invites
// (the QR carries the witness key), the device pairs and pins it, a record is delivered, the
// sequencer runs, `cb-connector witness` cosigns, and `cb-device sync` / `access-log` accept
// only the cosigned checkpoint and prove each sequenced entry's inclusion. A witness or device
// whose kept checkpoint the log no longer extends refuses, and keeps what it had.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOutput } from '../helpers/bins.ts';
import { onboardConnector, type OnboardedConnector } from '../helpers/onboarded-connector.ts';
import { runSequencer } from '../helpers/audit-logs.ts';

const HOSPITAL = 'st-witness-zh';
const PATIENT = 'CANARY-771-patient';

interface AccessLogJson {
  treeSize: number;
  entries: { at: string; action: string; index?: number; verified: boolean }[];
}

describe('the connector witnesses, the device verifies', { timeout: 180_000 }, () => {
  let onboarded: OnboardedConnector;
  let dir: string;
  const deviceHome = () => join(dir, 'device');
  const connector = (...args: string[]) => onboarded.connector(...args);
  const device = (...args: string[]) => onboarded.bin('cb-device', [...args, '--home', deviceHome()]);
  const witnessState = () => join(onboarded.home, 'witness.json');
  const deviceState = () => join(deviceHome(), 'audit-log', `${HOSPITAL}.json`);

  beforeAll(async () => {
    onboarded = await onboardConnector({ hospitalId: HOSPITAL });
    dir = onboarded.dir;
  });

  afterAll(async () => {
    await onboarded?.close();
  });

  it('cosigns the sequenced log, and the device accepts only what the witness cosigned', async () => {
    const qr = join(dir, 'invite.png');
    expect((await connector('invite', PATIENT, '--out', qr)).code).toBe(0);
    const paired = await device('pair', qr);
    expect(paired.code, paired.stderr).toBe(0);
    const enrolment = JSON.parse(
      await readFile(join(deviceHome(), 'enrolments', `${HOSPITAL}.json`), 'utf8'),
    );
    expect(enrolment.witnessKey).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // Nothing cosigned yet: the device may sync (it has no checkpoint to defend).
    const nothing = jsonOutput<{ size: number; cosigned: boolean }>(await connector('witness', '--json'));
    expect(nothing.cosigned).toBe(false);

    const letter = join(dir, 'letter.txt');
    await writeFile(letter, 'discharge letter');
    const sent = await connector('send', letter, '--patient', PATIENT, '--wait');
    expect(sent.code, sent.stderr).toBe(0);
    const first = await device('sync', '--out', join(dir, 'received'));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('1 new record(s)');

    await runSequencer(onboarded.stack);
    const cosigned = jsonOutput<{ size: number; cosigned: boolean }>(await connector('witness', '--json'));
    expect(cosigned.cosigned).toBe(true);
    expect(cosigned.size).toBeGreaterThan(0);
    // Again with nothing new: a no-op at the same size.
    const again = jsonOutput<{ size: number; cosigned: boolean }>(await connector('witness', '--json'));
    expect(again).toEqual({ size: cosigned.size, cosigned: false });

    const synced = await device('sync', '--out', join(dir, 'received'));
    expect(synced.code, synced.stderr).toBe(0);
    expect(JSON.parse(await readFile(deviceState(), 'utf8')).size).toBe(cosigned.size);

    const log = jsonOutput<AccessLogJson>(await device('access-log', '--json'));
    expect(log.treeSize).toBe(cosigned.size);
    expect(log.entries.length).toBeGreaterThan(0);
    const sequenced = log.entries.filter((entry) => entry.index !== undefined && entry.index < log.treeSize);
    expect(sequenced.length).toBeGreaterThan(0);
    expect(sequenced.every((entry) => entry.verified)).toBe(true);
    expect(log.entries.filter((entry) => !sequenced.includes(entry)).every((entry) => !entry.verified)).toBe(
      true,
    );
    const text = await device('access-log');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/record\.created .*\[verified\]/);

    // The log grows (a second record, delivered and downloaded); the witness extends its
    // checkpoint, and the device follows.
    const second = join(dir, 'second.txt');
    await writeFile(second, 'lab results');
    expect((await connector('send', second, '--patient', PATIENT, '--wait')).code).toBe(0);
    const more = await device('sync', '--out', join(dir, 'received'));
    expect(more.code, more.stderr).toBe(0);
    expect(more.stdout).toContain('1 new record(s)');
    await runSequencer(onboarded.stack);
    const extended = jsonOutput<{ size: number; cosigned: boolean }>(await connector('witness', '--json'));
    expect(extended.size).toBeGreaterThan(cosigned.size);
    expect(extended.cosigned).toBe(true);
    const later = jsonOutput<AccessLogJson>(await device('access-log', '--json'));
    expect(later.treeSize).toBe(extended.size);
    expect(later.entries.filter((entry) => entry.verified).length).toBeGreaterThan(sequenced.length);
  });

  it('a witness or device whose checkpoint the log does not extend refuses and keeps its state', async () => {
    // Make each believe it saw another tree of the same size: the log's proof cannot extend it.
    const forge = async (path: string) => {
      const state = JSON.parse(await readFile(path, 'utf8'));
      const forged = { ...state, rootHash: 'A'.repeat(43) };
      await writeFile(path, `${JSON.stringify(forged, null, 2)}\n`);
      return `${JSON.stringify(forged, null, 2)}\n`;
    };
    await runSequencer(onboarded.stack); // the device's later access-log calls were recorded
    const witnessForged = await forge(witnessState());
    const refused = await connector('witness', '--json');
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('LOG_INCONSISTENT');
    expect(await readFile(witnessState(), 'utf8')).toBe(witnessForged);

    const deviceForged = await forge(deviceState());
    const sync = await device('sync', '--out', join(dir, 'received'));
    expect(sync.code).toBe(3);
    expect(sync.stderr).toContain('AUDIT_LOG_INCONSISTENT');
    const log = await device('access-log', '--json');
    expect(log.code).toBe(3);
    expect(log.stderr).toContain('AUDIT_LOG_INCONSISTENT');
    expect(await readFile(deviceState(), 'utf8')).toBe(deviceForged);
  });
});
