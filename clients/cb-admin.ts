#!/usr/bin/env -S node --max-semi-space-size=2 --max-old-space-size=96 --liftoff-only --no-opt --no-maglev --expose-gc
// cb-admin: the operator's tool (talks to Firestore with project credentials). Parses the
// command line, calls clients/admin/ and prints; nothing else.
import { chmod, writeFile } from 'node:fs/promises';
import { Option } from 'commander';
import type { Firestore } from '@google-cloud/firestore';
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
import { EXIT, UsageError } from './lib/cli.ts';
import { collect, createProgram, onRun, printJson, runBin } from './lib/cli-program.ts';
import { loadClientEnvironment, requireEnv, type ClientEnvironment } from './lib/environment.ts';
import { assertStackReachable } from './lib/reachability.ts';

/** Options every command takes, before or after its name. */
interface Globals {
  readonly env?: string;
}

interface JsonOption extends Globals {
  readonly json?: boolean;
}

const program = createProgram(
  'cb-admin',
  'Operate Clinic Bridge (the operator’s tool; talks to Firestore with project credentials).',
)
  .option(
    '--env <file>',
    'the stack environment (default: $CB_STACK_ENV, then .data/stack.env from `npm start`)',
  )
  .addHelpText(
    'after',
    `
A value that may begin with '-' (a base64url key) can be attached with '=': --witness-key=KEY.

Exit codes: 0 done, 1 failure (a service unreachable: SERVICE_UNREACHABLE, with its URL),
2 usage, 3 refused (a stable code is printed, e.g. KEY_ACCESS_DENIED when provisioning lacks
Encrypt on a function key).`,
  );

/**
 * Runs `act` with a Firestore client on the configured project, after checking that the local
 * endpoints it will use answer (a stopped stack is reported in seconds, not after the Google
 * clients' retries); the client is closed whatever happens.
 */
async function withFirestore(
  options: Globals,
  endpoints: readonly string[],
  act: (firestore: Firestore, environment: ClientEnvironment, projectId: string) => Promise<number>,
): Promise<number> {
  const environment = loadClientEnvironment(options.env);
  const projectId = requireEnv(environment, 'GCLOUD_PROJECT');
  await assertStackReachable(environment.env, ['FIRESTORE_EMULATOR_HOST', ...endpoints]);
  const firestore = createFirestore(projectId, environment.env);
  try {
    return await act(firestore, environment, projectId);
  } finally {
    await firestore.terminate();
  }
}

// ---- Hospitals ----

interface RegisterOptions extends JsonOption {
  readonly id?: string;
  readonly publicKey?: string;
  readonly expiresDays: string;
  readonly apiBase?: string;
  readonly out?: string;
}
onRun<RegisterOptions>(
  program
    .command('register-hospital')
    .summary('Register a hospital’s public key; prints its connector configuration')
    .description(
      'Register (or re-register) a hospital’s public key (base64url, from `cb-connector keys`). Its uploads go under hospitals/ID/ in the ingest bucket. Prints the configuration to hand to the hospital’s connector (`cb-connector configure --from FILE` reads the --json form or the --out file).',
    )
    .option('--id <id>', 'the hospital id (required)')
    .option('--public-key <key>', 'the hospital’s public key (required)')
    .option('--expires-days <days>', 'the registration expires after this many days', '365')
    .option('--api-base <url>', 'the functions’ base URL (default: FUNCTIONS_BASE_URL)')
    .option('--out <file>', 'also write the configuration as JSON to this owner-only file')
    .option('--json', 'print the configuration as JSON'),
  async (options) => {
    if (!options.id || !options.publicKey)
      throw new UsageError('register-hospital needs --id and --public-key');
    const { id, publicKey } = options;
    return withFirestore(options, [], async (firestore, environment, projectId) => {
      const onboarding = await registerHospital(firestore, {
        hospitalId: id,
        publicKey,
        expiresDays: Number(options.expiresDays),
        apiBase: options.apiBase ?? requireEnv(environment, 'FUNCTIONS_BASE_URL'),
        projectId,
        now: new Date(),
      });
      if (options.out) {
        await writeFile(options.out, `${JSON.stringify(onboarding, null, 2)}\n`, { mode: 0o600 });
        await chmod(options.out, 0o600); // the mode above applies only to a file it creates
      }
      if (options.json) printJson(onboarding);
      else {
        console.log(
          `Registered ${onboarding.hospitalId}; its uploads go to gs://${onboarding.ingestBucket}/hospitals/${onboarding.hospitalId}/`,
        );
        if (options.out) console.log(`Connector configuration written to ${options.out}.`);
        else {
          console.log('Give the hospital this connector configuration (or use --json or --out):');
          for (const [name, value] of Object.entries(onboarding)) console.log(`  ${name}: ${value}`);
        }
      }
      return EXIT.OK;
    });
  },
);

