// Device linking as a patient does it with two phones, through the reference device's command
// line over the SDK: the new phone shows a link QR and waits (`cb-device link`), the paired
// phone approves it (`cb-device approve-link`), and the new phone then syncs the record the
// hospital sent before it existed, byte for byte, and can erase like any phone.
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOutput } from '../helpers/bins.ts';
import { onboardConnector, type OnboardedConnector } from '../helpers/onboarded-connector.ts';

const HOSPITAL = 'st-link-cli';
const PATIENT = 'link-patient-1';

async function appears(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      await stat(path).then(
        () => true,
        () => false,
      )
    )
      return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${path} did not appear`);
}

describe('cb-device link and approve-link', { timeout: 240_000 }, () => {
  let onboarded: OnboardedConnector;

  beforeAll(async () => {
    onboarded = await onboardConnector({ hospitalId: HOSPITAL });
  });

  afterAll(async () => {
    await onboarded?.close();
  });

  it('a new phone joins through the paired one and opens a record sent before it existed', async () => {
    const oldPhone = join(onboarded.dir, 'old-phone');
    const newPhone = join(onboarded.dir, 'new-phone');
    const device = (home: string, ...args: string[]) => onboarded.bin('cb-device', ['--home', home, ...args]);

    const invite = join(onboarded.dir, 'invite.png');
    expect((await onboarded.connector('invite', PATIENT, '--out', invite, '--json')).code).toBe(0);
    const paired = await device(oldPhone, 'pair', invite, '--quiet');
    expect(paired.code, paired.stderr).toBe(0);
    const letter = join(onboarded.dir, 'before-the-new-phone.pdf');
    const content = randomBytes(1024 * 1024 + 777);
    await writeFile(letter, content);
    const sent = await onboarded.connector('send', letter, '--patient', PATIENT, '--wait', '--quiet');
    expect(sent.code, sent.stderr).toBe(0);

    // A phone that is not paired anywhere has nothing to approve with.
    const linkQr = join(onboarded.dir, 'link.png');
    const stranger = await device(join(onboarded.dir, 'stranger'), 'approve-link', linkQr);
    expect(stranger.code).toBe(2);

    const linking = device(
      newPhone,
      '--hospital',
      HOSPITAL,
      'link',
      '--out',
      linkQr,
      '--wait',
      '60',
      '--json',
    );
    await appears(linkQr, 30_000);
    expect(((await stat(linkQr)).mode & 0o777).toString(8)).toBe('600');
    const approved = jsonOutput<{ deviceId: string; records: string[]; skipped: unknown[] }>(
      await device(oldPhone, 'approve-link', linkQr, '--json'),
    );
    expect(approved.records).toHaveLength(1);
    expect(approved.skipped).toEqual([]);
    const linked = jsonOutput<{ hospitalId: string; deviceId: string }>(await linking);
    expect(linked).toMatchObject({ hospitalId: HOSPITAL, deviceId: approved.deviceId });

    // The QR was one-time: approving it again is refused, and nothing changes for the new phone.
    const again = await device(oldPhone, 'approve-link', linkQr);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain('DEVICE_ALREADY_PAIRED');

    const synced = jsonOutput<{ records: { recordId: string; outcome: string; file: string }[] }>(
      await device(newPhone, 'sync', '--json'),
    );
    expect(synced.records).toEqual([
      {
        recordId: approved.records[0],
        outcome: 'stored',
        file: expect.stringMatching(/before-the-new-phone\.pdf$/),
      },
    ]);
    expect(Buffer.compare(await readFile(synced.records[0]!.file), content)).toBe(0);

    // Both phones are the patient's: each lists the other.
    const devices = jsonOutput<{ devices: { deviceId: string; current: boolean }[] }>(
      await device(newPhone, 'devices', '--json'),
    );
    expect(devices.devices.map((d) => d.deviceId).sort()).toEqual(
      [approved.deviceId, paired.stdout.trim()].sort(),
    );
  });
});
