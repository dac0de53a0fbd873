// The restore drill of docs/OPERATIONS.md ("The connector in the hospital") on the whole local
// stack, through the real bins: a hospital's connector pairs a phone, delivers a record and
// witnesses its audit log; its home is backed up to a recovery key and then lost. Restored onto
// a fresh directory, the connector carries on as itself: the phone receives and decrypts the
// next record (same hospital key, same pseudonyms, same enrolment journal), the journal still
// knows the earlier record (its receipt settles, recall takes it back), the witness continues
// from the checkpoint it had cosigned, and nothing sent before the backup is sent again. With
// the keys in a PKCS#11 token (SoftHSM2), the backup holds only the token's reference, and the
// restored home signs with the same token.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupHome, restoreHome } from '../../clients/connector/backup.ts';
import {
  createRecoveryKey,
  readRecoveryKeyFile,
  writeRecoveryKeyFile,
} from '../../clients/connector/recovery-key.ts';
import { runSequencer } from '../helpers/audit-logs.ts';
import { jsonOutput } from '../helpers/bins.ts';
import { softHsmCustody, SOFTHSM_MODULE } from '../helpers/softhsm.ts';
import { onboardConnector, type OnboardedConnector } from '../helpers/onboarded-connector.ts';

const HOSPITAL = 'st-backup-zh';
const PATIENT = 'CANARY-518-patient';

interface SentJson {
  sent: { uploadId: string; recordId: string; devices: number; status: string }[];
}
interface ReceiptsJson {
  uploads: { uploadId: string; recordId: string; status: string; forged: boolean }[];
}
interface WitnessJson {
  size: number;
  cosigned: boolean;
}

describe('a connector restored from its backup carries on', { timeout: 240_000 }, () => {
  let onboarded: OnboardedConnector;
  let dir: string;
  const deviceHome = () => join(dir, 'device');
  const restoredHome = () => join(dir, 'restored-connector');
  const original = (...args: string[]) => onboarded.connector(...args);
  const restored = (...args: string[]) => onboarded.bin('cb-connector', ['--home', restoredHome(), ...args]);
  const device = (...args: string[]) => onboarded.bin('cb-device', [...args, '--home', deviceHome()]);

  beforeAll(async () => {
    onboarded = await onboardConnector({ hospitalId: HOSPITAL });
    dir = onboarded.dir;
  });

  afterAll(async () => {
    await onboarded?.close();
  });

  it('delivers, witnesses and recalls from the restored home, and re-sends nothing', async () => {
    // Before: a paired phone, one record delivered, the audit log cosigned by the witness.
    const qr = join(dir, 'invite.png');
    expect((await original('invite', PATIENT, '--out', qr)).code).toBe(0);
    const paired = await device('pair', qr);
    expect(paired.code, paired.stderr).toBe(0);
    const firstFile = join(dir, 'before-backup.txt');
    await writeFile(firstFile, 'discharge letter, sent before the backup');
    const first = jsonOutput<SentJson>(
      await original('send', firstFile, '--patient', PATIENT, '--wait', '--json'),
    ).sent[0]!;
    expect(first).toMatchObject({ status: 'accepted', devices: 1 });
    const received = join(dir, 'received');
    const firstSync = await device('sync', '--wait', '20', '--out', received);
    expect(firstSync.code, firstSync.stderr).toBe(0);
    expect(firstSync.stdout).toContain('1 new record(s)');
    await runSequencer(onboarded.stack);
    const witnessed = jsonOutput<WitnessJson>(await original('witness', '--json'));
    expect(witnessed.cosigned).toBe(true);

    // The backup, encrypted to a recovery key whose private half is kept apart.
    const recovery = createRecoveryKey();
    const recoveryFile = join(dir, 'offline', 'recovery.key');
    await mkdir(join(dir, 'offline'), { mode: 0o700 });
    await writeRecoveryKeyFile(recoveryFile, recovery);
    const backupFile = join(dir, 'connector.cbbackup');
    const summary = await backupHome(onboarded.home, recovery.publicKey, backupFile);
    expect(summary).toMatchObject({ hospitalId: HOSPITAL, custody: 'file', keysIncluded: true });
    expect(summary.files).toEqual(
      expect.arrayContaining([
        'hospital-keys.json',
        'connector.json',
        'journal.jsonl',
        'enrolments.jsonl',
        'witness.json',
      ]),
    );

    // The machine is lost: nothing of the original home remains.
    await rm(onboarded.home, { recursive: true, force: true });
    const lost = await original('receipts', '--json');
    expect(lost.code).not.toBe(0);

    const result = await restoreHome(backupFile, await readRecoveryKeyFile(recoveryFile), restoredHome());
    expect(result).toMatchObject({ hospitalId: HOSPITAL, backupId: summary.backupId });
    expect((await stat(restoredHome())).mode & 0o777).toBe(0o700);
    for (const name of await readdir(restoredHome())) {
      expect((await stat(join(restoredHome(), name))).mode & 0o777, name).toBe(0o600);
    }

    // The restored journal still knows the earlier record, settled, under its own upload id.
    const before = jsonOutput<ReceiptsJson>(await restored('receipts', '--json'));
    expect(before.uploads).toEqual([
      expect.objectContaining({ uploadId: first.uploadId, recordId: first.recordId, status: 'accepted' }),
    ]);

    // A new record from the restored home: the phone (paired with the original) accepts it.
    const secondFile = join(dir, 'after-restore.txt');
    await writeFile(secondFile, 'lab results, sent from the restored connector');
    const second = jsonOutput<SentJson>(
      await restored('send', secondFile, '--patient', PATIENT, '--wait', '--json'),
    ).sent[0]!;
    expect(second).toMatchObject({ status: 'accepted', devices: 1 });
    expect(second.recordId).not.toBe(first.recordId);

    // The witness continues from the checkpoint it had cosigned (a rollback would be refused).
    await runSequencer(onboarded.stack);
    const continued = jsonOutput<WitnessJson>(await restored('witness', '--json'));
    expect(continued.cosigned).toBe(true);
    expect(continued.size).toBeGreaterThan(witnessed.size);

    const secondSync = await device('sync', '--wait', '20', '--out', received);
    expect(secondSync.code, secondSync.stderr).toBe(0);
    // Exactly the new record: the one sent before the backup was not sent again.
    expect(secondSync.stdout).toContain('1 new record(s)');
    expect(await readFile(join(received, 'after-restore.txt'), 'utf8')).toBe(
      'lab results, sent from the restored connector',
    );
    const after = jsonOutput<ReceiptsJson>(await restored('receipts', '--json'));
    expect(after.uploads.map((upload) => upload.uploadId).sort()).toEqual(
      [first.uploadId, second.uploadId].sort(),
    );
    expect(after.uploads.every((upload) => upload.status === 'accepted' && !upload.forged)).toBe(true);

    // And it can take back the record sent before the backup.
    const recalled = jsonOutput<{ recordId: string; receiptVerified: boolean }>(
      await restored('recall', '--json', '--', first.recordId),
    );
    expect(recalled).toMatchObject({ recordId: first.recordId, receiptVerified: true });
  });
});

