// cb-connector: runs inside the hospital. Run with `npm run cb-connector -- <command>`.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { createBlobStore } from '../shared/adapters/blob-store.ts';
import { createStorage } from '../shared/adapters/google-clients.ts';
import {
  contentClassSchema,
  deletionResponseSchema,
  deriveOperatorRef,
  derivePatientRef,
  deviceIdSchema,
  revokeResponseSchema,
  deletionReceiptFromText,
  recordIdSchema,
  verifyDeletionReceipt,
} from '../shared/core/protocol/index.ts';
import { checkedDevices, sendFile } from './connector/deliver.ts';
import {
  ConnectorHome,
  onboardingSchema,
  staffIdFrom,
  type Connector,
  type KeyPlacement,
} from './connector/home.ts';
import { invitePatient } from './connector/invite.ts';
import { progressBar } from './connector/progress.ts';
import { refreshJournal, waitForReceipt } from './connector/receipts.ts';
import { watchOnce } from './connector/watch.ts';
import { witnessOnce } from './connector/witness.ts';
import { ApiError } from './lib/api-client.ts';
import { describeFailure, EXIT, runMain, UsageError } from './lib/cli.ts';
import { loadClientEnvironment, requireEnv } from './lib/environment.ts';
import { qrForTerminal, writeQrPng } from './lib/qr.ts';

const HELP = `cb-connector: encrypt and send records from inside the hospital

Usage: npm run cb-connector -- <command> [options]

Commands:
  keys --hospital ID [--force] [--custody pkcs11 --module PATH --token-label LABEL]
                                    Generate the hospital key pair and master secret (owner-only
                                    files in --home), or create them inside a PKCS#11 token (PIN
                                    from $CB_HSM_PIN); prints the public key for the operator.
  configure --from FILE             Store the configuration from \`cb-admin register-hospital --json\`.
  invite PATIENT_NUMBER [--out qr.png] [--expires-minutes 60] [--attempts 3]
                                    Invite a patient: the QR code as PNG and in the terminal.
  send FILE... --patient NUMBER [--class document|fhir|imaging|other] [--title T]
       [--media-type T] [--expires-days 90] [--wait [--timeout 60]] [--progress]
                                    Encrypt each file for the patient's verified devices and upload it.
  devices --patient NUMBER           The patient's paired devices, each with whether this connector
                                    accepts it (certificate and binding proof) or why not.
  receipts [--upload ID [--wait]] [--timeout 60]
                                    Check ingest's signed receipts for what was sent (or one upload).
  resend --patient NUMBER           Send every file sent to that patient again, to its current
                                    devices (new uploads, new keys; e.g. after a new phone).
  recall [--] RECORD_ID             Take back a record this hospital sent: its container and metadata
                                    are deleted, and the signed receipt is checked and printed. A
                                    device that already downloaded it keeps its copy.
  revoke [--] DEVICE_ID             Revoke a patient's device: this connector never encrypts for it
                                    again, whatever the cloud later says, and the cloud refuses it.
  operator-ref [STAFF_ID]           The pseudonym under which a member of staff's actions reach the
                                    cloud's audit trail (default: the acting one; see --operator).
  watch DIR [--once] [--class C]    Send files dropped into DIR/inbox/<patient number>/; they move
                                    to DIR/done/ when accepted, DIR/failed/ (+ .reason.txt) if not.
                                    Each pass also runs one witness round (failures are logged).
  witness [--json]                  Witness the hospital's audit log: check the platform's newest
                                    checkpoint extends the one cosigned before, then cosign it.
                                    Refuses (LOG_INCONSISTENT, LOG_ROLLBACK, …) and keeps its state
                                    if it does not. --json prints {size, cosigned}.

Options:
  --home DIR   connector state (default $CB_CONNECTOR_HOME or ./.connector); holds the private key,
               the master secret and journals with patient numbers: keep it inside the hospital
  --operator ID  the member of staff acting (default $CB_OPERATOR, then the account name); the
               cloud sees only the hospital's pseudonym of it
  --env FILE   the stack environment (default $CB_STACK_ENV, then .data/stack.env from \`npm start\`)
  --help       this text

Ids are base64url and may begin with '-': put such an id after '--' (options first).

Exit codes: 0 done, 1 failure, 2 usage, 3 refused or rejected (a stable code is printed).`;

