// cb-admin: the operator's tool. Run with `npm run cb-admin -- <command>` (the repo's Node 22).
import { parseArgs } from 'node:util';
import { createFirestore, createKms } from '../shared/adapters/google-clients.ts';
import { importPublicKey } from '../shared/core/crypto/index.ts';
import { deletionCounts, verifyDeletionReceipt } from '../shared/core/protocol/index.ts';
import { RETENTION_BOUNDS, RETENTION_SETTINGS } from '../shared/retention/policy.ts';
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
  verifyAudit,
} from './admin/admin.ts';
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
  function-keys             Each function's published public key (record the retention key outside
                            the project, to pin it for audit-verify; receipts verify with them).
  provision-function-keys [--function NAME] [--json]
                            Create the Themis key pair of every function that has none (or of NAME),
                            wrapped by that function's own KMS key, and say per function whether it
                            was created or already present. Create-only: an existing key is never
                            replaced, so running it again is safe. Needs Encrypt on the function keys
                            and Firestore write (a key custodian: docs/OPERATIONS.md, step 8).
  run-retention [--job ID]  Run the retention function now (it also runs nightly) and print its
                            signed deletion receipt's counts. The same --job ID resumes a run
                            that was cut short, or hands back its receipt.
  audit-verify [--chain ID] [--retention-key KEY]
                            Check every audit chain (one per patient, one per hospital, "platform") for edited,
                            deleted, inserted or reordered events and a cut-off tail, against the
                            checkpoints the retention function signs. Pin the retention function's
                            public key with --retention-key; without it the key is read from the
                            database, which an attacker who can edit the trail could also edit.

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
  const environment = loadClientEnvironment(values.env);
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
        const pinned = values['retention-key'];
        const result = await verifyAudit(firestore, {
          ...(values.chain ? { chain: values.chain } : {}),
          ...(pinned ? { retentionKey: importPublicKey(pinned) } : {}),
        });
        console.log(
          `Checkpoints checked with ${result.pinned ? 'the pinned' : "the database's copy of the"} retention key ${result.key.fingerprint}.`,
        );
        for (const { chain, verdict } of result.chains) {
          console.log(
            verdict.ok
              ? `${chain}  ok  ${verdict.lastSeq} event(s), ${verdict.checkpointsVerified} checkpoint(s)${verdict.firstSeq > 1 ? `; events before ${verdict.firstSeq} pruned after their retention` : ''}`
              : `${chain}  ${verdict.problem} at event ${verdict.seq}`,
          );
        }
        if (result.chains.length === 0) console.log('No audit events yet.');
        return result.chains.every((c) => c.verdict.ok) ? EXIT.OK : EXIT.REFUSED;
      }
      default:
        throw new UsageError(`unknown command ${command} (see --help)`);
    }
  } finally {
    await firestore.terminate();
  }
});
