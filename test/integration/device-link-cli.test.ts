// Device linking as a patient does it with two phones, through the reference device's command
// line over the SDK: the new phone shows a link QR and waits (`cb-device link`), the paired
// phone approves it (`cb-device approve-link`), and the new phone then syncs the record the
// hospital sent before it existed, byte for byte, and can erase like any phone. The hospital's
// connector then accepts the linked phone as a recipient (its linker is a phone it accepts) and
// encrypts new records to it; once the linker is revoked, a phone it linked is refused.
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAIRING_COLLECTIONS } from '../../shared/adapters/firestore-pairing.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { jsonOutput, type BinOutcome } from '../helpers/bins.ts';
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

type DeviceBin = (home: string, ...args: string[]) => Promise<BinOutcome>;

/**
 * The two-phone dance: `link` on the new phone (which writes its QR and waits), then
 * `approve-link` on the approving phone once the QR is there. Returns the still-running link.
 */
async function linkPhone(device: DeviceBin, newHome: string, approverHome: string, qrPng: string) {
  const linking = device(newHome, '--hospital', HOSPITAL, 'link', '--out', qrPng, '--wait', '60', '--json');
  await appears(qrPng, 30_000);
  const approved = jsonOutput<{ deviceId: string; records: string[]; skipped: unknown[] }>(
    await device(approverHome, 'approve-link', qrPng, '--json'),
  );
  return { linking, approved };
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

    const { linking, approved } = await linkPhone(device, newPhone, oldPhone, linkQr);
    expect(((await stat(linkQr)).mode & 0o777).toString(8)).toBe('600');
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

  it('the connector encrypts new records to linked phones, and refuses one whose linker was revoked or that the cloud revives', async () => {
    const oldPhone = join(onboarded.dir, 'old-phone');
    const newPhone = join(onboarded.dir, 'new-phone');
    const thirdPhone = join(onboarded.dir, 'third-phone');
    const device = (home: string, ...args: string[]) => onboarded.bin('cb-device', ['--home', home, ...args]);
    type Listed = { deviceId: string; verified: boolean; linkedBy?: string; code?: string };
    const connectorDevices = async () => {
      const listed = await onboarded.connector('devices', '--patient', PATIENT, '--json');
      // Exit 3 when any device is refused, with the same JSON on stdout.
      expect([0, 3], listed.stderr).toContain(listed.code);
      return { code: listed.code, devices: (JSON.parse(listed.stdout) as { devices: Listed[] }).devices };
    };
    const oldId = jsonOutput<{ devices: { deviceId: string; current: boolean }[] }>(
      await device(oldPhone, 'devices', '--json'),
    ).devices.find((d) => d.current)!.deviceId;
    const newId = jsonOutput<{ devices: { deviceId: string; current: boolean }[] }>(
      await device(newPhone, 'devices', '--json'),
    ).devices.find((d) => d.current)!.deviceId;

    // The linked phone is a recipient in its own right, and says which phone vouched for it.
    const before = await connectorDevices();
    expect(before.code).toBe(0);
    expect(before.devices).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ deviceId: oldId, verified: true }),
        expect.objectContaining({ deviceId: newId, verified: true, linkedBy: oldId }),
      ]),
    );
    expect(before.devices.find((d) => d.deviceId === oldId)).not.toHaveProperty('linkedBy');

    // A phone linked by the linked phone is accepted through the chain.
    const { linking, approved } = await linkPhone(
      device,
      thirdPhone,
      newPhone,
      join(onboarded.dir, 'link-third.png'),
    );
    expect(jsonOutput<{ deviceId: string }>(await linking).deviceId).toBe(approved.deviceId);
    const thirdId = approved.deviceId;
    expect((await connectorDevices()).devices).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ deviceId: thirdId, verified: true, linkedBy: newId }),
      ]),
    );

    // A record sent after linking: its key reaches the linked phones only through the manifest
    // (no link carries it), and the new phone stores it byte for byte.
    const letter = join(onboarded.dir, 'after-the-new-phone.pdf');
    const content = randomBytes(300_000 + 13);
    await writeFile(letter, content);
    const sent = jsonOutput<{ sent: { recordId: string; devices: number; skipped: unknown[] }[] }>(
      await onboarded.connector('send', letter, '--patient', PATIENT, '--wait', '--json'),
    );
    expect(sent.sent[0]).toMatchObject({ devices: 3, skipped: [] });
    const synced = jsonOutput<{ records: { recordId: string; outcome: string; file: string }[] }>(
      await device(newPhone, 'sync', '--json'),
    );
    const stored = synced.records.find((r) => r.recordId === sent.sent[0]!.recordId);
    expect(stored).toMatchObject({
      outcome: 'stored',
      file: expect.stringMatching(/after-the-new-phone\.pdf$/),
    });
    expect(Buffer.compare(await readFile(stored!.file), content)).toBe(0);

    // The patient revokes the new phone from the old one: it no longer vouches for the phone it
    // linked, which is refused with a stable code (named with its claimed linker) and skipped by
    // the next send.
    const revoked = await device(oldPhone, 'revoke', '--json', '--', newId);
    expect(revoked.code, revoked.stderr).toBe(0);
    const after = await connectorDevices();
    expect(after.code).toBe(3);
    expect(after.devices).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ deviceId: oldId, verified: true }),
        { deviceId: thirdId, verified: false, code: 'LINK_INVALID', linkedBy: newId },
      ]),
    );
    expect(after.devices.some((d) => d.deviceId === newId && d.verified)).toBe(false);
    const secret = join(onboarded.dir, 'after-the-revocation.pdf');
    await writeFile(secret, randomBytes(5_000));
    const withheld = await onboarded.connector('send', secret, '--patient', PATIENT, '--wait', '--json');
    const outcome = jsonOutput<{ sent: { recordId: string; devices: number; skipped: unknown[] }[] }>(
      withheld,
    );
    expect(outcome.sent[0]).toMatchObject({
      devices: 1,
      skipped: [{ deviceId: thirdId, code: 'LINK_INVALID' }],
    });
    expect(withheld.stderr).toContain(`skipped device ${thirdId}: LINK_INVALID`);
    const third = jsonOutput<{ records: { recordId: string }[] }>(await device(thirdPhone, 'sync', '--json'));
    expect(third.records.map((r) => r.recordId)).toContain(sent.sent[0]!.recordId);
    expect(third.records.map((r) => r.recordId)).not.toContain(outcome.sent[0]!.recordId);

    // A cloud that revives the revoked phone does not bring it back: the connector saw it gone.
    const firestore = createFirestore(onboarded.stack.env.GCLOUD_PROJECT!, onboarded.stack.env);
    try {
      await firestore.collection(PAIRING_COLLECTIONS.devices).doc(newId).update({ status: 'active' });
    } finally {
      await firestore.terminate();
    }
    const revived = await connectorDevices();
    expect(revived.devices).toEqual(
      expect.arrayContaining([
        { deviceId: newId, verified: false, code: 'DEVICE_REVOKED', linkedBy: oldId },
        { deviceId: thirdId, verified: false, code: 'LINK_INVALID', linkedBy: newId },
      ]),
    );
  });
});
