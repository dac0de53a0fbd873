// `cb-connector recovery-key`, `backup` and `restore` (backup.ts, recovery-key.ts), declared here
// so that the bin only has to call registerBackupCommands(program, homeOf). None of them opens
// the key custody: a backup copies the home as files, and a restore only writes them.
import type { Command } from 'commander';
import { EXIT, UsageError } from '../lib/cli.ts';
import { onRun, printJson } from '../lib/cli-program.ts';
import { backupHome, restoreHome } from './backup.ts';
import { createRecoveryKey, readRecoveryKeyFile, writeRecoveryKeyFile } from './recovery-key.ts';

/** Where the recovery public key comes from when --recovery-key is not given. */
export const RECOVERY_PUBLIC_KEY_ENV = 'CB_RECOVERY_PUBLIC_KEY';

// Written to the streams directly (not console.*), so that what the bin prints is exactly this.
const say = (line: string) => process.stdout.write(`${line}\n`);
const note = (line: string) => process.stderr.write(`${line}\n`);

interface HomeOption {
  readonly home?: string;
}

interface RecoveryKeyOptions extends HomeOption {
  readonly out?: string;
  readonly json?: boolean;
}

interface BackupOptions extends HomeOption {
  readonly out?: string;
  readonly recoveryKey?: string;
  readonly json?: boolean;
}

interface RestoreOptions extends HomeOption {
  readonly recoveryKeyFile?: string;
  readonly json?: boolean;
}

/**
 * Adds the three commands to the connector's program. `homeOf` resolves the connector home
 * from the global options, as the bin's other commands do (--home, $CB_CONNECTOR_HOME, …).
 */
export function registerBackupCommands(program: Command, homeOf: (options: HomeOption) => string): void {
  onRun<RecoveryKeyOptions>(
    program
      .command('recovery-key')
      .summary('Make the recovery key backups are encrypted to (once)')
      .description(
        'Make the hospital’s recovery key: the private half is written once to --out (owner-only, never overwritten) to be printed and kept offline; the public half, printed here, is what `backup` encrypts to. Without the private half no backup can be restored.',
      )
      .option('--out <file>', 'where to write the private half (required; on a removable medium)')
      .option('--json', 'print {publicKey, privateKeyFile}'),
    async (options) => {
      if (!options.out) throw new UsageError('recovery-key needs --out FILE for the private half');
      const key = createRecoveryKey();
      await writeRecoveryKeyFile(options.out, key);
      if (options.json) printJson({ publicKey: key.publicKey, privateKeyFile: options.out });
      else {
        note(
          `The private half is in ${options.out}: print it, keep it offline (two copies, two places), and remove it from this machine.`,
        );
        note(`Give the connector the public half (--recovery-key or $${RECOVERY_PUBLIC_KEY_ENV}):`);
        say(key.publicKey);
      }
      return EXIT.OK;
    },
  );

  onRun<BackupOptions>(
    program
      .command('backup')
      .summary('Back the connector home up, encrypted to the recovery key')
      .description(
        'Write the connector home (keys unless in an HSM, configuration, journals, witness state, pending uploads, staff accounts) to one file, encrypted to the recovery key and readable only with its private half. Create-only and owner-only; safe while the connector runs.',
      )
      .option('--out <file>', 'the backup file to create (required; outside the home)')
      .option('--recovery-key <public-key>', `the recovery public key (default $${RECOVERY_PUBLIC_KEY_ENV})`)
      .option(
        '--json',
        'print {backupId, createdAt, hospitalId, custody, keysIncluded, files, excluded, bytes}',
      ),
    async (options) => {
      if (!options.out) throw new UsageError('backup needs --out FILE');
      const recoveryKey = options.recoveryKey ?? process.env[RECOVERY_PUBLIC_KEY_ENV];
      if (!recoveryKey) {
        throw new UsageError(
          `backup needs --recovery-key KEY or $${RECOVERY_PUBLIC_KEY_ENV} (see \`recovery-key\`)`,
        );
      }
      const summary = await backupHome(homeOf(options), recoveryKey, options.out);
      if (options.json) {
        printJson(summary);
        return EXIT.OK;
      }
      say(
        `Backed up ${summary.hospitalId}'s connector (${summary.files.length} files, ${summary.bytes} bytes) to ${options.out}, backup ${summary.backupId}.`,
      );
      if (!summary.keysIncluded) {
        say(
          'The hospital keys stay in the HSM: this backup names the token only; back the token up with the HSM’s own tools.',
        );
      }
      return EXIT.OK;
    },
  );

  onRun<RestoreOptions>(
    program
      .command('restore')
      .summary('Restore a backup into a new, empty connector home')
      .description(
        'Restore a backup into --home, which must be new or empty. Refuses another recovery key (BACKUP_WRONG_KEY), a changed backup (BACKUP_CORRUPT) and a non-empty home (HOME_NOT_EMPTY). Stop the old connector for good first.',
      )
      .argument('<backup-file>', 'from `backup`')
      .option('--recovery-key-file <file>', 'the private half from `recovery-key` (required)')
      .option('--json', 'print {backupId, createdAt, hospitalId, custody, token?, files}'),
    async (options, [backupFile]) => {
      if (!options.recoveryKeyFile) throw new UsageError('restore needs --recovery-key-file FILE');
      const recovery = await readRecoveryKeyFile(options.recoveryKeyFile);
      const home = homeOf(options);
      const restored = await restoreHome(backupFile!, recovery, home);
      if (options.json) {
        printJson(restored);
        return EXIT.OK;
      }
      say(
        `Restored ${restored.hospitalId}'s connector as it was at ${restored.createdAt} into ${home} (${restored.files.length} files).`,
      );
      note(
        'Invitations, revocations and sends after that time are not in it: see docs/OPERATIONS.md ("Restore").',
      );
      if (restored.token) {
        note(
          `The keys are in the PKCS#11 token ${restored.token.tokenLabel} (${restored.token.module}): make it reachable and set $CB_HSM_PIN.`,
        );
      }
      return EXIT.OK;
    },
  );
}
