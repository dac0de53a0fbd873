// infra/ read with HashiCorp's HCL parser (@cdktf/hcl2json), expanded per environment the way
// `terraform plan` lays it out (./lib/terraform.ts), and held to the least-privilege policy
// (./lib/policy.ts) together with infra/catalog.json. A change that widens access fails here;
// fixtures.test.ts shows each check failing on a deliberately wrong configuration.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { serviceAccountPrincipal } from '../../shared/emulation.ts';
import { bucketName, cryptoKeyName, loadCatalog } from '../../shared/runtime/catalog.ts';
import { isObject, type ValueObject } from './lib/hcl-eval.ts';
import { collectGrants, type Grant } from './lib/iam.ts';
import {
  ENVIRONMENTS,
  PROJECT_ID,
  REPO_ROOT,
  baseTree,
  defaultVariables,
  planEnvironment,
  type Environment,
} from './lib/load.ts';
import {
  CHECKS,
  DEFAULT_ALGORITHM,
  KEPT_INDEFINITELY,
  runCheck,
  runChecks,
  type PolicyInput,
} from './lib/policy.ts';
import { parseTf, type PlannedResource } from './lib/terraform.ts';

const catalog = loadCatalog();
const plans = new Map<Environment, PolicyInput>();

beforeAll(async () => {
  for (const env of ENVIRONMENTS) plans.set(env, await planEnvironment(env));
});

function input(env: Environment): PolicyInput {
  return plans.get(env)!;
}

function resources(env: Environment, type: string): PlannedResource[] {
  return input(env).plan.resources.filter((r) => r.mode === 'managed' && r.type === type);
}

function first(values: ValueObject, name: string): ValueObject {
  const list = values[name];
  const item = Array.isArray(list) ? list[0] : undefined;
  if (!item || !isObject(item)) throw new Error(`no ${name} block`);
  return item;
}

function grantsOf(env: Environment): Grant[] {
  return collectGrants(input(env).plan).grants;
}

describe('the configuration', () => {
  it("parses: every .tf file under infra/ with HashiCorp's HCL parser", async () => {
    const tree = baseTree();
    const files = tree.allTfFiles();
    expect(files.length).toBeGreaterThan(20);
    for (const file of files) await expect(parseTf(file, tree.read(file))).resolves.toBeTypeOf('object');
  });

  it('reads the catalog in exactly one place, and names no function, account or KMS role itself', async () => {
    const tree = baseTree();
    const readers: string[] = [];
    for (const file of tree.allTfFiles()) {
      const text = tree.read(file);
      if (/file\([^)]*catalog\.json/.test(text)) readers.push(file);
      for (const [name, fn] of Object.entries(catalog.functions)) {
        expect(text, `${file} hard-codes ${fn.serviceAccount}`).not.toContain(`"${fn.serviceAccount}"`);
        expect(text, `${file} hard-codes function ${name}'s key grant`).not.toMatch(
          new RegExp(`function\\["${name}"\\]`),
        );
      }
      expect(text, `${file} names a function's KMS role; it must come from the catalog`).not.toContain(
        'roles/cloudkms.cryptoKeyDecrypter',
      );
    }
    expect(readers).toEqual(['infra/modules/catalog/main.tf']);
    expect(tree.read('infra/modules/catalog/main.tf')).toContain(
      'jsondecode(file("${path.module}/../../catalog.json"))',
    );
  });

  // The lock file pins provider versions and checksums; ignored, each `terraform init` would
  // pick its own provider builds. Terraform itself is not needed to check this (CI has none).
  it('commits the provider lock file: no .gitignore on its way ignores .terraform.lock.hcl', () => {
    for (const env of ENVIRONMENTS) {
      const lockFile = `infra/environments/${env}/.terraform.lock.hcl`;
      for (const dir of ['', 'infra/', 'infra/environments/', `infra/environments/${env}/`]) {
        const patterns = gitignorePatterns(join(REPO_ROOT, dir, '.gitignore'));
        expect(ignores(patterns, lockFile.slice(dir.length)), `${dir}.gitignore ignores ${lockFile}`).toBe(
          false,
        );
      }
    }
  });

  it('the lock-file check recognises the patterns that would ignore it', () => {
    const lockFile = 'environments/dev/.terraform.lock.hcl';
    for (const pattern of [
      '.terraform.lock.hcl',
      '*.hcl',
      '.terraform*',
      '**/*.lock.hcl',
      'environments/*/.terraform.lock.hcl',
    ]) {
      expect(ignores([pattern], lockFile), pattern).toBe(true);
    }
    for (const pattern of ['.terraform/', '*.tfstate', 'terraform.tfvars', '/.terraform.lock.hcl']) {
      expect(ignores([pattern], lockFile), pattern).toBe(false);
    }
    expect(ignores(['*.hcl', '!.terraform.lock.hcl'], lockFile)).toBe(false);
  });
});

