// `cb-connector recovery-key | backup | restore` as the bin will run them (backup-commands.ts on
// the bins' shared program): exit codes 0 / 2 (usage) / 3 (refused, with the stable code), what
// is printed, and that the recovery key's private half is never printed.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerBackupCommands, RECOVERY_PUBLIC_KEY_ENV } from '../../clients/connector/backup-commands.ts';
import { ConnectorHome } from '../../clients/connector/home.ts';
import { createProgram, runProgram } from '../../clients/lib/cli-program.ts';

let dir: string;
let home: string;

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the commands in this process, with stdout and stderr captured. */
async function cli(...argv: string[]): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const output = { out: (text: string) => (stdout += text), err: (text: string) => (stderr += text) };
  const program = createProgram('cb-connector', 'test', output).option('--home <dir>');
  registerBackupCommands(program, (options) => options.home ?? join(dir, 'default-home'));
  const writeOut = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string) => ((stdout += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((stderr += chunk), true)) as typeof process.stderr.write;
  try {
    const code = await runProgram(program, argv, output);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-backup-cli-'));
  home = join(dir, 'home');
  await new ConnectorHome(home).createKeys('st-backup-cli', false);
});

afterEach(() => {
  delete process.env[RECOVERY_PUBLIC_KEY_ENV];
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('recovery-key, backup and restore on the command line', () => {
  it('make a recovery key, back up with it, and restore with its private half', async () => {
    expect((await cli('recovery-key')).code).toBe(2);
    const keyFile = join(dir, 'recovery.key');
    const made = await cli('recovery-key', '--out', keyFile);
    expect(made.code, made.stderr).toBe(0);
    const publicKey = made.stdout.trim();
    expect(publicKey).toMatch(/^[A-Za-z0-9_-]{60}$/);
    const privateText = (await readFile(keyFile, 'utf8')).trim();
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect(made.stdout + made.stderr).not.toContain(privateText.split('.')[1]!);

    const again = await cli('recovery-key', '--out', keyFile);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain('RECOVERY_KEY_EXISTS');
    expect((await readFile(keyFile, 'utf8')).trim()).toBe(privateText);

    const backupFile = join(dir, 'home.cbbackup');
    expect((await cli('backup', '--home', home, '--out', backupFile)).code).toBe(2);
    process.env[RECOVERY_PUBLIC_KEY_ENV] = publicKey;
    const backedUp = await cli('backup', '--home', home, '--out', backupFile, '--json');
    expect(backedUp.code, backedUp.stderr).toBe(0);
    expect(JSON.parse(backedUp.stdout)).toMatchObject({ hospitalId: 'st-backup-cli', keysIncluded: true });
    const exists = await cli('backup', '--home', home, '--out', backupFile);
    expect(exists.code).toBe(3);
    expect(exists.stderr).toContain('BACKUP_EXISTS');

    const target = join(dir, 'restored');
    const restored = await cli('restore', backupFile, '--home', target, '--recovery-key-file', keyFile);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain("Restored st-backup-cli's connector as it was at");
    expect(restored.stdout + restored.stderr).not.toContain(privateText.split('.')[1]!);
    expect(await readFile(join(target, 'hospital-keys.json'), 'utf8')).toBe(
      await readFile(join(home, 'hospital-keys.json'), 'utf8'),
    );

    const occupied = await cli('restore', backupFile, '--home', target, '--recovery-key-file', keyFile);
    expect(occupied.code).toBe(3);
    expect(occupied.stderr).toContain('HOME_NOT_EMPTY');

    const otherKey = join(dir, 'other.key');
    expect((await cli('recovery-key', '--out', otherKey)).code).toBe(0);
    const wrong = await cli(
      'restore',
      backupFile,
      '--home',
      join(dir, 'r2'),
      '--recovery-key-file',
      otherKey,
    );
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain('BACKUP_WRONG_KEY');

    expect((await cli('restore', backupFile, '--home', join(dir, 'r3'))).code).toBe(2);
    const missing = await cli(
      'restore',
      join(dir, 'nope'),
      '--home',
      join(dir, 'r4'),
      '--recovery-key-file',
      keyFile,
    );
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('BACKUP_UNREADABLE');
  });
});