describe(
  'a connector whose keys are in a PKCS#11 token, restored from its backup',
  { timeout: 180_000 },
  () => {
    const TOKEN = 'cb-backup-e2e';
    const PATIENT_HSM = 'CANARY-519-patient';
    const pin = randomBytes(6).toString('hex');
    const custody = softHsmCustody(TOKEN, pin);
    let onboarded: OnboardedConnector;

    beforeAll(async () => {
      onboarded = await onboardConnector({ hospitalId: 'st-backup-hsm', ...custody.options });
    });

    afterAll(async () => {
      await onboarded?.close();
    });

    it('holds only the token reference, and the restored home delivers with the token', async () => {
      const { dir } = onboarded;
      const device = (...args: string[]) =>
        onboarded.bin('cb-device', [...args, '--home', join(dir, 'device')]);
      const qr = join(dir, 'invite.png');
      expect((await onboarded.connector('invite', PATIENT_HSM, '--out', qr)).code).toBe(0);
      expect((await device('pair', qr)).code).toBe(0);

      const recovery = createRecoveryKey();
      const backupFile = join(dir, 'hsm.cbbackup');
      const summary = await backupHome(onboarded.home, recovery.publicKey, backupFile);
      expect(summary).toMatchObject({ custody: 'pkcs11', keysIncluded: false });
      await rm(onboarded.home, { recursive: true, force: true });

      const home = join(dir, 'restored-hsm');
      const restored = await restoreHome(backupFile, recovery.privateText, home);
      expect(restored.token).toEqual({ module: SOFTHSM_MODULE, tokenLabel: TOKEN });
      const keys = await readFile(join(home, 'hospital-keys.json'), 'utf8');
      expect(keys).not.toMatch(/privateKey|masterSecret/);
      expect(keys).not.toContain(pin);

      const letter = join(dir, 'letter.txt');
      await writeFile(letter, 'signed in the token by the restored connector');
      const sent = await onboarded.bin(
        'cb-connector',
        ['--home', home, 'send', letter, '--patient', PATIENT_HSM, '--wait', '--json'],
        custody.tokenEnv(),
      );
      expect(sent.code, sent.stderr).toBe(0);
      expect((JSON.parse(sent.stdout) as SentJson).sent[0]).toMatchObject({ status: 'accepted', devices: 1 });
      const synced = await device('sync', '--wait', '20', '--out', join(dir, 'received'));
      expect(synced.code, synced.stderr).toBe(0);
      expect(await readFile(join(dir, 'received', 'letter.txt'), 'utf8')).toBe(
        'signed in the token by the restored connector',
      );
    });
  },
);
