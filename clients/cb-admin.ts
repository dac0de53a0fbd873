// cb-admin: the operator's tool. Run with `npm run cb-admin -- <command>` (the repo's Node 22).
import { parseArgs } from 'node:util';
import { createBlobStore } from '../shared/adapters/blob-store.ts';
import { createFirestore, createKms, createStorage } from '../shared/adapters/google-clients.ts';
import { createLogObjects } from '../shared/adapters/log-objects.ts';
import { deletionCounts, verifyDeletionReceipt } from '../shared/core/protocol/index.ts';
import { RETENTION_BOUNDS, RETENTION_SETTINGS } from '../shared/retention/policy.ts';
import { bucketName, loadCatalog } from '../shared/runtime/catalog.ts';
import {
  functionKeyFailure,
  listHospitals,
  parsePolicyChanges,
  provisionKeys,
  registerHospital,
  publishedFunctionKey,
  publishedFunctionKeys,
  retentionPolicy,
  runRetention,
  suspendHospital,
  verifyAuditLogs,
} from './admin/admin.ts';
import { describeLogVerdict, describeMonitorVerdict, runAuditMonitor } from './admin/audit-verify.ts';
import { EXIT, runMain, UsageError } from './lib/cli.ts';
import { loadClientEnvironment, requireEnv } from './lib/environment.ts';

const HELP = `cb-admin: operate Clinic Bridge (the operator's tool; talks to Firestore with project credentials)

Usage: npm run cb-admin -- <command> [options]

Commands:
  register-hospital --id ID --public-key KEY [--expires-days 365] [--api-base URL] [--json]
        Register (or re-register) a hospital's public key (base64url, from \`cb-connector keys\`).
        Its uploads go under hospitals/ID/ in the ingest bucket. Prints the configuration to hand
        to the hospital's connector (\`cb-connector configure --from FILE\` reads the --json form).
  list-hospitals            Hospitals with status, key fingerprints and expiry (no secrets).
  suspend-hospital --id ID  Refuse the hospital's requests and uploads from now on.
  retention --id ID [--set NAME=NUMBER ...] [--operator NAME]
                            Show the hospital's retention policy, or change settings within their
                            bounds (each change is written to the audit trail with --operator).
  function-keys             Each function's published public key (receipts verify with them).
  provision-function-keys [--function NAME] [--json]
                            Create the Themis key pair of every function that has none (or of NAME),
                            wrapped by that function's own KMS key, and say per function whether it
                            was created or already present. Create-only: an existing key is never
                            replaced, so running it again is safe. Needs Encrypt on the function keys
                            and Firestore write (a key custodian: docs/OPERATIONS.md, step 8).
  run-retention [--job ID]  Run the retention function now (it also runs nightly) and print its
                            signed deletion receipt's counts. The same --job ID resumes a run
                            that was cut short, or hands back its receipt.
  audit-verify [--log ID] [--log-key KEY] [--api-base URL] [--json]
                            Verify every audit transparency log (one per hospital, and "platform"; or
                            --log ID) in full: the checkpoint's signature, every tile recomputed from
                            the entry bundles up to the signed root, every entry document against its
                            leaf (edited, deleted, inserted, reordered or duplicated entries), and the
                            hospital witness's cosigned checkpoint consistent with the tree. Entries
                            below a checkpoint the witness cosigned five years ago may be pruned. Pin
                            the log key with --log-key (record it at deployment, outside the project);
                            without it each log's key is read from the registry (auditLogs), which is
                            only as trustworthy as the database an attacker would have edited.
  audit-monitor --api-base URL --hospital ID --log-key KEY [--witness-key=KEY --witnessed FILE]
                [--state FILE] [--bucket NAME] [--json]
                            The outside auditor's check, with read access to the tlog bucket only (on
                            Google Cloud: storage.objects.get on that bucket, the auditor's own role;
                            no Firestore, no entry documents, so it never sees an event). Verifies the
                            newest checkpoint with the pinned log key, recomputes every tile that is
                            new since the size in --state from the entry bundles, checks the tree
                            extends the one --state remembers (then saves the new one), and compares
                            --witnessed, a checkpoint cosigned by the hospital's witness (its
                            connector has it), against the bucket's: SPLIT_VIEW if they diverge.
                            --witness-key: base64url Ed25519 key, or its verifier key; attach it
                            with '=', as a base64url key may begin with '-'.

Options:
  --env FILE   the stack environment (default: $CB_STACK_ENV, then .data/stack.env from \`npm start\`)
  --help       this text

Exit codes: 0 done, 1 failure (service unreachable), 2 usage, 3 refused (a stable code is printed,
e.g. KEY_ACCESS_DENIED when provisioning lacks Encrypt on a function key).`;

