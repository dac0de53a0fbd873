// cb-device: the reference device. Run with `npm run cb-device -- <command>`.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { importPublicKey } from '../shared/core/crypto/index.ts';
import {
  deletionCounts,
  deletionResponseSchema,
  deviceIdSchema,
  deviceListResponseSchema,
  deletionReceiptFromText,
  revokeResponseSchema,
  verifyDeletionReceipt,
} from '../shared/core/protocol/index.ts';
import { followAuditLog, verifiedAccessLog } from './device/audit-log.ts';
import { DeviceHome } from './device/home.ts';
import { pairFromQr } from './device/pair.ts';
import { syncRecords, waitForPush } from './device/sync.ts';
import { withTransientRetries } from './lib/api-client.ts';
import { EXIT, runMain, UsageError } from './lib/cli.ts';
import { loadClientEnvironment, requireEnv } from './lib/environment.ts';
import { readQrPng } from './lib/qr.ts';

const HELP = `cb-device: the reference device (what a patient's phone does)

Usage: npm run cb-device -- <command> [options]

Commands:
  pair QR.png [--platform ios|android|other]
                          Decode the invitation QR code, make a fresh key pair, and pair.
  sync [--wait SECONDS] [--out DIR]
                          With --wait, first wait for a push; then download, verify, decrypt and
                          acknowledge every new record into DIR (default: <home>/records).
                          First checks the hospital's audit log: its newest checkpoint must be
                          cosigned by the hospital's witness and extend the one seen before
                          (else AUDIT_LOG_INCONSISTENT, AUDIT_LOG_UNWITNESSED, … and no sync).
  devices                 The patient's devices at this hospital.
  revoke DEVICE_ID | --self
                          Revoke a lost device of the same patient (or this one).
  push-token TOKEN        Replace this device's push token.
  access-log [--limit N] [--json]
                          Who did what with this patient's records and devices (NEN 7513),
                          newest first, each entry checked against the cosigned audit log:
                          verified (proven included) or pending (not sequenced and cosigned yet).
  erase --yes             Erase everything about this patient at this hospital: records,
                          devices (this one too) and invitations. Prints the signed receipt's
                          counts, saves the receipt and forgets the enrolment.

Options:
  --home DIR      device state (default $CB_DEVICE_HOME or ./.device). A phone keeps its private
                  key in the platform keystore; this reference device keeps it in an owner-only file.
  --hospital ID   which enrolment, when paired with more than one hospital
  --env FILE      the stack environment, for the local push recorder (FCM_EMULATOR_URL)
  --help          this text

Ids are base64url and may begin with '-': put such an id after '--' (options first).

Exit codes: 0 done, 1 failure, 2 usage, 3 refused or a record failed (a stable code is printed).`;