describe.each(ENVIRONMENTS)('infra/environments/%s', (env) => {
  it.each(Object.keys(CHECKS))('passes the "%s" policy check', (name) => {
    expect(runCheck(name, input(env))).toEqual([]);
  });

  it("derives the function-key IAM from the catalog: for_each over its grants, each grant's own role", () => {
    const policies = resources(env, 'google_kms_crypto_key_iam_policy').filter(
      (r) => r.name === 'function_key',
    );
    expect(policies.map((p) => p.config.for_each)).toEqual(policies.map(() => '${var.function_keys}'));
    const data = input(env).plan.resources.filter((r) => r.mode === 'data' && r.name === 'function_key');
    const dynamicBinding = (
      data[0]!.config.dynamic as Record<string, { for_each: string; content: { role: string }[] }[]>
    ).binding![0]!;
    expect(dynamicBinding.for_each).toBe('${local.function_key_bindings[each.key]}');
    expect(dynamicBinding.content[0]!.role).toBe('${binding.key}');
    // One key (and one authoritative policy) per distinct catalog key, nothing more.
    const catalogKeys = [
      ...new Set(Object.values(catalog.functions).flatMap((fn) => fn.kms.map((g) => g.key))),
    ].sort();
    expect(policies.map((p) => p.key).sort()).toEqual(catalogKeys);
  });

  it('gives each function exactly one KMS grant: its catalog role, on its own key, to its own account', () => {
    const kms = grantsOf(env).filter((g) => g.kind === 'kms-key' || g.kind === 'kms-key-ring');
    for (const [name, fn] of Object.entries(catalog.functions)) {
      const member = serviceAccountPrincipal(fn.serviceAccount, PROJECT_ID);
      const held = kms
        .filter((g) => g.member === member)
        .map((g) => ({ resource: g.resource, role: g.role }));
      const granted = fn.kms.map((g) => ({
        resource: cryptoKeyName(catalog, g.key, PROJECT_ID),
        role: g.role,
      }));
      expect(held, name).toEqual(granted);
    }
  });

  it("puts no function's account in another function's key policy", () => {
    const members = new Map(
      Object.values(catalog.functions).map((fn) => [
        serviceAccountPrincipal(fn.serviceAccount, PROJECT_ID),
        fn,
      ]),
    );
    for (const grant of grantsOf(env).filter((g) => g.kind === 'kms-key')) {
      const fn = members.get(grant.member);
      if (!fn) continue;
      const own = fn.kms.map((g) => cryptoKeyName(catalog, g.key, PROJECT_ID));
      expect(own, `${grant.member} on ${grant.resource}`).toContain(grant.resource);
    }
  });

  it('has no primitive role and no allUsers/allAuthenticatedUsers outside the public HTTP endpoints', () => {
    for (const grant of grantsOf(env)) {
      expect(['roles/owner', 'roles/editor', 'roles/viewer']).not.toContain(grant.role);
      if (grant.member === 'allUsers') {
        expect(grant).toMatchObject({ kind: 'run-service', role: 'roles/run.invoker' });
        expect(catalog.functions[grant.resource]).toMatchObject({
          access: 'public',
          trigger: { type: 'http' },
        });
      }
      expect(grant.member).not.toBe('allAuthenticatedUsers');
    }
    const publicFunctions = grantsOf(env)
      .filter((g) => g.member === 'allUsers')
      .map((g) => g.resource)
      .sort();
    expect(publicFunctions).toEqual(['pairing', 'records']);
  });

  it('hardens every bucket: uniform access, public access prevention, CMEK, no versioning, a lifecycle backstop', () => {
    const buckets = resources(env, 'google_storage_bucket');
    expect(buckets.map((b) => b.values.name).sort()).toEqual(
      [
        ...Object.keys(catalog.buckets).map((role) => bucketName(catalog, role, PROJECT_ID)),
        `${PROJECT_ID}-functions-source`,
      ].sort(),
    );
    for (const bucket of buckets) {
      expect(bucket.values).toMatchObject({
        uniform_bucket_level_access: true,
        public_access_prevention: 'enforced',
      });
      expect(first(bucket.values, 'versioning').enabled).toBe(false);
      expect(String(first(bucket.values, 'encryption').default_kms_key_name)).toMatch(
        /\/keyRings\/clinic-bridge-cmek\/cryptoKeys\/bucket-/,
      );
    }
  });

  it('keeps the transparency logs indefinitely: no lifecycle rule deletes from tlog, every other bucket has an age backstop', () => {
    expect([...KEPT_INDEFINITELY]).toEqual(['tlog']);
    const deleteRules = (bucket: PlannedResource) =>
      ((bucket.values.lifecycle_rule ?? []) as ValueObject[])
        .filter((rule) => first(rule, 'action').type === 'Delete')
        .map((rule) => first(rule, 'condition'));
    const buckets = resources(env, 'google_storage_bucket');
    for (const bucket of buckets) {
      const rules = deleteRules(bucket);
      if (bucket.key === 'tlog') {
        expect(bucket.values.name).toBe(bucketName(catalog, 'tlog', PROJECT_ID));
        expect(rules, 'tlog').toEqual([]);
        // Abandoned uploads are still dropped: they are not objects anyone can read.
        expect(
          ((bucket.values.lifecycle_rule ?? []) as ValueObject[]).map((r) => first(r, 'action').type),
        ).toEqual(['AbortIncompleteMultipartUpload']);
      } else {
        expect(
          rules.some((c) => typeof c.age === 'number' && c.age > 0),
          String(bucket.key),
        ).toBe(true);
        expect(rules.some((c) => c.days_since_custom_time === 1)).toBe(true);
      }
    }
    expect(buckets.map((b) => b.key)).toContain('tlog');
    // Its own CMEK key, as every bucket has, usable only by Cloud Storage's service agent.
    const cmek = resources(env, 'google_kms_crypto_key').find((k) => k.key === 'bucket-tlog');
    expect(cmek?.values.purpose).toBe('ENCRYPT_DECRYPT');
    expect(first(buckets.find((b) => b.key === 'tlog')!.values, 'encryption').default_kms_key_name).toBe(
      cmek!.values.id,
    );
  });

  it("creates each function key with the catalog's purpose and algorithm; only symmetric keys rotate", () => {
    const keys = resources(env, 'google_kms_crypto_key').filter((k) => k.name === 'function');
    const grants = Object.values(catalog.functions).flatMap((fn) => fn.kms);
    expect(keys.map((k) => k.key).sort()).toEqual(grants.map((g) => g.key).sort());
    for (const grant of grants) {
      const key = keys.find((k) => k.key === grant.key)!;
      const template = first(key.values, 'version_template');
      expect(key.values.purpose, grant.key).toBe(grant.purpose);
      expect(template.algorithm, grant.key).toBe(grant.algorithm ?? DEFAULT_ALGORITHM[grant.purpose]);
      expect(template.protection_level).toBe(env === 'prod' ? 'HSM' : 'SOFTWARE');
      if (grant.purpose === 'ENCRYPT_DECRYPT') expect(key.values.rotation_period).toBe('7776000s');
      else expect(key.values.rotation_period ?? null, grant.key).toBeNull();
    }
    // The sequencer's checkpoint key: Ed25519, signed by the sequencer alone.
    const sequencer = keys.find((k) => k.key === 'sequencer')!;
    expect(sequencer.values.purpose).toBe('ASYMMETRIC_SIGN');
    expect(first(sequencer.values, 'version_template').algorithm).toBe('EC_SIGN_ED25519');
    expect(sequencer.values.rotation_period ?? null).toBeNull();
  });

  it('lets each hospital create objects in the ingest bucket only under hospitals/<id>/, and only ingest read it', () => {
    const ingest = bucketName(catalog, 'ingest', PROJECT_ID);
    const onIngest = grantsOf(env).filter((g) => g.kind === 'bucket' && g.resource === ingest);
    const creators = onIngest.filter((g) => g.role === 'roles/storage.objectCreator');
    expect(creators.map((g) => [g.member, g.condition?.expression]).sort()).toEqual(
      Object.entries(input(env).hospitals)
        .map(([id, member]) => [
          member,
          `resource.name.startsWith("projects/_/buckets/${ingest}/objects/hospitals/${id}/")`,
        ])
        .sort(),
    );
    const readers = onIngest.filter((g) => g.role.endsWith('/cbUploadConsumer'));
    expect(readers.map((g) => g.member)).toEqual([
      serviceAccountPrincipal(catalog.functions.ingest!.serviceAccount, PROJECT_ID),
    ]);
  });

  it('encrypts Firestore with CMEK and provisions TTL and indexes from firestore.indexes.json', () => {
    const [db] = resources(env, 'google_firestore_database');
    expect(String(first(db!.values, 'cmek_config').kms_key_name)).toMatch(/cryptoKeys\/firestore$/);
    const ttl = resources(env, 'google_firestore_field').map(
      (f) => `${String(f.values.collection)}.${String(f.values.field)}`,
    );
    expect(ttl).toContain('records.expiresAt');
    expect(ttl).not.toContain('functionKeys.expiresAt');
    expect(resources(env, 'google_firestore_index')).toHaveLength(input(env).indexes.indexes!.length);
  });

  it('runs every function on nodejs22 as its own account', () => {
    for (const fn of resources(env, 'google_cloudfunctions2_function')) {
      const name = String(fn.values.name);
      expect(first(fn.values, 'build_config').runtime).toBe('nodejs22');
      expect(first(fn.values, 'service_config').service_account_email).toBe(
        `${catalog.functions[name]!.serviceAccount}@${PROJECT_ID}.iam.gserviceaccount.com`,
      );
    }
  });

  it("runs each scheduled function (retention, sequencer) from Cloud Scheduler with OIDC, at the catalog's cron and time zone", () => {
    const scheduled = Object.entries(catalog.functions).filter(([, fn]) => fn.trigger.type === 'schedule');
    expect(scheduled.map(([name]) => name).sort()).toEqual(['retention', 'sequencer']);
    const jobs = resources(env, 'google_cloud_scheduler_job');
    expect(jobs.map((j) => j.key).sort()).toEqual(['retention', 'sequencer']);
    for (const [name, fn] of scheduled) {
      if (fn.trigger.type !== 'schedule') continue;
      const job = jobs.find((j) => j.key === name)!;
      expect(job.values).toMatchObject({ schedule: fn.trigger.cron, time_zone: fn.trigger.timeZone });
      const target = first(job.values, 'http_target');
      expect(first(target, 'oidc_token')).toMatchObject({
        service_account_email: `cb-scheduler@${PROJECT_ID}.iam.gserviceaccount.com`,
        audience: target.uri,
      });
      expect(target.oauth_token).toBeUndefined();
      const service = first(
        resources(env, 'google_cloudfunctions2_function').find((f) => f.key === name)!.values,
        'service_config',
      );
      expect(service.ingress_settings).toBe('ALLOW_INTERNAL_ONLY');
    }
  });

  it('turns on KMS data-access audit logs', () => {
    const audit = resources(env, 'google_project_iam_audit_config').find(
      (a) => a.values.service === 'cloudkms.googleapis.com',
    );
    const types = (audit!.values.audit_log_config as ValueObject[]).map((c) => c.log_type);
    expect(types).toEqual(expect.arrayContaining(['DATA_READ', 'DATA_WRITE']));
  });
});

