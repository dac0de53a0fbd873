#!/usr/bin/env -S node --max-semi-space-size=2 --max-old-space-size=96 --liftoff-only --no-opt --no-maglev --expose-gc
// cb-device: the reference device (what a patient's phone does), a thin command line over the
// device SDK (sdk/): parses the command line, calls the SDK with the Node store and record sink
// (sdk/node.ts) and prints; nothing else. The local push recorder is the only device code of
// its own (clients/device/).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { accessLogQuerySchema, deviceIdSchema, MAX_PAGE_SIZE } from '../shared/core/protocol/index.ts';
import {
  DeviceError,
  DeviceHome,
  approveLink,
  eraseEverything,
  followAuditLog,
  keepLinkedDevice,
  linkingDeviceOf,
  listDevices,
  pairFromQr,
  receiveLink,
  replacePushToken,
  revokeDevice,
  showLinkInvitation,
  syncRecords,
  verifiedAccessLog,
  type Enrolment,
} from '../sdk/index.ts';
import { FileDeviceStore, fileRecordSink } from '../sdk/node.ts';
import { localPushToken, waitForPush } from './device/local-push.ts';
import { progressBar } from './connector/progress.ts';
import { createApiClient } from './lib/api-client.ts';
import { EXIT, UsageError } from './lib/cli.ts';
import { createProgram, onRun, oneOf, printJson, runBin, wholeNumber } from './lib/cli-program.ts';
import { loadClientEnvironment, requireEnv } from './lib/environment.ts';
import { assertReachable } from './lib/reachability.ts';

/**
 * The QR code's text from its PNG. The PNG and QR decoders load only for the commands that scan,
 * so that a sync does not carry them in memory.
 */
async function scannedQr(png: string): Promise<string> {
  const { readQrPng } = await import('./lib/qr.ts');
  return readQrPng(png);
}

/** Options every command takes, before or after its name. */
interface Globals {
  readonly home?: string;
  readonly hospital?: string;
  readonly env?: string;
}

const program = createProgram('cb-device', 'The reference device: what a patient’s phone does.')
  .option(
    '--home <dir>',
    'device state (default $CB_DEVICE_HOME or ./.device). A phone keeps its private key in the platform keystore; this reference device keeps it in an owner-only file.',
  )
  .option('--hospital <id>', 'which enrolment, when paired with more than one hospital')
  .option('--env <file>', 'the stack environment, for the local push recorder (FCM_EMULATOR_URL)')
  .addHelpText(
    'after',
    `
Ids are base64url and may begin with '-': write such an id after '--' (\`revoke -- <id>\`).

Exit codes: 0 done, 1 failure (a service unreachable: SERVICE_UNREACHABLE, with its URL),
2 usage, 3 refused or a record failed (a stable code is printed).`,
  );

interface Home {
  readonly dir: string;
  readonly device: DeviceHome;
  open(hospitalId?: string): Promise<Enrolment>;
}

function deviceHome(options: Globals): Home {
  const store = new FileDeviceStore(options.home ?? process.env.CB_DEVICE_HOME ?? '.device');
  const device = new DeviceHome(store, createApiClient);
  return {
    dir: store.dir,
    device,
    async open(hospitalId) {
      try {
        return await device.open(hospitalId);
      } catch (error) {
        if (!(error instanceof DeviceError)) throw error;
        const hint =
          error.code === 'HOSPITAL_NOT_CHOSEN' ? ' with --hospital' : ` (no enrolment in ${store.dir})`;
        throw new UsageError(`${error.message}${hint}`);
      }
    },
  };
}

interface PairOptions extends Globals {
  readonly platform: 'ios' | 'android' | 'other';
  readonly json?: boolean;
  readonly quiet?: boolean;
}
onRun<PairOptions>(
  program
    .command('pair')
    .description('Decode the invitation QR code, make a fresh key pair, and pair.')
    .argument('<qr-png>', 'the invitation’s QR code as a PNG image')
    .option(
      '--platform <platform>',
      'ios, android or other',
      oneOf(['ios', 'android', 'other'] as const),
      'other',
    )
    .option('--json', 'print {hospitalId, apiHost, deviceId, expiresAt}')
    .option('-q, --quiet', 'print only the new device id (what `revoke` takes)'),
  async (options, [png]) => {
    if (options.json && options.quiet) throw new UsageError('--json and --quiet exclude each other');
    const paired = await pairFromQr(deviceHome(options).device, await scannedQr(png!), {
      platform: options.platform,
      fcmToken: localPushToken(),
      now: new Date(),
    });
    if (options.json) {
      const { hospitalId, apiHost, deviceId, expiresAt } = paired;
      printJson({ hospitalId, apiHost, deviceId, expiresAt });
    } else if (options.quiet) console.log(paired.deviceId);
    else {
      console.log(`Paired with ${paired.hospitalId} at ${paired.apiHost} as device ${paired.deviceId}.`);
      console.log(`Certificate valid until ${paired.expiresAt}.`);
    }
    return EXIT.OK;
  },
);