await runMain('cb-device', async () => {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      home: { type: 'string' },
      hospital: { type: 'string' },
      env: { type: 'string' },
      platform: { type: 'string', default: 'other' },
      wait: { type: 'string' },
      out: { type: 'string' },
      self: { type: 'boolean', default: false },
      yes: { type: 'boolean', default: false },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  const [command, ...args] = positionals;
  if (values.help || command === undefined) {
    console.log(HELP);
    return values.help ? EXIT.OK : EXIT.USAGE;
  }
  const home = new DeviceHome(values.home ?? process.env.CB_DEVICE_HOME ?? '.device');

  switch (command) {
    case 'pair': {
      const [png, ...extra] = args;
      if (!png || extra.length > 0) throw new UsageError('pair takes one QR.png');
      const platform = values.platform;
      if (platform !== 'ios' && platform !== 'android' && platform !== 'other') {
        throw new UsageError('--platform must be ios, android or other');
      }
      const paired = await pairFromQr(home, await readQrPng(png), { platform, now: new Date() });
      console.log(`Paired with ${paired.hospitalId} at ${paired.apiHost} as device ${paired.deviceId}.`);
      console.log(`Certificate valid until ${paired.expiresAt}.`);
      return EXIT.OK;
    }
    case 'sync': {
      if (args.length > 0) throw new UsageError('sync takes no arguments');
      let enrolment = await home.open(values.hospital);
      if (values.wait !== undefined) {
        const seconds = Number(values.wait);
        if (!Number.isFinite(seconds) || seconds < 0 || seconds > 3600) {
          throw new UsageError('--wait must be 0..3600 seconds');
        }
        const fcm = requireEnv(loadClientEnvironment(values.env), 'FCM_EMULATOR_URL');
        const hint = await waitForPush(fcm, enrolment, home, seconds * 1000);
        console.log(hint ? `Push received (${hint}).` : `No push within ${seconds} s; syncing anyway.`);
        enrolment = await home.open(enrolment.data.hospitalId);
      }
      // The audit log first: a platform caught rewriting it is not trusted with a sync either.
      await followAuditLog(home, enrolment);
      const out = values.out ?? `${home.dir}/records`;
      const results = await syncRecords(home, enrolment, out);
      for (const result of results) {
        console.log(
          result.outcome === 'stored'
            ? `${result.recordId}  stored  ${out}/${result.file}`
            : `${result.recordId}  FAILED  ${result.errorCode}`,
        );
      }
      console.log(`${results.filter((r) => r.outcome === 'stored').length} new record(s).`);
      return results.some((r) => r.outcome === 'failed') ? EXIT.REFUSED : EXIT.OK;
    }
    case 'devices': {
      const enrolment = await home.open(values.hospital);
      const { devices } = await enrolment.api.call(
        { method: 'GET', target: '/records/v1/devices' },
        deviceListResponseSchema,
      );
      for (const device of devices) {
        console.log(
          `${device.deviceId}  ${device.platform}  paired ${device.pairedAt}${device.current ? '  (this device)' : ''}`,
        );
      }
      return EXIT.OK;
    }
    case 'revoke': {
      const enrolment = await home.open(values.hospital);
      const target = values.self ? enrolment.data.deviceId : args[0];
      if (!target || (values.self && args.length > 0) || args.length > 1) {
        throw new UsageError('revoke takes one DEVICE_ID, or --self');
      }
      if (!deviceIdSchema.safeParse(target).success) throw new UsageError('that is not a device id');
      const revoked = await enrolment.api.call(
        { method: 'POST', target: `/records/v1/devices/${target}/revoke`, json: {} },
        revokeResponseSchema,
      );
      if (target === enrolment.data.deviceId) await home.save({ ...enrolment.data, status: 'revoked' });
      console.log(`Revoked ${revoked.deviceId} at ${revoked.revokedAt}.`);
      return EXIT.OK;
    }
    case 'push-token': {
      const [token, ...extra] = args;
      if (!token || extra.length > 0) throw new UsageError('push-token takes one TOKEN');
      const enrolment = await home.open(values.hospital);
      await enrolment.api.raw({
        method: 'PUT',
        target: '/records/v1/devices/self/push-token',
        json: { fcmToken: token },
      });
      await home.save({ ...enrolment.data, fcmToken: token, lastPushSeq: 0 });
      console.log('Push token replaced.');
      return EXIT.OK;
    }
    case 'access-log': {
      if (args.length > 0) throw new UsageError('access-log takes no arguments');
      const limit = values.limit ?? '50';
      if (!/^[1-9][0-9]{0,2}$/.test(limit) || Number(limit) > 200)
        throw new UsageError('--limit must be 1..200');
      const enrolment = await home.open(values.hospital);
      const { treeSize, entries: checked } = await verifiedAccessLog(home, enrolment, Number(limit));
      if (values.json) {
        const entries = checked.map(({ entry, verified }) => {
          const { leaf, ...shown } = entry;
          return { ...shown, ...(leaf.index !== undefined ? { index: leaf.index } : {}), verified };
        });
        console.log(JSON.stringify({ treeSize, entries }));
        return EXIT.OK;
      }
      for (const { entry, verified } of checked) {
        const subject = entry.recordId
          ? `record ${entry.recordId}`
          : entry.deviceId
            ? `device ${entry.deviceId}`
            : '';
        const by =
          entry.actor.id === enrolment.data.deviceId
            ? 'this device'
            : `${entry.actor.kind} ${entry.actor.id}`;
        console.log(
          `${entry.at}  ${entry.action.padEnd(19)}  ${subject}  by ${by}${entry.outcome ? `  (${entry.outcome})` : ''}  [${verified ? 'verified' : 'pending'}]`,
        );
      }
      const proven = checked.filter((item) => item.verified).length;
      console.log(
        `${checked.length} entr${checked.length === 1 ? 'y' : 'ies'}, ${proven} verified against the cosigned audit log (${treeSize} entries).`,
      );
      return EXIT.OK;
    }
    case 'erase': {
      if (args.length > 0) throw new UsageError('erase takes no arguments');
      if (!values.yes) throw new UsageError('erase cannot be undone: add --yes to confirm');
      const enrolment = await home.open(values.hospital);
      const signingKey = enrolment.data.recordsPublicKey;
      if (!signingKey) throw new UsageError('this enrolment predates erasure receipts: pair again first');
      // Erasure is one job per device: a retry after a 5xx resumes it and signs the same receipt.
      const { receipt } = await withTransientRetries(() =>
        enrolment.api.call(
          { method: 'POST', target: '/records/v1/patient/erase', json: { confirm: 'erase-everything' } },
          deletionResponseSchema,
        ),
      );
      const signed = deletionReceiptFromText(receipt);
      // A receipt that does not verify is not proof of anything: report it and keep the enrolment.
      const verified = verifyDeletionReceipt(signed, importPublicKey(signingKey));
      const saved = join(home.dir, 'receipts', `${verified.jobId}.cbreceipt`);
      await mkdir(dirname(saved), { recursive: true });
      await writeFile(saved, signed, { mode: 0o600 });
      await home.remove(enrolment.data.hospitalId);
      const counts = deletionCounts(verified);
      console.log(
        `Erased at ${verified.hospitalId}: ${counts.records} record(s), ${counts.devices} device(s), ${counts.invitations} invitation(s).`,
      );
      console.log(`Signed receipt (verified with the records function's key): ${saved}`);
      return EXIT.OK;
    }
    default:
      throw new UsageError(`unknown command ${command} (see --help)`);
  }
});