await runMain('cb-connector', async () => {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      home: { type: 'string' },
      env: { type: 'string' },
      hospital: { type: 'string' },
      force: { type: 'boolean', default: false },
      from: { type: 'string' },
      out: { type: 'string' },
      'expires-minutes': { type: 'string', default: '60' },
      attempts: { type: 'string', default: '3' },
      patient: { type: 'string' },
      class: { type: 'string', default: 'document' },
      title: { type: 'string' },
      'media-type': { type: 'string' },
      'expires-days': { type: 'string', default: '90' },
      wait: { type: 'boolean', default: false },
      upload: { type: 'string' },
      timeout: { type: 'string', default: '60' },
      progress: { type: 'boolean', default: false },
      once: { type: 'boolean', default: false },
      operator: { type: 'string' },
      custody: { type: 'string', default: 'file' },
      module: { type: 'string' },
      'token-label': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  const [command, ...args] = positionals;
  if (values.help || command === undefined) {
    console.log(HELP);
    return values.help ? EXIT.OK : EXIT.USAGE;
  }
  const home = new ConnectorHome(values.home ?? process.env.CB_CONNECTOR_HOME ?? '.connector');

  if (command === 'keys') {
    if (!values.hospital) throw new UsageError('keys needs --hospital ID');
    let placement: KeyPlacement = { custody: 'file' };
    if (values.custody === 'pkcs11') {
      if (!values.module || !values['token-label']) {
        throw new UsageError('--custody pkcs11 needs --module PATH and --token-label LABEL');
      }
      placement = { custody: 'pkcs11', module: values.module, tokenLabel: values['token-label'] };
    } else if (values.custody !== 'file') {
      throw new UsageError('--custody is file (the default) or pkcs11');
    }
    const publicKey = await home.createKeys(values.hospital, values.force, placement);
    console.error(
      `Keys ${placement.custody === 'file' ? `written to ${home.dir}` : 'created in the token'}. Give the operator this public key:`,
    );
    console.log(publicKey.toBase64Url());
    return EXIT.OK;
  }
  if (command === 'configure') {
    if (!values.from)
      throw new UsageError('configure needs --from FILE (from `cb-admin register-hospital --json`)');
    const parsed = onboardingSchema.safeParse(JSON.parse(await readFile(values.from, 'utf8')));
    if (!parsed.success) throw new UsageError(`${values.from} is not a connector configuration`);
    await home.configure(parsed.data);
    console.log(`Configured ${parsed.data.hospitalId} (API ${parsed.data.apiBase}).`);
    return EXIT.OK;
  }

  const connector = await home.open(staffIdFrom(values.operator));
  try {
    return await act(connector, command, args);
  } finally {
    connector.custody.close();
  }

  async function act(connector: Connector, command: string, args: string[]): Promise<number> {
    const environment = loadClientEnvironment(values.env);
    const blobs = () =>
      createBlobStore(createStorage(requireEnv(environment, 'GCLOUD_PROJECT'), environment.env));
    const timeoutMs = Number(values.timeout) * 1000;
    const contentClass = contentClassSchema.safeParse(values.class);
    if (!contentClass.success) throw new UsageError('--class must be document, fhir, imaging or other');

    switch (command) {
      case 'invite': {
        const [patientNumber, ...extra] = args;
        if (!patientNumber || extra.length > 0) throw new UsageError('invite takes one PATIENT_NUMBER');
        const invitation = await invitePatient(connector, {
          patientNumber,
          expiresMinutes: Number(values['expires-minutes']),
          attempts: Number(values.attempts),
          now: new Date(),
        });
        if (values.out) await writeQrPng(invitation.qrText, values.out);
        console.log(await qrForTerminal(invitation.qrText));
        console.log(`Invitation ${invitation.invitationId}, valid until ${invitation.expiresAt}.`);
        if (values.out) console.log(`QR code written to ${values.out}.`);
        return EXIT.OK;
      }
      case 'send':
        return send(connector, blobs(), args, values.patient, {
          contentClass: contentClass.data,
          ...(values['media-type'] ? { mediaType: values['media-type'] } : {}),
          ...(values.title ? { title: values.title } : {}),
          expiresDays: Number(values['expires-days']),
          wait: values.wait ? timeoutMs : undefined,
          progress: values.progress || process.stderr.isTTY,
        });
      case 'resend': {
        if (!values.patient) throw new UsageError('resend needs --patient NUMBER');
        const entries = (await home.journal()).filter((entry) => entry.patientNumber === values.patient);
        if (entries.length === 0)
          throw new UsageError('nothing was sent to that patient from this connector');
        const files = [...new Set(entries.map((entry) => entry.file))];
        const first = entries[0]!;
        return send(connector, blobs(), files, values.patient, {
          contentClass: first.contentClass,
          expiresDays: Number(values['expires-days']),
          wait: values.wait ? timeoutMs : undefined,
          progress: values.progress || process.stderr.isTTY,
        });
      }
      case 'devices': {
        if (!values.patient) throw new UsageError('devices needs --patient NUMBER');
        const patientRef = derivePatientRef(connector.custody.pseudonymKey, values.patient);
        const { accepted, refused } = await checkedDevices(connector, patientRef, new Date());
        if (accepted.length + refused.length === 0) console.log('The patient has no paired device.');
        for (const device of accepted) {
          console.log(`${device.deviceId}  verified  paired ${device.certificate.issuedAt}`);
        }
        for (const device of refused) console.log(`${device.deviceId}  REFUSED  ${device.code}`);
        return refused.length > 0 ? EXIT.REFUSED : EXIT.OK;
      }
      case 'recall': {
        const [recordId, ...extra] = args;
        if (!recordId || extra.length > 0 || !recordIdSchema.safeParse(recordId).success) {
          throw new UsageError('recall takes one RECORD_ID (see `receipts`)');
        }
        const { receipt } = await connector.api.call(
          {
            method: 'POST',
            target: `/pairing/v1/records/${recordId}/recall`,
            json: { operatorRef: connector.operator.operatorRef },
          },
          deletionResponseSchema,
        );
        const signed = deletionReceiptFromText(receipt);
        const verified = verifyDeletionReceipt(signed, connector.pairingKey);
        if (verified.reason !== 'recall' || !verified.deleted.records.includes(recordId)) {
          throw new Error('the recall receipt does not name this record');
        }
        console.log(
          `Recalled ${recordId} at ${verified.finishedAt} (receipt verified with the pairing key).`,
        );
        return EXIT.OK;
      }
      case 'revoke': {
        const [deviceId, ...extra] = args;
        if (!deviceId || extra.length > 0 || !deviceIdSchema.safeParse(deviceId).success) {
          throw new UsageError('revoke takes one DEVICE_ID (see `devices`)');
        }
        // Journalled first: even if the cloud never hears of it, or later lists the device again,
        // this connector encrypts nothing more for it.
        await connector.enrolments.recordRevocation(deviceId, 'connector', new Date());
        try {
          const revoked = await connector.api.call(
            {
              method: 'POST',
              target: `/pairing/v1/devices/${deviceId}/revoke`,
              json: { operatorRef: connector.operator.operatorRef },
            },
            revokeResponseSchema,
          );
          console.log(`Revoked ${deviceId} at ${revoked.revokedAt}.`);
        } catch (error) {
          // Already revoked in the cloud (or never active there): the local revocation stands.
          if (!(error instanceof ApiError && error.code === 'NOT_FOUND')) throw error;
          console.log(`Revoked ${deviceId} here; the cloud lists no such active device.`);
        }
        return EXIT.OK;
      }
      case 'operator-ref': {
        const [staffId, ...extra] = args;
        if (extra.length > 0) throw new UsageError('operator-ref takes at most one STAFF_ID');
        console.log(
          staffId === undefined
            ? connector.operator.operatorRef
            : deriveOperatorRef(connector.custody.pseudonymKey, staffId),
        );
        return EXIT.OK;
      }
      case 'receipts': {
        const store = blobs();
        if (values.upload) {
          const status = await waitForReceipt(connector, store, values.upload, values.wait ? timeoutMs : 0);
          console.log(
            `${values.upload}  ${status.state}${status.state === 'rejected' ? `  ${status.errorCode}` : ''}`,
          );
          if (status.state === 'accepted') return EXIT.OK;
          return status.state === 'pending' ? EXIT.FAILURE : EXIT.REFUSED;
        }
        const journal = await refreshJournal(connector, store);
        if (journal.length === 0) console.log('Nothing has been sent from this connector.');
        for (const { entry, forged } of journal) {
          const state = forged ? 'FORGED receipt (ignored)' : entry.status;
          console.log(
            `${entry.uploadId}  ${state}${entry.errorCode ? `  ${entry.errorCode}` : ''}  ${entry.file}`,
          );
        }
        return journal.some((item) => item.entry.status === 'rejected' || item.forged)
          ? EXIT.REFUSED
          : EXIT.OK;
      }
      case 'witness': {
        if (args.length > 0) throw new UsageError('witness takes no arguments');
        const round = await witnessOnce(connector);
        if (values.json) console.log(JSON.stringify(round));
        else
          console.log(
            round.cosigned
              ? `Cosigned the audit log at ${round.size} entries.`
              : `Nothing new to cosign (last cosigned at ${round.size} entries).`,
          );
        return EXIT.OK;
      }
      case 'watch': {
        const [dir, ...extra] = args;
        if (!dir || extra.length > 0) throw new UsageError('watch takes one DIR');
        const store = blobs();
        const options = {
          dir,
          contentClass: contentClass.data,
          expiresDays: Number(values['expires-days']),
          settleMs: values.once ? 0 : 1000,
          log: (line: string) => console.log(line),
        };
        if (values.once) {
          // Send what is there, then wait (up to --timeout) for every receipt.
          const deadline = Date.now() + timeoutMs;
          let pass = await watchOnce(connector, store, options);
          let failed = pass.failed;
          while (pass.waiting > 0 && Date.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 500));
            pass = await watchOnce(connector, store, options);
            failed += pass.failed;
          }
          return failed > 0 ? EXIT.REFUSED : pass.waiting > 0 ? EXIT.FAILURE : EXIT.OK;
        }
        console.error(`Watching ${dir}/inbox/<patient number>/ (Ctrl-C to stop).`);
        for (;;) {
          await watchOnce(connector, store, options);
          // The witness rides along; a refusal or an unreachable service must not stop delivery.
          await witnessOnce(connector).then(
            (round) => {
              if (round.cosigned) options.log(`witness cosigned the audit log at ${round.size} entries`);
            },
            (error: unknown) => options.log(`witness: ${describeFailure(error).message}`),
          );
          await new Promise((resolve) => setTimeout(resolve, 2000));
        }
      }
      default:
        throw new UsageError(`unknown command ${command} (see --help)`);
    }
  }
});

