// Backup and restore of the connector's home (clients/connector/backup.ts) on real files and
// real keys made at run time: what a backup carries and leaves out, that it is encrypted to the
// recovery key only, and that restore refuses a changed, cut or extended file, another recovery
// key and a directory that is not empty, with stable codes and without leaving anything behind.
import {
  appendFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backupHome,
  BACKUP_FORMAT,
  readBackupHeader,
  restoreHome,
  type BackupErrorCode,
} from '../../clients/connector/backup.ts';
import { ConnectorHome } from '../../clients/connector/home.ts';
import {
  createRecoveryKey,
  parseRecoveryKey,
  readRecoveryKeyFile,
  writeRecoveryKeyFile,
} from '../../clients/connector/recovery-key.ts';
import { HOSPITAL_KEYS_FORMAT } from '../../clients/connector/home.ts';
import { generateKeyPair } from '../../shared/core/crypto/index.ts';

const PATIENT = 'CANARY-backup-patient-4471';

let dir: string;
let home: string;
const recovery = createRecoveryKey();

async function expectCode(promise: Promise<unknown>, code: BackupErrorCode | string): Promise<Error> {
  const error = (await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  )) as (Error & { code?: string }) | undefined;
  expect(error, `expected ${code}`).toBeInstanceOf(Error);
  expect(error!.code).toBe(code);
  return error!;
}

async function listTree(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1))
    .sort();
}