interface LinkOptions extends Globals {
  readonly apiBase?: string;
  readonly out?: string;
  readonly wait: number;
  readonly platform: 'ios' | 'android' | 'other';
  readonly json?: boolean;
}
onRun<LinkOptions>(
  program
    .command('link')
    .summary('Join as a new phone of a patient whose other phone is paired, keeping the history')
    .description(
      'As a new phone (with --hospital): show a link QR code (written as a PNG), wait until the patient’s paired phone approves it (`approve-link`), then keep the enrolment. The new phone can then open the records sent before it existed (docs/PROTOCOL.md §17).',
    )
    .option(
      '--api-base <url>',
      'the service’s API base, as in the paired phone’s QR code (default: the stack’s FUNCTIONS_BASE_URL)',
    )
    .requiredOption('--out <png>', 'where to write the link QR code (owner-only)')
    .option('--wait <seconds>', 'how long to wait for the approval (1..3600)', wholeNumber(1, 3600), 300)
    .option(
      '--platform <platform>',
      'ios, android or other',
      oneOf(['ios', 'android', 'other'] as const),
      'other',
    )
    .option('--json', 'print {hospitalId, deviceId, expiresAt}'),
  async (options) => {
    const home = deviceHome(options);
    if (!options.hospital)
      throw new UsageError('link needs --hospital ID: the hospital the paired phone is enrolled at');
    const hospitalId = options.hospital;
    if ((await home.device.hospitals()).includes(hospitalId)) {
      throw new UsageError(`already enrolled at ${hospitalId} in ${home.dir}`);
    }
    const apiBase = options.apiBase ?? requireEnv(loadClientEnvironment(options.env), 'FUNCTIONS_BASE_URL');
    const invitation = showLinkInvitation({
      apiBase,
      hospitalId,
      platform: options.platform,
    });
    const { writeQrPng } = await import('./lib/qr.ts');
    await writeQrPng(invitation.qr, options.out!);
    if (!options.json)
      console.log(`Link QR code written to ${options.out}: scan it with the paired phone (approve-link).`);
    const fcmToken = localPushToken();
    const linked = await receiveLink(invitation, {
      waitMs: options.wait * 1000,
      fcmToken,
      clients: createApiClient,
    });
    await keepLinkedDevice(home.device, linked, { fcmToken });
    if (options.json) printJson({ hospitalId, deviceId: linked.deviceId, expiresAt: linked.expiresAt });
    else
      console.log(
        `Linked at ${hospitalId} as device ${linked.deviceId}; sync to receive the patient’s records.`,
      );
    return EXIT.OK;
  },
);

onRun<JsonOption>(
  program
    .command('approve-link')
    .summary('Let a new phone of this patient in, with the keys of the records sent so far')
    .description(
      'As the paired phone: read the new phone’s link QR code, re-wrap the content keys of this patient’s live records for it, sign the link and hand it to the pairing function. Nothing the cloud can open: the keys are wrapped for the new phone’s key only.',
    )
    .argument('<qr-png>', 'the new phone’s link QR code as a PNG image')
    .option('--json', 'print {deviceId, expiresAt, records, skipped}'),
  async (options, [png]) => {
    const enrolment = await deviceHome(options).open(options.hospital);
    const approved = await approveLink(linkingDeviceOf(enrolment), await scannedQr(png!), createApiClient);
    if (options.json) {
      const { deviceId, expiresAt, records, skipped } = approved;
      printJson({ deviceId, expiresAt, records, skipped });
    } else {
      console.log(`Linked device ${approved.deviceId} with ${approved.records.length} record(s) handed on.`);
      for (const { recordId, code } of approved.skipped) console.log(`  ${recordId} not handed on: ${code}`);
    }
    return EXIT.OK;
  },
);

