#!/usr/bin/env -S node --max-semi-space-size=2 --max-old-space-size=96 --liftoff-only --no-opt --no-maglev --expose-gc
// cb-connector: runs inside the hospital. Parses the command line, calls clients/connector/ and
// prints; nothing else. A new command is one `program.command(...)` block below, its handler
// returning the exit code (withConnector opens the configured connector for it). What only some
// commands use (the QR code, the console's server, the witness, the drop folder) is imported in
// their handlers: every module loaded stays in memory, and `send` is the memory-bound command
// (docs/PERFORMANCE.md, connector memory).
import { chmod, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { createBlobStore } from '../shared/adapters/blob-store.ts';
import { createStorage } from '../shared/adapters/storage-client.ts';
import {
  contentClassSchema,
  deriveOperatorRef,
  derivePatientRef,
  deviceIdSchema,
  revokeResponseSchema,
  recordIdSchema,
} from '../shared/core/protocol/index.ts';
import { checkedDevices, sendFile } from './connector/deliver.ts';
import {
  ConnectorHome,
  onboardingSchema,
  staffIdFrom,
  type Connector,
  type KeyPlacement,
} from './connector/home.ts';
import { progressBar } from './connector/progress.ts';
import { refreshJournal, waitForReceipt } from './connector/receipts.ts';
import { registerBackupCommands } from './connector/backup-commands.ts';
import { addConsoleCommands } from './connector/console/commands.ts';
import type { WatchEvent } from './connector/watch.ts';
import { ApiError } from './lib/api-client.ts';
import { describeFailure, EXIT, UsageError } from './lib/cli.ts';
import { createProgram, onRun, oneOf, printJson, runBin, wholeNumber } from './lib/cli-program.ts';
import { loadClientEnvironment, requireEnv } from './lib/environment.ts';
import { assertStackReachable } from './lib/reachability.ts';

type ContentClass = 'document' | 'fhir' | 'imaging' | 'other';
const CONTENT_CLASSES = contentClassSchema.options as readonly ContentClass[];

/** Options every command takes, before or after its name. */
interface Globals {
  readonly home?: string;
  readonly operator?: string;
  readonly env?: string;
}

const program = createProgram('cb-connector', 'Encrypt and send records from inside the hospital.')
  .option(
    '--home <dir>',
    'connector state (default $CB_CONNECTOR_HOME or ./.connector): the private key, the master secret and journals with patient numbers; keep it inside the hospital',
  )
  .option(
    '--operator <id>',
    'the member of staff acting (default $CB_OPERATOR, then the account name); the cloud sees only the hospital’s pseudonym of it',
  )
  .option(
    '--env <file>',
    'the stack environment (default $CB_STACK_ENV, then .data/stack.env from `npm start`)',
  )
  .addHelpText(
    'after',
    `
Ids are base64url and may begin with '-': write such an id after '--' (\`recall -- <id>\`), or a
value as --opt=value.

Exit codes: 0 done, 1 failure (a service unreachable: SERVICE_UNREACHABLE, with its URL),
2 usage, 3 refused or rejected (a stable code is printed).`,
  );

function connectorHome(options: Globals): ConnectorHome {
  return new ConnectorHome(options.home ?? process.env.CB_CONNECTOR_HOME ?? '.connector');
}

/** Runs `act` with the configured connector open; its key custody is closed whatever happens. */
async function withConnector(
  options: Globals,
  act: (connector: Connector) => Promise<number>,
): Promise<number> {
  const connector = await connectorHome(options).open(staffIdFrom(options.operator));
  try {
    return await act(connector);
  } finally {
    connector.custody.close();
  }
}

/** The cloud's storage (uploads, receipts), reached within seconds or refused with its URL. */
async function blobStore(options: Globals): Promise<ReturnType<typeof createBlobStore>> {
  const environment = loadClientEnvironment(options.env);
  await assertStackReachable(environment.env, ['STORAGE_EMULATOR_HOST']);
  return createBlobStore(createStorage(requireEnv(environment, 'GCLOUD_PROJECT'), environment.env));
}

// ---- Onboarding ----

interface KeysOptions extends Globals {
  readonly hospital?: string;
  readonly force?: boolean;
  readonly custody: 'file' | 'pkcs11';
  readonly module?: string;
  readonly tokenLabel?: string;
  readonly json?: boolean;
}
onRun<KeysOptions>(
  program
    .command('keys')
    .summary('Generate the hospital’s keys (files or PKCS#11); prints the public key')
    .description(
      'Generate the hospital key pair and master secret (owner-only files in --home), or create them inside a PKCS#11 token (PIN from $CB_HSM_PIN). Prints the public key for the operator.',
    )
    .option('--hospital <id>', 'the hospital id the operator registers (required)')
    .option('--force', 'replace existing keys')
    .option('--custody <kind>', 'file or pkcs11', oneOf(['file', 'pkcs11'] as const), 'file')
    .option('--module <path>', 'the PKCS#11 module (with --custody pkcs11)')
    .option('--token-label <label>', 'the token (with --custody pkcs11)')
    .option('--json', 'print {hospitalId, publicKey, custody}'),
  async (options) => {
    if (!options.hospital) throw new UsageError('keys needs --hospital ID');
    let placement: KeyPlacement = { custody: 'file' };
    if (options.custody === 'pkcs11') {
      if (!options.module || !options.tokenLabel) {
        throw new UsageError('--custody pkcs11 needs --module PATH and --token-label LABEL');
      }
      placement = { custody: 'pkcs11', module: options.module, tokenLabel: options.tokenLabel };
    }
    const home = connectorHome(options);
    const publicKey = (
      await home.createKeys(options.hospital, options.force === true, placement)
    ).toBase64Url();
    console.error(
      `Keys ${placement.custody === 'file' ? `written to ${home.dir}` : 'created in the token'}. Give the operator this public key:`,
    );
    if (options.json) printJson({ hospitalId: options.hospital, publicKey, custody: placement.custody });
    else console.log(publicKey);
    return EXIT.OK;
  },
);

interface ConfigureOptions extends Globals {
  readonly from?: string;
  readonly json?: boolean;
}
onRun<ConfigureOptions>(
  program
    .command('configure')
    .summary('Store the configuration from `cb-admin register-hospital`')
    .description('Store the configuration from `cb-admin register-hospital --json` (or its --out file).')
    .option('--from <file>', 'the onboarding file (required)')
    .option('--json', 'print {hospitalId, apiBase}'),
  async (options) => {
    if (!options.from) {
      throw new UsageError('configure needs --from FILE (from `cb-admin register-hospital --json`)');
    }
    let text: string;
    try {
      text = await readFile(options.from, 'utf8');
    } catch {
      throw new UsageError(`cannot read ${options.from}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new UsageError(
        `${options.from} is not JSON (write it with \`cb-admin register-hospital --out\`)`,
      );
    }
    const parsed = onboardingSchema.safeParse(json);
    if (!parsed.success) throw new UsageError(`${options.from} is not a connector configuration`);
    await connectorHome(options).configure(parsed.data);
    if (options.json) printJson({ hospitalId: parsed.data.hospitalId, apiBase: parsed.data.apiBase });
    else console.log(`Configured ${parsed.data.hospitalId} (API ${parsed.data.apiBase}).`);
    return EXIT.OK;
  },
);

// ---- Patients and their devices ----

interface InviteOptions extends Globals {
  readonly out?: string;
  readonly expiresMinutes: string;
  readonly attempts: string;
  readonly json?: boolean;
}
onRun<InviteOptions>(
  program
    .command('invite')
    .summary('Invite a patient: a QR code (PNG, and on a terminal)')
    .description(
      'Invite a patient. The QR code carries a secret: it is written as an owner-only PNG (default <home>/invite.png) and drawn only on a terminal, never into a pipe or a log.',
    )
    .argument('<patient-number>', 'the hospital’s patient number (stays in the hospital)')
    .option('--out <file>', 'where to write the QR code PNG (owner-only; delete it once scanned)')
    .option('--expires-minutes <minutes>', 'how long the invitation is valid', '60')
    .option('--attempts <n>', 'wrong tries before the invitation locks', '3')
    .option('--json', 'print {invitationId, expiresAt, qrPng} (and draw no QR code)'),
  async (options, [patientNumber]) =>
    withConnector(options, async (connector) => {
      const { invitePatient } = await import('./connector/invite.ts');
      const { qrForTerminal, writeQrPng } = await import('./lib/qr.ts');
      const invitation = await invitePatient(connector, {
        patientNumber: patientNumber!,
        expiresMinutes: Number(options.expiresMinutes),
        attempts: Number(options.attempts),
        now: new Date(),
      });
      const png = options.out ?? join(connector.home.dir, 'invite.png');
      await writeQrPng(invitation.qrText, png);
      await chmod(png, 0o600); // writeFile's mode applies only to a file it creates
      if (options.json) {
        printJson({ invitationId: invitation.invitationId, expiresAt: invitation.expiresAt, qrPng: png });
        return EXIT.OK;
      }
      if (process.stdout.isTTY) console.log(await qrForTerminal(invitation.qrText));
      else console.error('The QR code is drawn only on a terminal (it carries a secret); show the PNG.');
      console.log(`Invitation ${invitation.invitationId}, valid until ${invitation.expiresAt}.`);
      console.log(`QR code written to ${png} (owner-only; delete it once the patient has scanned it).`);
      return EXIT.OK;
    }),
);

interface DevicesOptions extends Globals {
  readonly patient?: string;
  readonly json?: boolean;
}
onRun<DevicesOptions>(
  program
    .command('devices')
    .summary('The patient’s devices, each verified or refused by this connector')
    .description(
      'The patient’s devices, each with whether this connector accepts it or why not: a paired device by its certificate and binding proof, a linked one by its certificate, its signed link and a linking device this connector accepts. Exit 3 if any is refused.',
    )
    .option('--patient <number>', 'the patient number (required)')
    .option('--json', 'print {devices: [{deviceId, verified, pairedAt | code, linkedBy?}]}'),
  async (options) => {
    if (!options.patient) throw new UsageError('devices needs --patient NUMBER');
    const patientNumber = options.patient;
    return withConnector(options, async (connector) => {
      const patientRef = derivePatientRef(connector.custody.pseudonymKey, patientNumber);
      const { accepted, refused } = await checkedDevices(connector, patientRef, new Date());
      if (options.json) {
        printJson({
          devices: [
            ...accepted.map((device) => ({
              deviceId: device.deviceId,
              verified: true,
              pairedAt: device.certificate.issuedAt,
              ...(device.linkedBy === undefined ? {} : { linkedBy: device.linkedBy }),
            })),
            ...refused.map((device) => ({
              deviceId: device.deviceId,
              verified: false,
              code: device.code,
              ...(device.linkedBy === undefined ? {} : { linkedBy: device.linkedBy }),
            })),
          ],
        });
      } else {
        if (accepted.length + refused.length === 0) console.log('The patient has no paired device.');
        // A linked device says which device linked it: the operator sees the chain it trusts.
        const joined = (linkedBy: string | undefined) =>
          linkedBy === undefined ? '' : `  linked by ${linkedBy}`;
        for (const device of accepted) {
          console.log(
            `${device.deviceId}  verified  paired ${device.certificate.issuedAt}${joined(device.linkedBy)}`,
          );
        }
        for (const device of refused)
          console.log(`${device.deviceId}  REFUSED  ${device.code}${joined(device.linkedBy)}`);
      }
      return refused.length > 0 ? EXIT.REFUSED : EXIT.OK;
    });
  },
);

interface RevokeOptions extends Globals {
  readonly json?: boolean;
}
onRun<RevokeOptions>(
  program
    .command('revoke')
    .summary('Revoke a patient’s device')
    .description(
      'Revoke a patient’s device: this connector never encrypts for it again, whatever the cloud later says, and the cloud refuses it.',
    )
    .argument('<device-id>', 'from `devices` (after --, as it may begin with -)')
    .option('--json', 'print {deviceId, revokedAt?, cloud: "revoked" | "not-listed"}'),
  async (options, [deviceId]) => {
    if (!deviceIdSchema.safeParse(deviceId).success) {
      throw new UsageError('revoke takes one DEVICE_ID (see `devices`)');
    }
    return withConnector(options, async (connector) => {
      // Journalled first: even if the cloud never hears of it, or later lists the device again,
      // this connector encrypts nothing more for it.
      await connector.enrolments.recordRevocation(deviceId!, 'connector', new Date());
      try {
        const revoked = await connector.api.call(
          {
            method: 'POST',
            target: `/pairing/v1/devices/${deviceId}/revoke`,
            json: { operatorRef: connector.operator.operatorRef },
          },
          revokeResponseSchema,
        );
        if (options.json) printJson({ deviceId, revokedAt: revoked.revokedAt, cloud: 'revoked' });
        else console.log(`Revoked ${deviceId} at ${revoked.revokedAt}.`);
      } catch (error) {
        // Already revoked in the cloud (or never active there): the local revocation stands.
        if (!(error instanceof ApiError && error.code === 'NOT_FOUND')) throw error;
        if (options.json) printJson({ deviceId, cloud: 'not-listed' });
        else console.log(`Revoked ${deviceId} here; the cloud lists no such active device.`);
      }
      return EXIT.OK;
    });
  },
);

// ---- Records ----

interface SendOptions extends Globals {
  readonly patient?: string;
  readonly class: ContentClass;
  readonly title?: string;
  readonly mediaType?: string;
  readonly expiresDays: string;
  readonly wait?: boolean;
  readonly timeout: number;
  readonly progress?: boolean;
  readonly json?: boolean;
  readonly quiet?: boolean;
}

/** The options `send` and `resend` share. */
function sendOptions(command: Command): Command {
  return command
    .option('--expires-days <days>', 'the record expires after this many days', '90')
    .option('--wait', 'wait for ingest’s signed receipt of each upload')
    .option('--timeout <seconds>', 'how long --wait waits per upload', wholeNumber(0, 86_400), 60)
    .option('--progress', 'rate and time left on stderr (on by default on a terminal)')
    .option('--json', 'print {sent: [{file, uploadId, recordId, devices, skipped, status?}]}')
    .option('-q, --quiet', 'print only each record id (what `recall` takes), one per line');
}

onRun<SendOptions>(
  sendOptions(
    program
      .command('send')
      .summary('Encrypt each file for the patient’s verified devices and upload it')
      .description(
        'Encrypt each file for the patient’s verified devices and upload it. Prints per file the upload id, the record id (what `recall` takes) and, with --wait, the receipt.',
      )
      .argument('<file...>', 'the files to send')
      .option('--patient <number>', 'the patient number (required)')
      .option('--class <class>', CONTENT_CLASSES.join(', '), oneOf(CONTENT_CLASSES), 'document')
      .option('--title <title>', 'shown on the phone')
      .option('--media-type <type>', 'default: from the extension and --class'),
  ),
  async (options, files) => {
    if (!options.patient) throw new UsageError('send needs --patient NUMBER');
    const patientNumber = options.patient;
    return withConnector(options, async (connector) =>
      send(connector, await blobStore(options), files, patientNumber, options.class, options),
    );
  },
);

onRun<SendOptions>(
  sendOptions(
    program
      .command('resend')
      .summary('Send everything sent to a patient again, to its current devices')
      .description(
        'Send every file sent to that patient again, to its current devices (new uploads, new keys; e.g. after a new phone).',
      )
      .option('--patient <number>', 'the patient number (required)'),
  ),
  async (options) => {
    if (!options.patient) throw new UsageError('resend needs --patient NUMBER');
    const patientNumber = options.patient;
    const entries = (await connectorHome(options).journal()).filter(
      (entry) => entry.patientNumber === patientNumber,
    );
    if (entries.length === 0) throw new UsageError('nothing was sent to that patient from this connector');
    const files = [...new Set(entries.map((entry) => entry.file))];
    return withConnector(options, async (connector) =>
      send(connector, await blobStore(options), files, patientNumber, entries[0]!.contentClass, options),
    );
  },
);

async function send(
  connector: Connector,
  blobs: ReturnType<typeof createBlobStore>,
  files: readonly string[],
  patientNumber: string,
  contentClass: ContentClass,
  options: SendOptions,
): Promise<number> {
  if (options.json && options.quiet) throw new UsageError('--json and --quiet exclude each other');
  let refused = 0;
  const report: Record<string, unknown>[] = [];
  // Without --json or --quiet, lines are printed as each file goes, so a long batch shows its way.
  const human = !options.json && !options.quiet;
  for (const file of files) {
    const { entry, devices } = await sendFile(connector, blobs, {
      file,
      patientNumber,
      contentClass,
      ...(options.mediaType ? { mediaType: options.mediaType } : {}),
      ...(options.title ? { title: options.title } : {}),
      expiresDays: Number(options.expiresDays),
      now: new Date(),
      onProgress: progressBar(options.progress || process.stderr.isTTY === true),
    });
    for (const skipped of devices.refused) {
      console.error(`skipped device ${skipped.deviceId}: ${skipped.code}`);
    }
    if (human) {
      console.log(
        `${entry.uploadId}  sent  ${file}  (for ${devices.accepted.length} device(s))  record ${entry.recordId}`,
      );
    }
    const item: Record<string, unknown> = {
      file,
      uploadId: entry.uploadId,
      recordId: entry.recordId,
      devices: devices.accepted.length,
      skipped: devices.refused.map(({ deviceId, code }) => ({ deviceId, code })),
      status: 'sent',
    };
    if (options.wait) {
      const status = await waitForReceipt(connector, blobs, entry.uploadId, options.timeout * 1000);
      if (status.state === 'accepted' || status.state === 'rejected') {
        await connector.home.record({
          ...entry,
          status: status.state,
          ...(status.state === 'rejected' ? { errorCode: status.errorCode } : {}),
        });
      }
      const code = status.state === 'rejected' ? status.errorCode : undefined;
      if (human) console.log(`${entry.uploadId}  ${status.state}${code ? `  ${code}` : ''}`);
      item.status = status.state;
      if (code) item.errorCode = code;
      if (status.state !== 'accepted') refused++;
    }
    if (options.quiet) console.log(entry.recordId);
    report.push(item);
  }
  if (options.json) printJson({ sent: report });
  return refused > 0 ? EXIT.REFUSED : EXIT.OK;
}

interface ReceiptsOptions extends Globals {
  readonly upload?: string;
  readonly wait?: boolean;
  readonly timeout: number;
  readonly json?: boolean;
}
onRun<ReceiptsOptions>(
  program
    .command('receipts')
    .summary('Ingest’s signed receipts, with each record id')
    .description(
      'Ingest’s signed receipts, with each record id: upload id, state, record id (what `recall` takes), file. Exit 3 if any was rejected or forged.',
    )
    .option('--upload <id>', 'one upload only')
    .option('--wait', 'with --upload: wait for its receipt')
    .option('--timeout <seconds>', 'how long --wait waits', wholeNumber(0, 86_400), 60)
    .option('--json', 'print {uploads: [{uploadId, recordId, status, errorCode?, file, forged}]}'),
  async (options) =>
    withConnector(options, async (connector) => {
      const store = await blobStore(options);
      if (options.upload) {
        const uploadId = options.upload;
        const status = await waitForReceipt(
          connector,
          store,
          uploadId,
          options.wait ? options.timeout * 1000 : 0,
        );
        const entry = (await connector.home.journal()).find((item) => item.uploadId === uploadId);
        const code = status.state === 'rejected' ? status.errorCode : undefined;
        if (options.json) {
          printJson({
            uploadId,
            ...(entry ? { recordId: entry.recordId } : {}),
            status: status.state,
            ...(code ? { errorCode: code } : {}),
          });
        } else {
          console.log(
            `${uploadId}  ${status.state}${code ? `  ${code}` : ''}${entry ? `  record ${entry.recordId}` : ''}`,
          );
        }
        if (status.state === 'accepted') return EXIT.OK;
        return status.state === 'pending' ? EXIT.FAILURE : EXIT.REFUSED;
      }
      const journal = await refreshJournal(connector, store);
      if (options.json) {
        printJson({
          uploads: journal.map(({ entry, forged }) => ({
            uploadId: entry.uploadId,
            recordId: entry.recordId,
            status: entry.status,
            ...(entry.errorCode ? { errorCode: entry.errorCode } : {}),
            file: entry.file,
            forged,
          })),
        });
      } else {
        if (journal.length === 0) console.log('Nothing has been sent from this connector.');
        for (const { entry, forged } of journal) {
          const state = forged ? 'FORGED receipt (ignored)' : entry.status;
          console.log(
            `${entry.uploadId}  ${state}${entry.errorCode ? `  ${entry.errorCode}` : ''}  record ${entry.recordId}  ${entry.file}`,
          );
        }
      }
      return journal.some((item) => item.entry.status === 'rejected' || item.forged) ? EXIT.REFUSED : EXIT.OK;
    }),
);

interface RecallOptions extends Globals {
  readonly json?: boolean;
}
onRun<RecallOptions>(
  program
    .command('recall')
    .summary('Take back a record this hospital sent')
    .description(
      'Take back a record this hospital sent: its container and metadata are deleted, and the signed receipt is checked and printed. A device that already downloaded it keeps its copy.',
    )
    .argument('<record-id>', 'from `send`, `receipts` or `watch` (after --, as it may begin with -)')
    .option('--json', 'print {recordId, finishedAt, receiptVerified}'),
  async (options, [recordId]) => {
    if (!recordIdSchema.safeParse(recordId).success) {
      throw new UsageError('recall takes one RECORD_ID (see `receipts`)');
    }
    return withConnector(options, async (connector) => {
      const { recallRecord } = await import('./connector/recall.ts');
      const { finishedAt } = await recallRecord(connector, recordId!);
      if (options.json) printJson({ recordId, finishedAt, receiptVerified: true });
      else console.log(`Recalled ${recordId} at ${finishedAt} (receipt verified with the pairing key).`);
      return EXIT.OK;
    });
  },
);

// ---- Staff, the drop folder, the audit log ----

interface OperatorRefOptions extends Globals {
  readonly json?: boolean;
}
onRun<OperatorRefOptions>(
  program
    .command('operator-ref')
    .summary('The pseudonym the cloud’s audit trail knows a member of staff by')
    .description(
      'The pseudonym under which a member of staff’s actions reach the cloud’s audit trail (default: the acting one; see --operator).',
    )
    .argument('[staff-id]', 'a member of staff as the hospital knows them')
    .option('--json', 'print {operatorRef}'),
  async (options, [staffId]) =>
    withConnector(options, async (connector) => {
      const operatorRef =
        staffId === undefined
          ? connector.operator.operatorRef
          : deriveOperatorRef(connector.custody.pseudonymKey, staffId);
      if (options.json) printJson({ operatorRef });
      else console.log(operatorRef);
      return EXIT.OK;
    }),
);

interface WatchOptions extends Globals {
  readonly once?: boolean;
  readonly class: ContentClass;
  readonly expiresDays: string;
  readonly timeout: number;
}
onRun<WatchOptions>(
  program
    .command('watch')
    .summary('Send files dropped into DIR/inbox/<patient number>/')
    .description(
      'Send files dropped into DIR/inbox/<patient number>/; they move to DIR/done/ when accepted, DIR/failed/ (+ .reason.txt) if not. Each pass also runs one witness round (failures are logged).',
    )
    .argument('<dir>', 'the drop folder')
    .option('--once', 'send what is there, wait (up to --timeout) for the receipts, and stop')
    .option('--class <class>', CONTENT_CLASSES.join(', '), oneOf(CONTENT_CLASSES), 'document')
    .option('--expires-days <days>', 'records expire after this many days', '90')
    .option('--timeout <seconds>', 'how long --once waits for receipts', wholeNumber(0, 86_400), 60),
  async (options, [dir]) =>
    withConnector(options, async (connector) => {
      const { recoverDropFolder } = await import('./connector/drop-recovery.ts');
      const { watchOnce } = await import('./connector/watch.ts');
      const { witnessOnce } = await import('./connector/witness.ts');
      const store = await blobStore(options);
      const watchOptions = {
        dir: dir!,
        contentClass: options.class,
        expiresDays: Number(options.expiresDays),
        settleMs: options.once ? 0 : 1000,
        // One JSON line per event on stdout, for journald and the hospital's monitoring: ids and
        // codes only, never a patient number or a file name.
        log: (event: WatchEvent | { readonly event: string; readonly [field: string]: unknown }) =>
          console.log(JSON.stringify({ time: new Date().toISOString(), ...event })),
      };
      // After a crash: finish uploads that were under way, and put back what was never sealed.
      const recover = () =>
        recoverDropFolder(connector, store, {
          dir: dir!,
          log: (message) => watchOptions.log({ event: 'recovery', message }),
        });
      await recover();
      if (options.once) {
        // Send what is there, then wait (up to --timeout) for every receipt.
        const deadline = Date.now() + options.timeout * 1000;
        let pass = await watchOnce(connector, store, watchOptions);
        let failed = pass.failed;
        const interrupted = pass.interrupted;
        while (pass.waiting > 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          pass = await watchOnce(connector, store, watchOptions);
          failed += pass.failed;
        }
        if (failed > 0) return EXIT.REFUSED;
        return pass.waiting > 0 || interrupted > 0 ? EXIT.FAILURE : EXIT.OK;
      }
      console.error(`Watching ${dir}/inbox/<patient number>/ (Ctrl-C to stop).`);
      for (;;) {
        await recover();
        await watchOnce(connector, store, watchOptions);
        // The witness rides along; a refusal or an unreachable service must not stop delivery.
        await witnessOnce(connector).then(
          (round) => {
            if (round.cosigned) watchOptions.log({ event: 'witness-cosigned', size: round.size });
          },
          (error: unknown) =>
            watchOptions.log({ event: 'witness-failed', message: describeFailure(error).message }),
        );
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }),
);

interface WitnessOptions extends Globals {
  readonly json?: boolean;
}
onRun<WitnessOptions>(
  program
    .command('witness')
    .summary('Witness the hospital’s audit log')
    .description(
      'Witness the hospital’s audit log: check the platform’s newest checkpoint extends the one cosigned before, then cosign it. Refuses (LOG_INCONSISTENT, LOG_ROLLBACK, …) and keeps its state if it does not.',
    )
    .option('--json', 'print {size, cosigned}'),
  async (options) =>
    withConnector(options, async (connector) => {
      const { witnessOnce } = await import('./connector/witness.ts');
      const round = await witnessOnce(connector);
      if (options.json) printJson(round);
      else {
        console.log(
          round.cosigned
            ? `Cosigned the audit log at ${round.size} entries.`
            : `Nothing new to cosign (last cosigned at ${round.size} entries).`,
        );
      }
      return EXIT.OK;
    }),
);

addConsoleCommands(program, (options) => connectorHome(options as Globals).dir);
registerBackupCommands(program, (options) => connectorHome(options as Globals).dir);

await runBin(program);