describe('key custodians', () => {
  it('get Encrypt-only on the keys that wrap Themis keys, and nothing on a signing key', async () => {
    const custodian = 'group:clinic-bridge-custodians@example.org';
    const plan = await planEnvironment('prod', {
      variables: defaultVariables({ key_custodians: [custodian] }),
    });
    expect(runChecks(plan)).toEqual([]);
    const held = collectGrants(plan.plan)
      .grants.filter((g) => g.member === custodian)
      .map((g) => `${g.resource} ${g.role}`)
      .sort();
    const symmetric = Object.values(catalog.functions).flatMap((fn) =>
      fn.kms.filter((g) => g.purpose === 'ENCRYPT_DECRYPT').map((g) => g.key),
    );
    expect(symmetric).not.toContain('sequencer');
    expect(held).toEqual(
      symmetric
        .map((key) => `${cryptoKeyName(catalog, key, PROJECT_ID)} roles/cloudkms.cryptoKeyEncrypter`)
        .sort(),
    );
  });
});

describe('dev and prod differ deliberately', () => {
  const key = (env: Environment) =>
    first(
      resources(env, 'google_kms_crypto_key').find((k) => k.key === 'pairing')!.values,
      'version_template',
    );
  const softDelete = (env: Environment, role: string) =>
    first(resources(env, 'google_storage_bucket').find((b) => b.key === role)!.values, 'soft_delete_policy')
      .retention_duration_seconds;
  const service = (env: Environment, name: string) =>
    first(
      resources(env, 'google_cloudfunctions2_function').find((f) => f.key === name)!.values,
      'service_config',
    );
  const db = (env: Environment) => resources(env, 'google_firestore_database')[0]!.values;

  it('prod keeps every key in an HSM; dev uses software keys', () => {
    expect(key('prod').protection_level).toBe('HSM');
    expect(key('dev').protection_level).toBe('SOFTWARE');
    for (const k of resources('prod', 'google_kms_crypto_key'))
      expect(first(k.values, 'version_template').protection_level).toBe('HSM');
  });

  it('prod keeps deleted records and log objects restorable for 7 days; dev and transient buckets do not soft-delete', () => {
    expect(softDelete('prod', 'records')).toBe(7 * 86400);
    expect(softDelete('prod', 'tlog')).toBe(7 * 86400);
    expect(softDelete('prod', 'ingest')).toBe(0);
    for (const role of ['ingest', 'records', 'outbox', 'quarantine', 'tlog', 'source'])
      expect(softDelete('dev', role)).toBe(0);
  });

  it('prod keeps the device-facing functions warm', () => {
    expect(service('prod', 'pairing').min_instance_count).toBeGreaterThanOrEqual(1);
    expect(service('prod', 'records').min_instance_count).toBeGreaterThanOrEqual(1);
    expect(service('dev', 'records').min_instance_count).toBe(0);
  });

  it('prod protects Firestore (PITR, delete protection, daily backups); dev does not', () => {
    expect(db('prod')).toMatchObject({
      point_in_time_recovery_enablement: 'POINT_IN_TIME_RECOVERY_ENABLED',
      delete_protection_state: 'DELETE_PROTECTION_ENABLED',
    });
    expect(resources('prod', 'google_firestore_backup_schedule')).toHaveLength(1);
    expect(db('dev').delete_protection_state).toBe('DELETE_PROTECTION_DISABLED');
    expect(resources('dev', 'google_firestore_backup_schedule')).toHaveLength(0);
  });
});

/** A .gitignore's patterns, or none when the file does not exist. */
function gitignorePatterns(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return [];
    throw error;
  }
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/**
 * Whether gitignore `patterns` ignore the file at `path` (relative to the .gitignore): the
 * subset of gitignore(5) these files use — `*`, `?`, `**`, anchoring by a slash, directory-only
 * patterns and `!` negation, the last matching pattern winning.
 */
function ignores(patterns: readonly string[], path: string): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    let pattern = negated ? raw.slice(1) : raw;
    if (pattern.endsWith('/')) continue; // matches directories only; the lock file is a file
    const anchored = pattern.includes('/');
    pattern = pattern.replace(/^\//, '');
    const source = pattern
      .split(/(\*\*\/|\*|\?)/)
      .map((part) =>
        part === '**/'
          ? '(?:.*/)?'
          : part === '*'
            ? '[^/]*'
            : part === '?'
              ? '[^/]'
              : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
      )
      .join('');
    const regex = new RegExp(anchored ? `^${source}$` : `(?:^|/)${source}$`);
    if (regex.test(path)) ignored = !negated;
  }
  return ignored;
}