async function send(
  connector: Connector,
  blobs: ReturnType<typeof createBlobStore>,
  files: readonly string[],
  patientNumber: string | undefined,
  options: {
    contentClass: 'document' | 'fhir' | 'imaging' | 'other';
    mediaType?: string;
    title?: string;
    expiresDays: number;
    wait: number | undefined;
    progress: boolean;
  },
): Promise<number> {
  if (!patientNumber) throw new UsageError('send needs --patient NUMBER');
  if (files.length === 0) throw new UsageError('send needs at least one FILE');
  let refused = 0;
  for (const file of files) {
    const { entry, devices } = await sendFile(connector, blobs, {
      file,
      patientNumber,
      contentClass: options.contentClass,
      ...(options.mediaType ? { mediaType: options.mediaType } : {}),
      ...(options.title ? { title: options.title } : {}),
      expiresDays: options.expiresDays,
      now: new Date(),
      onProgress: progressBar(options.progress),
    });
    for (const skipped of devices.refused) {
      console.error(`skipped device ${skipped.deviceId}: ${skipped.code}`);
    }
    console.log(`${entry.uploadId}  sent  ${file}  (for ${devices.accepted.length} device(s))`);
    if (options.wait !== undefined) {
      const status = await waitForReceipt(connector, blobs, entry.uploadId, options.wait);
      if (status.state === 'accepted' || status.state === 'rejected') {
        await connector.home.record({
          ...entry,
          status: status.state,
          ...(status.state === 'rejected' ? { errorCode: status.errorCode } : {}),
        });
      }
      console.log(
        `${entry.uploadId}  ${status.state}${status.state === 'rejected' ? `  ${status.errorCode}` : ''}`,
      );
      if (status.state !== 'accepted') refused++;
    }
  }
  return refused > 0 ? EXIT.REFUSED : EXIT.OK;
}