onRun<JsonOption>(
  program
    .command('list-hospitals')
    .description('Hospitals with status, key fingerprints and expiry (no secrets).')
    .option('--json', 'print {hospitals: [{hospitalId, status, expiresAt, keys}]}'),
  async (options) =>
    withFirestore(options, [], async (firestore) => {
      const hospitals = await listHospitals(firestore);
      if (options.json) {
        printJson({
          hospitals: hospitals.map((hospital) => ({
            hospitalId: hospital.hospitalId,
            status: hospital.status,
            expiresAt: hospital.expiresAt.toISOString(),
            keys: Object.keys(hospital.publicKeys),
          })),
        });
        return EXIT.OK;
      }
      if (hospitals.length === 0) console.log('No hospitals are registered.');
      for (const hospital of hospitals) {
        console.log(
          `${hospital.hospitalId}  ${hospital.status}  expires ${hospital.expiresAt.toISOString()}  keys ${Object.keys(hospital.publicKeys).join(', ')}`,
        );
      }
      return EXIT.OK;
    }),
);

interface IdOption extends Globals {
  readonly id?: string;
}
onRun<IdOption>(
  program
    .command('suspend-hospital')
    .description('Refuse the hospital’s requests and uploads from now on.')
    .option('--id <id>', 'the hospital id (required)'),
  async (options) => {
    if (!options.id) throw new UsageError('suspend-hospital needs --id');
    const id = options.id;
    return withFirestore(options, [], async (firestore) => {
      await suspendHospital(firestore, id);
      console.log(`Suspended ${id}.`);
      return EXIT.OK;
    });
  },
);

interface RetentionOptions extends JsonOption {
  readonly id?: string;
  readonly set: string[];
  readonly operator?: string;
}
onRun<RetentionOptions>(
  program
    .command('retention')
    .summary('Show or change a hospital’s retention policy (audited)')
    .description(
      'Show the hospital’s retention policy, or change settings within their bounds (each change is written to the audit trail with --operator).',
    )
    .option('--id <id>', 'the hospital id (required)')
    .option(
      '--set <name=number>',
      `change a setting (repeatable): ${RETENTION_SETTINGS.join(', ')}`,
      collect,
      [],
    )
    .option('--operator <name>', 'who changes it (required with --set)')
    .option('--json', 'print {policy: {name: {value, min, max, was?}}}'),
  async (options) => {
    if (!options.id) throw new UsageError('retention needs --id');
    const hospitalId = options.id;
    const changes = parsePolicyChanges(options.set);
    return withFirestore(options, [], async (firestore) => {
      const { before, after } = await retentionPolicy(firestore, {
        hospitalId,
        changes,
        ...(options.operator ? { operator: options.operator } : {}),
        now: new Date(),
      });
      if (options.json) {
        const policy: Record<string, unknown> = {};
        for (const name of RETENTION_SETTINGS) {
          const [, min, max] = RETENTION_BOUNDS[name];
          policy[name] = {
            value: after[name],
            min,
            max,
            ...(before[name] !== after[name] ? { was: before[name] } : {}),
          };
        }
        printJson({ hospitalId, policy });
        return EXIT.OK;
      }
      for (const name of RETENTION_SETTINGS) {
        const [, min, max] = RETENTION_BOUNDS[name];
        const changed = before[name] !== after[name] ? `  (was ${before[name]})` : '';
        console.log(
          `${name.padEnd(24)} ${String(after[name]).padStart(5)}   bounds ${min}..${max}${changed}`,
        );
      }
      return EXIT.OK;
    });
  },
);

// ---- Function keys ----

onRun<JsonOption>(
  program
    .command('function-keys')
    .description('Each function’s published public key (receipts verify with them).')
    .option('--json', 'print [{functionName, publicKey}]'),
  async (options) =>
    withFirestore(options, [], async (firestore) => {
      const keys = await publishedFunctionKeys(firestore);
      if (options.json) {
        printJson(
          keys.map((key) => ({ functionName: key.functionName, publicKey: key.publicKey.toBase64Url() })),
        );
      } else {
        for (const key of keys) console.log(`${key.functionName.padEnd(10)} ${key.publicKey.toBase64Url()}`);
      }
      return EXIT.OK;
    }),
);