let counter = 0;
const fresh = (name: string) => join(dir, `${name}-${++counter}`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-backup-unit-'));
  home = join(dir, 'home');
  const connector = new ConnectorHome(home);
  await connector.createKeys('st-backup-unit', false);
  await writeFile(join(home, 'connector.json'), '{"hospitalId":"st-backup-unit"}\n', { mode: 0o600 });
  await writeFile(
    join(home, 'journal.jsonl'),
    `${JSON.stringify({ uploadId: 'u1', patientNumber: PATIENT, status: 'sent' })}\n`,
    { mode: 0o600 },
  );
  await writeFile(join(home, 'enrolments.jsonl'), '{"kind":"invitation"}\n', { mode: 0o600 });
  await writeFile(join(home, 'witness.json'), '{"size":7}\n', { mode: 0o600 });
  await writeFile(join(home, 'console-staff.json'), '{"staff":[]}\n', { mode: 0o600 });
  // Left out on purpose: a spool of a seal in progress and the last invitation's QR secret.
  await mkdir(join(home, 'work', 'spool-abc'), { recursive: true });
  await writeFile(join(home, 'work', 'spool-abc', 'chunks.bin'), 'ciphertext in progress');
  await writeFile(join(home, 'invite.png'), 'QR secret');
  await writeFile(join(home, 'connector.json.123.tmp'), 'half-written');
  // A sealed upload waiting to be sent (kept, without its lock) and a seal still in progress.
  await mkdir(join(home, 'uploads', 'pendingUpload000000001'), { recursive: true, mode: 0o700 });
  await writeFile(join(home, 'uploads', 'pendingUpload000000001', 'chunks.bin'), 'sealed chunks', {
    mode: 0o600,
  });
  await writeFile(join(home, 'uploads', 'pendingUpload000000001', 'state.json'), '{"format":"pending"}\n', {
    mode: 0o600,
  });
  await writeFile(join(home, 'uploads', 'pendingUpload000000001', 'lock'), '1');
  await mkdir(join(home, 'uploads', 'sealInProgress00000002'), { recursive: true });
  await writeFile(join(home, 'uploads', 'sealInProgress00000002', 'chunks.bin'), 'half a seal');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('backupHome and restoreHome', () => {
  let backup: string;

  beforeAll(async () => {
    backup = join(dir, 'home.cbbackup');
    await backupHome(home, recovery.publicKey, backup);
  });

  it('restores every file of the home byte for byte, owner-only, and the restored keys open', async () => {
    const target = fresh('restored');
    const restored = await restoreHome(backup, recovery.privateText, target);
    expect(restored).toMatchObject({ hospitalId: 'st-backup-unit', custody: 'file' });
    const expected = [
      'connector.json',
      'console-staff.json',
      'enrolments.jsonl',
      'hospital-keys.json',
      'journal.jsonl',
      'uploads/pendingUpload000000001/chunks.bin',
      'uploads/pendingUpload000000001/state.json',
      'witness.json',
    ];
    expect(await listTree(target)).toEqual(expected);
    expect([...restored.files].sort()).toEqual(expected);
    for (const name of expected) {
      expect((await readFile(join(target, name))).equals(await readFile(join(home, name)))).toBe(true);
      expect((await stat(join(target, name))).mode & 0o777).toBe(0o600);
    }
    expect((await stat(target)).mode & 0o777).toBe(0o700);
    const original = await new ConnectorHome(home).identity();
    const reopened = await new ConnectorHome(target).identity();
    try {
      expect(reopened.publicKey.equals(original.publicKey)).toBe(true);
      expect(reopened.custody.pseudonymKey.hmac(new Uint8Array([1]))).toEqual(
        original.custody.pseudonymKey.hmac(new Uint8Array([1])),
      );
    } finally {
      original.custody.close();
      reopened.custody.close();
    }
  });

  it('leaves out spools, the QR secret and half-written files, and says so', async () => {
    const summary = await backupHome(home, recovery.publicKey, fresh('again.cbbackup'));
    expect(summary.excluded).toEqual(
      expect.arrayContaining([
        'work',
        'invite.png',
        'connector.json.123.tmp',
        'uploads/sealInProgress00000002',
      ]),
    );
    expect(summary.files).not.toContain('uploads/pendingUpload000000001/lock');
    expect(summary.files).not.toContain('invite.png');
    expect(summary.files.some((path) => path.startsWith('work'))).toBe(false);
    expect(summary.keysIncluded).toBe(true);
  });

  it('is written owner-only and create-only, with a readable header and nothing secret in the clear', async () => {
    expect((await stat(backup)).mode & 0o777).toBe(0o600);
    const before = await readFile(backup);
    await expectCode(backupHome(home, recovery.publicKey, backup), 'BACKUP_EXISTS');
    expect((await readFile(backup)).equals(before)).toBe(true);
    expect((await readdir(dir)).filter((name) => name.endsWith('.partial'))).toEqual([]);

    const header = await readBackupHeader(backup);
    expect(header).toMatchObject({ format: BACKUP_FORMAT, hospitalId: 'st-backup-unit', custody: 'file' });
    const keys = JSON.parse(await readFile(join(home, 'hospital-keys.json'), 'utf8')) as Record<
      string,
      string
    >;
    const text = before.toString('latin1');
    for (const secret of [keys.privateKey!, keys.masterSecret!, PATIENT, 'ciphertext in progress']) {
      expect(text).not.toContain(secret);
    }
  });

  it('refuses another recovery key before decrypting anything, and creates no home', async () => {
    const target = fresh('wrong-key');
    const error = await expectCode(
      restoreHome(backup, createRecoveryKey().privateText, target),
      'BACKUP_WRONG_KEY',
    );
    expect(error.message).not.toContain(recovery.privateText);
    await expect(stat(target)).rejects.toThrow();
  });

  it('refuses a directory that is not empty and leaves it as it was', async () => {
    const target = fresh('occupied');
    await mkdir(target);
    await writeFile(join(target, 'hospital-keys.json'), 'another connector');
    await expectCode(restoreHome(backup, recovery.privateText, target), 'HOME_NOT_EMPTY');
    expect(await readFile(join(target, 'hospital-keys.json'), 'utf8')).toBe('another connector');
    expect(await listTree(target)).toEqual(['hospital-keys.json']);
    const file = fresh('a-file');
    await writeFile(file, 'x');
    await expectCode(restoreHome(backup, recovery.privateText, file), 'HOME_NOT_EMPTY');
  });

  it('restores into an existing empty directory (a container volume) and makes it owner-only', async () => {
    const target = fresh('volume');
    await mkdir(target, { mode: 0o755 });
    await restoreHome(backup, parseRecoveryKey(recovery.privateText), target);
    expect((await stat(target)).mode & 0o777).toBe(0o700);
    expect(await listTree(target)).toContain('hospital-keys.json');
  });
});

describe('a changed backup', () => {
  let original: Buffer;
  let bodyStart: number;

  beforeAll(async () => {
    // Small chunks, so that cuts and swaps can fall on chunk boundaries.
    const path = join(dir, 'small-chunks.cbbackup');
    await backupHome(home, recovery.publicKey, path, { chunkSize: 64 });
    original = await readFile(path);
    const headerLength = original.readUInt32BE(5);
    const wrappedLength = original.readUInt16BE(9 + headerLength);
    bodyStart = 9 + headerLength + 2 + wrappedLength;
    expect(original.length - bodyStart).toBeGreaterThan(4 * (64 + 45));
  });

  async function restoreChanged(bytes: Uint8Array): Promise<{ code?: string; target: string }> {
    const path = fresh('changed.cbbackup');
    await writeFile(path, bytes);
    const target = fresh('changed-target');
    const error = await restoreHome(path, recovery.privateText, target).then(
      () => undefined,
      (caught: unknown) => caught as { code?: string },
    );
    return { code: error?.code, target };
  }

  it('restores when nothing was changed (so the refusals below are about the change)', async () => {
    const { code, target } = await restoreChanged(original);
    expect(code).toBeUndefined();
    expect(await listTree(target)).toContain('journal.jsonl');
  });

  const chunk = 64 + 45;
  const cases: [string, (bytes: Buffer) => Uint8Array][] = [
    ['a flipped body byte', (b) => flip(b, bodyStart + chunk + 10)],
    ['a flipped byte in the last chunk', (b) => flip(b, b.length - 1)],
    ['a flipped wrapped-key byte', (b) => flip(b, bodyStart - 5)],
    [
      'a changed header (hospital id)',
      (b) => Buffer.from(b.toString('latin1').replace('st-backup-unit', 'st-backup-unia'), 'latin1'),
    ],
    ['the last chunk cut off', (b) => b.subarray(0, b.length - ((b.length - bodyStart) % chunk || chunk))],
    ['a cut in the middle of a chunk', (b) => b.subarray(0, bodyStart + chunk + 20)],
    ['bytes appended', (b) => Buffer.concat([b, Buffer.from('more')])],
    ['a whole chunk appended again', (b) => Buffer.concat([b, b.subarray(bodyStart, bodyStart + chunk)])],
    ['two chunks swapped', (b) => swap(b, bodyStart, bodyStart + chunk, chunk)],
    ['no body at all', (b) => b.subarray(0, bodyStart)],
    ['not a backup', () => Buffer.from('{"hello":"world"}')],
    ['an empty file', () => new Uint8Array(0)],
  ];

  for (const [what, change] of cases) {
    it(`is refused as BACKUP_CORRUPT: ${what}, and leaves no file behind`, async () => {
      const { code, target } = await restoreChanged(change(original));
      expect(code).toBe('BACKUP_CORRUPT');
      expect(await listTree(target)).toEqual([]);
      expect(await readdir(target).catch(() => [])).toEqual([]);
    });
  }

  it('says so when the format version is one it does not read', async () => {
    const bytes = Buffer.from(original);
    bytes[4] = 2;
    expect((await restoreChanged(bytes)).code).toBe('BACKUP_VERSION_UNSUPPORTED');
  });

  it('says so when the file cannot be read', async () => {
    await expectCode(
      restoreHome(join(dir, 'missing'), recovery.privateText, fresh('t')),
      'BACKUP_UNREADABLE',
    );
  });
});

describe('what backupHome refuses or records', () => {
  it('refuses a directory without hospital keys', async () => {
    const empty = fresh('not-a-home');
    await mkdir(empty);
    await writeFile(join(empty, 'notes.txt'), 'x');
    await expectCode(backupHome(empty, recovery.publicKey, fresh('x.cbbackup')), 'HOME_NOT_CONNECTOR');
    await expectCode(
      backupHome(fresh('missing'), recovery.publicKey, fresh('x.cbbackup')),
      'HOME_NOT_CONNECTOR',
    );
  });

  it('refuses a symbolic link in the home instead of following or skipping it', async () => {
    const linked = fresh('linked-home');
    await new ConnectorHome(linked).createKeys('st-backup-link', false);
    await symlink('/etc/hostname', join(linked, 'journal.jsonl'));
    const out = fresh('x.cbbackup');
    await expectCode(backupHome(linked, recovery.publicKey, out), 'HOME_UNSUPPORTED_ENTRY');
    await expect(stat(out)).rejects.toThrow();
  });

  it('refuses to write the backup inside the home', async () => {
    await expect(backupHome(home, recovery.publicKey, join(home, 'self.cbbackup'))).rejects.toThrow(
      /outside the connector home/,
    );
  });

  it('refuses a recovery public key that is not one', async () => {
    await expectCode(backupHome(home, 'not-a-key', fresh('x.cbbackup')), 'RECOVERY_KEY_INVALID');
  });

  it('archives journals up to their last complete line, as a running connector leaves them', async () => {
    const running = fresh('running-home');
    await new ConnectorHome(running).createKeys('st-backup-run', false);
    await writeFile(join(running, 'enrolments.jsonl'), '{"line":1}\n{"line":2}\n{"line":', { mode: 0o600 });
    const out = fresh('running.cbbackup');
    await backupHome(running, recovery.publicKey, out);
    const target = fresh('running-restored');
    await restoreHome(out, recovery.privateText, target);
    expect(await readFile(join(target, 'enrolments.jsonl'), 'utf8')).toBe('{"line":1}\n{"line":2}\n');
    await appendFile(join(running, 'enrolments.jsonl'), '3}\n');
  });

  it('for a PKCS#11 custody, holds only the token reference and says the keys are not in it', async () => {
    const hsmHome = fresh('hsm-home');
    await mkdir(hsmHome, { mode: 0o700 });
    await writeFile(
      join(hsmHome, 'hospital-keys.json'),
      JSON.stringify({
        format: HOSPITAL_KEYS_FORMAT,
        hospitalId: 'st-backup-hsm',
        publicKey: generateKeyPair().publicKey.toBase64Url(),
        custody: 'pkcs11',
        module: '/usr/lib/softhsm/libsofthsm2.so',
        tokenLabel: 'cb-hospital',
      }),
      { mode: 0o600 },
    );
    const out = fresh('hsm.cbbackup');
    const summary = await backupHome(hsmHome, recovery.publicKey, out);
    expect(summary).toMatchObject({ custody: 'pkcs11', keysIncluded: false });
    const restored = await restoreHome(out, recovery.privateText, fresh('hsm-restored'));
    expect(restored.token).toEqual({ module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'cb-hospital' });
  });
});

describe('the recovery key', () => {
  it('is one printable line that round-trips, and a mistyped one is refused without echoing it', () => {
    const key = createRecoveryKey();
    expect(key.privateText).toMatch(/^cb-recovery-key-v1\.[A-Za-z0-9_-]{60}\.[A-Za-z0-9_-]{60}$/);
    expect(parseRecoveryKey(`  ${key.privateText}\n`).publicKey.toBase64Url()).toBe(key.publicKey);
    const [prefix, secret, pub] = key.privateText.split('.') as [string, string, string];
    const typo = `${prefix}.${secret.slice(0, 30)}${secret[30] === 'A' ? 'B' : 'A'}${secret.slice(31)}.${pub}`;
    let caught: (Error & { code?: string }) | undefined;
    try {
      parseRecoveryKey(typo);
    } catch (error) {
      caught = error as Error & { code?: string };
    }
    expect(caught?.code).toBe('RECOVERY_KEY_INVALID');
    expect(caught?.message).not.toContain(secret.slice(0, 20));
    // Another key's public half with this private half: the pair does not hold.
    expect(() => parseRecoveryKey(`${prefix}.${secret}.${createRecoveryKey().publicKey}`)).toThrow(
      expect.objectContaining({ code: 'RECOVERY_KEY_INVALID' }),
    );
  });

  it('is written once, owner-only, and never over an existing file', async () => {
    const key = createRecoveryKey();
    const path = fresh('recovery.key');
    await writeRecoveryKeyFile(path, key);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readRecoveryKeyFile(path)).publicKey.toBase64Url()).toBe(key.publicKey);
    await expectCode(writeRecoveryKeyFile(path, createRecoveryKey()), 'RECOVERY_KEY_EXISTS');
    expect((await readRecoveryKeyFile(path)).publicKey.toBase64Url()).toBe(key.publicKey);
    await expectCode(readRecoveryKeyFile(fresh('none')), 'RECOVERY_KEY_UNREADABLE');
  });
});

function flip(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

function swap(bytes: Buffer, a: number, b: number, length: number): Buffer {
  const copy = Buffer.from(bytes);
  bytes.copy(copy, a, b, b + length);
  bytes.copy(copy, b, a, a + length);
  return copy;
}