await runMain('cb-admin', async () => {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      env: { type: 'string' },
      id: { type: 'string' },
      'public-key': { type: 'string' },
      'expires-days': { type: 'string', default: '365' },
      'api-base': { type: 'string' },
      json: { type: 'boolean', default: false },
      set: { type: 'string', multiple: true, default: [] },
      operator: { type: 'string' },
      job: { type: 'string' },
      chain: { type: 'string' },
      'retention-key': { type: 'string' },
      log: { type: 'string' },
      'log-key': { type: 'string' },
      hospital: { type: 'string' },
      'witness-key': { type: 'string' },
      witnessed: { type: 'string' },
      state: { type: 'string' },
      bucket: { type: 'string' },
      function: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    console.log(HELP);
    return values.help ? EXIT.OK : EXIT.USAGE;
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument: ${rest[0]}`);
  if (values.chain !== undefined)
    throw new UsageError('--chain is gone: audit-verify --log ID picks one log');
  if (values['retention-key'] !== undefined) {
    throw new UsageError(
      '--retention-key is gone: checkpoints are signed with the log key now; pin it with --log-key',
    );
  }
  const environment = loadClientEnvironment(values.env);
  if (command === 'audit-monitor') {
    // The auditor's view: the tlog bucket, read-only; no Firestore client is made.
    if (!values['api-base'] || !values.hospital || !values['log-key']) {
      throw new UsageError('audit-monitor needs --api-base, --hospital and --log-key');
    }
    const bucket =
      values.bucket ?? bucketName(loadCatalog(), 'tlog', requireEnv(environment, 'GCLOUD_PROJECT'));
    const objects = createLogObjects(
      createBlobStore(createStorage(environment.env.GCLOUD_PROJECT ?? '', environment.env)),
      bucket,
    );
    const logId = values.hospital;
    const run = await runAuditMonitor(
      {
        checkpoint: async () => (await objects.checkpoint(logId))?.note,
        tile: (coord) => objects.tile(logId, coord),
        entryBundle: (index, width) => objects.entryBundle(logId, index, width),
      },
      {
        apiBase: values['api-base'],
        logId,
        logKey: values['log-key'],
        ...(values['witness-key'] ? { witnessKey: values['witness-key'] } : {}),
        ...(values.witnessed ? { witnessedFile: values.witnessed } : {}),
        ...(values.state ? { stateFile: values.state } : {}),
      },
    );
    if (values.json) {
      const { verdict } = run;
      console.log(
        JSON.stringify(
          verdict.ok
            ? {
                origin: run.origin,
                ok: true,
                size: verdict.state.size,
                rootHash: Buffer.from(verdict.state.rootHash).toString('base64'),
                newLeaves: verdict.newLeaves,
                ...(run.previous ? { previousSize: run.previous.size } : {}),
                ...(verdict.witnessedSize !== undefined ? { witnessedSize: verdict.witnessedSize } : {}),
              }
            : { origin: run.origin, ...verdict },
          null,
          2,
        ),
      );
    } else console.log(describeMonitorVerdict(run.origin, run.verdict, run.previous));
    return run.verdict.ok ? EXIT.OK : EXIT.REFUSED;
  }
  const projectId = requireEnv(environment, 'GCLOUD_PROJECT');
  const firestore = createFirestore(projectId, environment.env);
  try {
    switch (command) {
      case 'register-hospital': {
        if (!values.id || !values['public-key'])
          throw new UsageError('register-hospital needs --id and --public-key');
        const onboarding = await registerHospital(firestore, {
          hospitalId: values.id,
          publicKey: values['public-key'],
          expiresDays: Number(values['expires-days']),
          apiBase: values['api-base'] ?? requireEnv(environment, 'FUNCTIONS_BASE_URL'),
          projectId,
          now: new Date(),
        });
        if (values.json) console.log(JSON.stringify(onboarding, null, 2));
        else {
          console.log(
            `Registered ${onboarding.hospitalId}; its uploads go to gs://${onboarding.ingestBucket}/hospitals/${onboarding.hospitalId}/`,
          );
          console.log('Give the hospital this connector configuration (or use --json):');
          for (const [name, value] of Object.entries(onboarding)) console.log(`  ${name}: ${value}`);
        }
        return EXIT.OK;
      }
      case 'list-hospitals': {
        const hospitals = await listHospitals(firestore);
        if (hospitals.length === 0) console.log('No hospitals are registered.');
        for (const hospital of hospitals) {
          console.log(
            `${hospital.hospitalId}  ${hospital.status}  expires ${hospital.expiresAt.toISOString()}  keys ${Object.keys(hospital.publicKeys).join(', ')}`,
          );
        }
        return EXIT.OK;
      }
      case 'suspend-hospital': {
        if (!values.id) throw new UsageError('suspend-hospital needs --id');
        await suspendHospital(firestore, values.id);
        console.log(`Suspended ${values.id}.`);
        return EXIT.OK;
      }
      case 'retention': {
        if (!values.id) throw new UsageError('retention needs --id');
        const { before, after } = await retentionPolicy(firestore, {
          hospitalId: values.id,
          changes: parsePolicyChanges(values.set),
          ...(values.operator ? { operator: values.operator } : {}),
          now: new Date(),
        });
        for (const name of RETENTION_SETTINGS) {
          const [, min, max] = RETENTION_BOUNDS[name];
          const changed = before[name] !== after[name] ? `  (was ${before[name]})` : '';
          console.log(
            `${name.padEnd(24)} ${String(after[name]).padStart(5)}   bounds ${min}..${max}${changed}`,
          );
        }
        return EXIT.OK;
      }
      case 'function-keys': {
        for (const key of await publishedFunctionKeys(firestore)) {
          console.log(`${key.functionName.padEnd(10)} ${key.publicKey.toBase64Url()}`);
        }
        return EXIT.OK;
      }
      case 'provision-function-keys': {
        // No local principal: the caller wraps as themselves (a custodian's ADC, locally the owner).
        const kms = createKms(environment.env);
        let results;
        try {
          results = await provisionKeys(firestore, kms, {
            projectId,
            ...(values.function === undefined ? {} : { functionName: values.function }),
          });
        } catch (error) {
          const failure = functionKeyFailure(error);
          if (!failure) throw error;
          process.stderr.write(`cb-admin: ${failure.message}\n`);
          return failure.exitCode;
        } finally {
          await kms.close();
        }
        if (values.json) {
          const report = results.map((key) => ({
            functionName: key.functionName,
            created: key.created,
            publicKey: key.publicKey.toBase64Url(),
            kmsKeyVersion: key.kmsKeyVersion,
            createdAt: key.createdAt.toISOString(),
          }));
          console.log(JSON.stringify(report, null, 2));
        } else {
          for (const key of results) {
            console.log(
              `${key.functionName.padEnd(10)} ${key.created ? 'created        ' : 'already present'} ${key.publicKey.toBase64Url()}`,
            );
          }
        }
        return EXIT.OK;
      }
      case 'run-retention': {
        const run = await runRetention(requireEnv(environment, 'FUNCTIONS_BASE_URL'), {
          ...(values.job ? { jobId: values.job } : {}),
        });
        const receipt = verifyDeletionReceipt(
          run.receipt,
          await publishedFunctionKey(firestore, 'retention'),
        );
        const counts = deletionCounts(receipt);
        console.log(
          `${receipt.jobId}${run.alreadyDone ? ' (already done)' : ''}: ${receipt.complete ? 'complete' : 'PARTIAL, run again'}`,
        );
        for (const [kind, count] of Object.entries(counts)) console.log(`  ${kind.padEnd(12)} ${count}`);
        return EXIT.OK;
      }
      case 'audit-verify': {
        const objects = createLogObjects(
          createBlobStore(createStorage(projectId, environment.env)),
          bucketName(loadCatalog(), 'tlog', projectId),
        );
        const report = await verifyAuditLogs(firestore, objects, {
          ...(values.log !== undefined ? { logId: values.log } : {}),
          ...(values['log-key'] !== undefined ? { logKey: values['log-key'] } : {}),
          apiBase: values['api-base'] ?? requireEnv(environment, 'FUNCTIONS_BASE_URL'),
          now: new Date(),
        });
        if (values.json) console.log(JSON.stringify(report, null, 2));
        else {
          console.log(
            report.keySource === 'pinned'
              ? `Checkpoints checked with the pinned log key ${values['log-key']}.`
              : "Checkpoints checked with each log's key as the registry (auditLogs) holds it: only as trustworthy as the database; pin it with --log-key.",
          );
          for (const { logId, verdict } of report.logs) console.log(describeLogVerdict(logId, verdict));
          if (report.logs.length === 0) console.log('No audit logs yet.');
        }
        return report.logs.every((log) => log.verdict.ok) ? EXIT.OK : EXIT.REFUSED;
      }
      default:
        throw new UsageError(`unknown command ${command} (see --help)`);
    }
  } finally {
    await firestore.terminate();
  }
});