interface ProvisionOptions extends JsonOption {
  readonly function?: string;
}
onRun<ProvisionOptions>(
  program
    .command('provision-function-keys')
    .summary('Create each function’s signing key that is missing (create-only)')
    .description(
      'Create the Themis key pair of every function that has none (or of --function NAME), wrapped by that function’s own KMS key, and say per function whether it was created or already present. Create-only: an existing key is never replaced, so running it again is safe. Needs Encrypt on the function keys and Firestore write (a key custodian: docs/OPERATIONS.md, step 8).',
    )
    .option('--function <name>', 'one function only')
    .option('--json', 'print [{functionName, created, publicKey, kmsKeyVersion, createdAt}]'),
  async (options) =>
    withFirestore(options, ['KMS_EMULATOR_HOST'], async (firestore, environment, projectId) => {
      // No local principal: the caller wraps as themselves (a custodian's ADC, locally the owner).
      const kms = createKms(environment.env);
      let results;
      try {
        results = await provisionKeys(firestore, kms, {
          projectId,
          ...(options.function === undefined ? {} : { functionName: options.function }),
        });
      } catch (error) {
        const failure = functionKeyFailure(error);
        if (!failure) throw error;
        process.stderr.write(`cb-admin: ${failure.message}\n`);
        return failure.exitCode;
      } finally {
        await kms.close();
      }
      if (options.json) {
        printJson(
          results.map((key) => ({
            functionName: key.functionName,
            created: key.created,
            publicKey: key.publicKey.toBase64Url(),
            kmsKeyVersion: key.kmsKeyVersion,
            createdAt: key.createdAt.toISOString(),
          })),
        );
      } else {
        for (const key of results) {
          console.log(
            `${key.functionName.padEnd(10)} ${key.created ? 'created        ' : 'already present'} ${key.publicKey.toBase64Url()}`,
          );
        }
      }
      return EXIT.OK;
    }),
);

// ---- Retention runs and the audit logs ----

interface RunRetentionOptions extends JsonOption {
  readonly job?: string;
}
onRun<RunRetentionOptions>(
  program
    .command('run-retention')
    .summary('Run retention now and print its signed deletion receipt’s counts')
    .description(
      'Run the retention function now (it also runs nightly) and print its signed deletion receipt’s counts. The same --job ID resumes a run that was cut short, or hands back its receipt.',
    )
    .option('--job <id>', 'the run’s id (default: a new one)')
    .option('--json', 'print {jobId, complete, alreadyDone, counts}'),
  async (options) =>
    withFirestore(options, ['FUNCTIONS_BASE_URL'], async (firestore, environment) => {
      const run = await runRetention(requireEnv(environment, 'FUNCTIONS_BASE_URL'), {
        ...(options.job ? { jobId: options.job } : {}),
      });
      const receipt = verifyDeletionReceipt(run.receipt, await publishedFunctionKey(firestore, 'retention'));
      const counts = deletionCounts(receipt);
      if (options.json) {
        printJson({ jobId: receipt.jobId, complete: receipt.complete, alreadyDone: run.alreadyDone, counts });
        return EXIT.OK;
      }
      console.log(
        `${receipt.jobId}${run.alreadyDone ? ' (already done)' : ''}: ${receipt.complete ? 'complete' : 'PARTIAL, run again'}`,
      );
      for (const [kind, count] of Object.entries(counts)) console.log(`  ${kind.padEnd(12)} ${count}`);
      return EXIT.OK;
    }),
);