interface SyncOptions extends Globals {
  readonly wait?: number;
  readonly out?: string;
  readonly json?: boolean;
  readonly progress?: boolean;
}
onRun<SyncOptions>(
  program
    .command('sync')
    .summary('Download, verify, decrypt and acknowledge every new record')
    .description(
      'Download, verify, decrypt and acknowledge every new record. First checks the hospital’s audit log: its newest checkpoint must be cosigned by the hospital’s witness and extend the one seen before (else AUDIT_LOG_INCONSISTENT, AUDIT_LOG_UNWITNESSED, … and no sync).',
    )
    .option('--wait <seconds>', 'first wait up to this long for a push (0..3600)', wholeNumber(0, 3600))
    .option('--out <dir>', 'where records are written (default: <home>/records)')
    .option('--progress', 'rate and time left of each download on stderr (on by default on a terminal)')
    .option('--json', 'print {push, records: [{recordId, outcome, file | errorCode}]}'),
  async (options) => {
    const home = deviceHome(options);
    let enrolment = await home.open(options.hospital);
    let push: string | null | undefined;
    if (options.wait !== undefined) {
      const seconds = options.wait;
      const fcm = requireEnv(loadClientEnvironment(options.env), 'FCM_EMULATOR_URL');
      await assertReachable(fcm, `${fcm} (FCM_EMULATOR_URL)`);
      push = (await waitForPush(fcm, enrolment, home.device, seconds * 1000)) ?? null;
      if (!options.json) {
        console.log(push ? `Push received (${push}).` : `No push within ${seconds} s; syncing anyway.`);
      }
      enrolment = await home.open(enrolment.data.hospitalId);
    }
    // The audit log first: a platform caught rewriting it is not trusted with a sync either.
    await followAuditLog(home.device, enrolment);
    const out = options.out ?? `${home.dir}/records`;
    const results = await syncRecords(home.device, enrolment, fileRecordSink(out), {
      onProgress: progressBar(options.progress === true || process.stderr.isTTY === true),
    });
    if (options.json) {
      printJson({
        ...(push !== undefined ? { push } : {}),
        records: results.map((result) =>
          result.outcome === 'stored'
            ? { recordId: result.recordId, outcome: 'stored', file: join(out, result.file ?? '') }
            : { recordId: result.recordId, outcome: 'failed', errorCode: result.errorCode },
        ),
      });
    } else {
      for (const result of results) {
        console.log(
          result.outcome === 'stored'
            ? `${result.recordId}  stored  ${out}/${result.file}`
            : `${result.recordId}  FAILED  ${result.errorCode}`,
        );
      }
      console.log(`${results.filter((r) => r.outcome === 'stored').length} new record(s).`);
    }
    return results.some((r) => r.outcome === 'failed') ? EXIT.REFUSED : EXIT.OK;
  },
);

interface JsonOption extends Globals {
  readonly json?: boolean;
}
onRun<JsonOption>(
  program
    .command('devices')
    .description('The patient’s devices at this hospital.')
    .option('--json', 'print {devices: [{deviceId, platform, pairedAt, current}]}'),
  async (options) => {
    const devices = await listDevices(await deviceHome(options).open(options.hospital));
    if (options.json) printJson({ devices });
    else {
      for (const device of devices) {
        console.log(
          `${device.deviceId}  ${device.platform}  paired ${device.pairedAt}${device.current ? '  (this device)' : ''}`,
        );
      }
    }
    return EXIT.OK;
  },
);

interface RevokeOptions extends JsonOption {
  readonly self?: boolean;
}
onRun<RevokeOptions>(
  program
    .command('revoke')
    .description('Revoke a lost device of the same patient (or this one, with --self).')
    .argument('[device-id]', 'from `devices` (after --, as it may begin with -)')
    .option('--self', 'revoke this device')
    .option('--json', 'print {deviceId, revokedAt}'),
  async (options, [deviceId]) => {
    if ((deviceId === undefined) === !options.self)
      throw new UsageError('revoke takes one DEVICE_ID, or --self');
    const home = deviceHome(options);
    const enrolment = await home.open(options.hospital);
    const target = options.self ? enrolment.data.deviceId : deviceId!;
    if (!deviceIdSchema.safeParse(target).success) throw new UsageError('that is not a device id');
    const revoked = await revokeDevice(home.device, enrolment, target);
    if (options.json) printJson({ deviceId: revoked.deviceId, revokedAt: revoked.revokedAt });
    else console.log(`Revoked ${revoked.deviceId} at ${revoked.revokedAt}.`);
    return EXIT.OK;
  },
);