interface AuditVerifyOptions extends JsonOption {
  readonly log?: string;
  readonly logKey?: string;
  readonly apiBase?: string;
  readonly chain?: string;
  readonly retentionKey?: string;
}
onRun<AuditVerifyOptions>(
  program
    .command('audit-verify')
    .summary('Verify every audit transparency log in full')
    .description(
      'Verify every audit transparency log in full; or --log ID) in full: the checkpoint’s signature, every tile recomputed from the entry bundles up to the signed root, every entry document against its leaf (edited, deleted, inserted, reordered or duplicated entries), and the hospital witness’s cosigned checkpoint consistent with the tree. Entries below a checkpoint the witness cosigned five years ago may be pruned. Pin the log key with --log-key (record it at deployment, outside the project); without it each log’s key is read from the registry (auditLogs), which is only as trustworthy as the database an attacker would have edited.',
    )
    .option('--log <id>', 'one log only')
    .option('--log-key <key>', 'the pinned log key')
    .option('--api-base <url>', 'the functions’ base URL (default: FUNCTIONS_BASE_URL)')
    .option('--json', 'print the report as JSON')
    // Options of earlier versions, kept so that a script using them is told what replaced them.
    .addOption(new Option('--chain <id>').hideHelp())
    .addOption(new Option('--retention-key <key>').hideHelp()),
  async (options) => {
    if (options.chain !== undefined)
      throw new UsageError('--chain is gone: audit-verify --log ID picks one log');
    if (options.retentionKey !== undefined) {
      throw new UsageError(
        '--retention-key is gone: checkpoints are signed with the log key now; pin it with --log-key',
      );
    }
    return withFirestore(options, ['STORAGE_EMULATOR_HOST'], async (firestore, environment, projectId) => {
      const objects = createLogObjects(
        createBlobStore(createStorage(projectId, environment.env)),
        bucketName(loadCatalog(), 'tlog', projectId),
      );
      const report = await verifyAuditLogs(firestore, objects, {
        ...(options.log !== undefined ? { logId: options.log } : {}),
        ...(options.logKey !== undefined ? { logKey: options.logKey } : {}),
        apiBase: options.apiBase ?? requireEnv(environment, 'FUNCTIONS_BASE_URL'),
        now: new Date(),
      });
      if (options.json) printJson(report);
      else {
        console.log(
          report.keySource === 'pinned'
            ? `Checkpoints checked with the pinned log key ${options.logKey}.`
            : "Checkpoints checked with each log's key as the registry (auditLogs) holds it: only as trustworthy as the database; pin it with --log-key.",
        );
        for (const { logId, verdict } of report.logs) console.log(describeLogVerdict(logId, verdict));
        if (report.logs.length === 0) console.log('No audit logs yet.');
      }
      return report.logs.every((log) => log.verdict.ok) ? EXIT.OK : EXIT.REFUSED;
    });
  },
);

interface AuditMonitorOptions extends JsonOption {
  readonly apiBase?: string;
  readonly hospital?: string;
  readonly logKey?: string;
  readonly witnessKey?: string;
  readonly witnessed?: string;
  readonly state?: string;
  readonly bucket?: string;
}
onRun<AuditMonitorOptions>(
  program
    .command('audit-monitor')
    .summary('The outside auditor’s check, from the tlog bucket alone')
    .description(
      'The outside auditor’s check, with read access to the tlog bucket only (on Google Cloud: storage.objects.get on that bucket, the auditor’s own role; no Firestore, no entry documents, so it never sees an event). Verifies the newest checkpoint with the pinned log key, recomputes every tile that is new since the size in --state from the entry bundles, checks the tree extends the one --state remembers (then saves the new one), and compares --witnessed, a checkpoint cosigned by the hospital’s witness (its connector has it), against the bucket’s: SPLIT_VIEW if they diverge.',
    )
    .option('--api-base <url>', 'the deployment’s functions base URL (required)')
    .option('--hospital <id>', 'the hospital whose log to check (required)')
    .option('--log-key <key>', 'the pinned log key (required)')
    .option(
      '--witness-key <key>',
      'base64url Ed25519 key, or its verifier key; attach it with =, as a base64url key may begin with -',
    )
    .option('--witnessed <file>', 'a checkpoint cosigned by the hospital’s witness')
    .option('--state <file>', 'what the previous run saw (updated)')
    .option('--bucket <name>', 'the tlog bucket (default: from infra/catalog.json)')
    .option('--json', 'print the verdict as JSON'),
  async (options) => {
    if (!options.apiBase || !options.hospital || !options.logKey) {
      throw new UsageError('audit-monitor needs --api-base, --hospital and --log-key');
    }
    const environment = loadClientEnvironment(options.env);
    // The auditor's view: the tlog bucket, read-only; no Firestore client is made.
    await assertStackReachable(environment.env, ['STORAGE_EMULATOR_HOST']);
    const bucket =
      options.bucket ?? bucketName(loadCatalog(), 'tlog', requireEnv(environment, 'GCLOUD_PROJECT'));
    const objects = createLogObjects(
      createBlobStore(createStorage(environment.env.GCLOUD_PROJECT ?? '', environment.env)),
      bucket,
    );
    const logId = options.hospital;
    const run = await runAuditMonitor(
      {
        checkpoint: async () => (await objects.checkpoint(logId))?.note,
        tile: (coord) => objects.tile(logId, coord),
        entryBundle: (index, width) => objects.entryBundle(logId, index, width),
      },
      {
        apiBase: options.apiBase,
        logId,
        logKey: options.logKey,
        ...(options.witnessKey ? { witnessKey: options.witnessKey } : {}),
        ...(options.witnessed ? { witnessedFile: options.witnessed } : {}),
        ...(options.state ? { stateFile: options.state } : {}),
      },
    );
    if (options.json) {
      const { verdict } = run;
      printJson(
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
      );
    } else console.log(describeMonitorVerdict(run.origin, run.verdict, run.previous));
    return run.verdict.ok ? EXIT.OK : EXIT.REFUSED;
  },
);

await runBin(program);