onRun<Globals>(
  program
    .command('push-token')
    .description('Replace this device’s push token.')
    .argument('<token>', 'the new FCM registration token'),
  async (options, [token]) => {
    const home = deviceHome(options);
    const enrolment = await home.open(options.hospital);
    await replacePushToken(home.device, enrolment, token!);
    console.log('Push token replaced.');
    return EXIT.OK;
  },
);

interface AccessLogOptions extends JsonOption {
  readonly limit: string;
}
onRun<AccessLogOptions>(
  program
    .command('access-log')
    .summary('Who did what with this patient’s records (NEN 7513), each entry proven')
    .description(
      'Who did what with this patient’s records and devices (NEN 7513), newest first, each entry checked against the cosigned audit log: verified (proven included) or pending (not sequenced and cosigned yet).',
    )
    .option('--limit <n>', `how many entries, 1..${MAX_PAGE_SIZE}`, '50')
    .option('--json', 'print {treeSize, entries: [{…, index?, verified}]}'),
  async (options) => {
    // The service's own query schema decides, so the CLI never passes what the service refuses.
    const limit = accessLogQuerySchema.shape.pageSize.safeParse(options.limit);
    if (!limit.success || limit.data === undefined) {
      throw new UsageError(`--limit must be a whole number from 1 to ${MAX_PAGE_SIZE}`);
    }
    const home = deviceHome(options);
    const enrolment = await home.open(options.hospital);
    const { treeSize, entries: checked } = await verifiedAccessLog(home.device, enrolment, limit.data);
    if (options.json) {
      const entries = checked.map(({ entry, verified }) => {
        const { leaf, ...shown } = entry;
        return { ...shown, ...(leaf.index !== undefined ? { index: leaf.index } : {}), verified };
      });
      printJson({ treeSize, entries });
      return EXIT.OK;
    }
    for (const { entry, verified } of checked) {
      const subject = entry.recordId
        ? `record ${entry.recordId}`
        : entry.deviceId
          ? `device ${entry.deviceId}`
          : '';
      const by =
        entry.actor.id === enrolment.data.deviceId ? 'this device' : `${entry.actor.kind} ${entry.actor.id}`;
      console.log(
        `${entry.at}  ${entry.action.padEnd(19)}  ${subject}  by ${by}${entry.outcome ? `  (${entry.outcome})` : ''}  [${verified ? 'verified' : 'pending'}]`,
      );
    }
    const proven = checked.filter((item) => item.verified).length;
    console.log(
      `${checked.length} entr${checked.length === 1 ? 'y' : 'ies'}, ${proven} verified against the cosigned audit log (${treeSize} entries).`,
    );
    return EXIT.OK;
  },
);

interface EraseOptions extends JsonOption {
  readonly yes?: boolean;
}
onRun<EraseOptions>(
  program
    .command('erase')
    .summary('Erase everything about this patient at this hospital')
    .description(
      'Erase everything about this patient at this hospital: records, devices (this one too) and invitations. Prints the signed receipt’s counts, saves the receipt and forgets the enrolment.',
    )
    .option('--yes', 'confirm: this cannot be undone')
    .option('--json', 'print {hospitalId, counts, receipt}'),
  async (options) => {
    if (!options.yes) throw new UsageError('erase cannot be undone: add --yes to confirm');
    const home = deviceHome(options);
    const enrolment = await home.open(options.hospital);
    if (!enrolment.data.recordsPublicKey) {
      throw new UsageError('this enrolment predates erasure receipts: pair again first');
    }
    // A receipt that does not verify is not proof of anything: the SDK throws and keeps the enrolment.
    const { signed, verified, counts } = await eraseEverything(home.device, enrolment);
    const saved = join(home.dir, 'receipts', `${verified.jobId}.cbreceipt`);
    await mkdir(dirname(saved), { recursive: true });
    await writeFile(saved, signed, { mode: 0o600 });
    if (options.json) printJson({ hospitalId: verified.hospitalId, counts, receipt: saved });
    else {
      console.log(
        `Erased at ${verified.hospitalId}: ${counts.records} record(s), ${counts.devices} device(s), ${counts.invitations} invitation(s).`,
      );
      console.log(`Signed receipt (verified with the records function's key): ${saved}`);
    }
    return EXIT.OK;
  },
);

await runBin(program);
