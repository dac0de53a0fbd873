// The least-privilege policy of Clinic Bridge, as checks over a planned configuration and the
// catalog. Each check returns violations (never throws on a bad configuration), so the same
// check can be shown to pass on infra/ and to fail on a deliberately wrong fixture.
import { serviceAccountEmail, serviceAccountPrincipal } from '../../../shared/emulation.ts';
import { bucketName, cryptoKeyName, type Catalog } from '../../../shared/runtime/catalog.ts';
import { Unknown, isObject, type Value, type ValueObject } from './hcl-eval.ts';
import { collectGrants, grants, rolePermissions, type Grant, type UnresolvedGrant } from './iam.ts';
import type { Plan, PlannedResource } from './terraform.ts';

export interface Violation {
  readonly check: string;
  readonly subject: string;
  readonly message: string;
}

export interface FirestoreIndexes {
  readonly indexes?: readonly {
    readonly collectionGroup: string;
    readonly queryScope?: string;
    readonly fields: readonly {
      readonly fieldPath: string;
      readonly order?: string;
      readonly arrayConfig?: string;
    }[];
  }[];
  readonly fieldOverrides?: readonly {
    readonly collectionGroup: string;
    readonly fieldPath: string;
    readonly ttl?: boolean;
  }[];
}

export interface PolicyInput {
  readonly plan: Plan;
  readonly catalog: Catalog;
  readonly projectId: string;
  readonly indexes: FirestoreIndexes;
  /** The repository's firestore.rules. */
  readonly firestoreRules: string;
  /** The hospitals the plan was made with (hospital id => connector member). */
  readonly hospitals: Readonly<Record<string, string>>;
  /** Every string value of every .tf file, as parsed (attributes anywhere, used or not; prose excluded). */
  readonly rawStrings: readonly { readonly file: string; readonly text: string }[];
}

type Check = (input: PolicyInput, derived: Derived) => Violation[];

const PRIMITIVE_ROLES = new Set(['roles/owner', 'roles/editor', 'roles/viewer']);
const PUBLIC_MEMBERS = new Set(['allUsers', 'allAuthenticatedUsers']);
const MAX_ROTATION_SECONDS = 90 * 86400;

/** The one role a function may hold on its key, by the key's purpose: what its use needs. */
export const KMS_ROLES_FOR_PURPOSE: Record<string, readonly string[]> = {
  // Functions unwrap their Themis key at cold start; wrapping is the custodians' job.
  ENCRYPT_DECRYPT: ['roles/cloudkms.cryptoKeyDecrypter', 'roles/cloudkms.cryptoKeyEncrypter'],
  // A signer that publishes what it signs also needs its public key (the sequencer names its
  // checkpoints by the key's hash and verifies each signature before use): signerVerifier is
  // the one predefined role with useToSign and viewPublicKey (its useToVerify is for MAC keys).
  ASYMMETRIC_SIGN: [
    'roles/cloudkms.signer',
    'roles/cloudkms.signerVerifier',
    'roles/cloudkms.publicKeyViewer',
  ],
  MAC: ['roles/cloudkms.signer', 'roles/cloudkms.signerVerifier'],
};

/** A key's version algorithm where the catalog names none: what modules/kms and the local stack pick. */
export const DEFAULT_ALGORITHM: Record<string, string> = {
  ENCRYPT_DECRYPT: 'GOOGLE_SYMMETRIC_ENCRYPTION',
  ASYMMETRIC_SIGN: 'EC_SIGN_P256_SHA256',
  MAC: 'HMAC_SHA256',
};

/** The purpose each algorithm the catalog may name belongs to. */
const ALGORITHM_PURPOSE: Record<string, string> = {
  EC_SIGN_ED25519: 'ASYMMETRIC_SIGN',
  EC_SIGN_P256_SHA256: 'ASYMMETRIC_SIGN',
};

/**
 * Bucket roles whose objects must never age out: the transparency logs' tiles, entry bundles
 * and checkpoints must outlive every proof a phone, witness or monitor checks against them
 * (they hold hashes only). No lifecycle rule may delete there; every other bucket needs one.
 */
export const KEPT_INDEFINITELY: ReadonlySet<string> = new Set(['tlog']);

/** Predefined roles a catalog entry may name, by where it is granted. Custom roles are checked by permission. */
const ALLOWED_PREDEFINED = {
  storage: new Set(['roles/storage.objectViewer', 'roles/storage.objectCreator']),
  firestore: new Set(['roles/datastore.user', 'roles/datastore.viewer']),
  project: new Set(['roles/logging.logWriter', 'roles/monitoring.metricWriter', 'roles/cloudtrace.agent']),
};

/** Permissions no custom role in the catalog may carry: they escalate or reach past the policy. */
const FORBIDDEN_PERMISSION =
  /(^iam\.|^resourcemanager\.|^cloudkms\.|\.setIamPolicy$|^orgpolicy\.|^serviceusage\.)/;

// ---- facts every check shares ----

interface Derived {
  readonly grants: readonly Grant[];
  readonly unresolved: readonly UnresolvedGrant[];
  /** member => function name, for every catalog function's service account. */
  readonly functionByMember: ReadonlyMap<string, string>;
  readonly byType: (type: string) => PlannedResource[];
  readonly kmsKeyIds: ReadonlySet<string>;
}

function derive(input: PolicyInput): Derived {
  const { grants: all, unresolved } = collectGrants(input.plan);
  const functionByMember = new Map<string, string>();
  for (const [name, fn] of Object.entries(input.catalog.functions)) {
    functionByMember.set(serviceAccountPrincipal(fn.serviceAccount, input.projectId), name);
  }
  const byType = (type: string) =>
    input.plan.resources.filter((r) => r.mode === 'managed' && r.type === type);
  const kmsKeyIds = new Set(
    byType('google_kms_crypto_key')
      .map((r) => r.values.id)
      .filter((id): id is string => typeof id === 'string'),
  );
  return { grants: all, unresolved, functionByMember, byType, kmsKeyIds };
}

function v(check: string, subject: string, message: string): Violation {
  return { check, subject, message };
}

function block(values: ValueObject, name: string): ValueObject | undefined {
  const list = values[name];
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const first = list[0];
  return first !== undefined && isObject(first) ? first : undefined;
}

function blocks(values: ValueObject, name: string): ValueObject[] {
  const list = values[name];
  return Array.isArray(list) ? list.filter(isObject) : [];
}

function show(value: Value | undefined): string {
  if (value instanceof Unknown) return value.toString();
  return JSON.stringify(value) ?? 'nothing';
}

function resolveRole(catalogRole: string, projectId: string): string {
  return catalogRole.startsWith('custom:')
    ? `projects/${projectId}/roles/${catalogRole.slice('custom:'.length)}`
    : catalogRole;
}

function seconds(duration: Value | undefined): number | undefined {
  if (typeof duration !== 'string') return undefined;
  const match = /^(\d+)s$/.exec(duration);
  return match ? Number(match[1]) : undefined;
}

// ---- the checks ----

/** The catalog itself: roles match their use, keys are never shared, grants stay in their lane. */
export const checkCatalog: Check = ({ catalog }) => {
  const out: Violation[] = [];
  const c = 'catalog';
  const keyOwners = new Map<string, string[]>();
  const customRoles = catalog.customRoles ?? {};
  for (const [id, role] of Object.entries(customRoles)) {
    for (const permission of role.permissions) {
      if (FORBIDDEN_PERMISSION.test(permission)) {
        out.push(
          v(c, `customRoles.${id}`, `permission ${permission} escalates or bypasses the per-resource policy`),
        );
      }
    }
  }
  const customPermissions = (role: string) =>
    role.startsWith('custom:') ? customRoles[role.slice('custom:'.length)]?.permissions : undefined;
  const lane = (
    fn: string,
    where: 'storage' | 'firestore' | 'project',
    role: string,
    prefixes: readonly string[],
  ) => {
    if (PRIMITIVE_ROLES.has(role)) {
      out.push(v(c, fn, `${role} is a primitive role`));
      return;
    }
    if (role.startsWith('custom:')) {
      const permissions = customPermissions(role);
      if (!permissions) {
        out.push(v(c, fn, `${where} role ${role} names a custom role the catalog does not define`));
        return;
      }
      const stray = permissions.filter((p) => !prefixes.some((prefix) => p.startsWith(prefix)));
      if (stray.length > 0)
        out.push(v(c, fn, `${where} role ${role} carries ${stray.join(', ')}, outside its lane`));
      return;
    }
    if (!ALLOWED_PREDEFINED[where].has(role)) {
      out.push(
        v(
          c,
          fn,
          `${where} role ${role} is not one of ${[...ALLOWED_PREDEFINED[where]].join(', ')}; use a narrower custom role`,
        ),
      );
    }
  };
  for (const [name, fn] of Object.entries(catalog.functions)) {
    for (const grant of fn.kms) {
      const allowed = KMS_ROLES_FOR_PURPOSE[grant.purpose] ?? [];
      if (!allowed.includes(grant.role)) {
        out.push(
          v(
            c,
            name,
            `key "${grant.key}" (${grant.purpose}) with ${grant.role}: only ${allowed.join(' or ')} fits that use`,
          ),
        );
      }
      if (grant.algorithm !== undefined && ALGORITHM_PURPOSE[grant.algorithm] !== grant.purpose) {
        out.push(
          v(c, name, `key "${grant.key}": algorithm ${grant.algorithm} is not a ${grant.purpose} algorithm`),
        );
      }
      keyOwners.set(grant.key, [...(keyOwners.get(grant.key) ?? []), name]);
    }
    for (const grant of fn.storage ?? []) {
      if (!catalog.buckets[grant.bucket])
        out.push(v(c, name, `storage grant on unknown bucket role "${grant.bucket}"`));
      lane(name, 'storage', grant.role, [
        'storage.objects.',
        'storage.buckets.get',
        'storage.multipartUploads.',
      ]);
    }
    if (fn.firestore) lane(name, 'firestore', fn.firestore, ['datastore.']);
    for (const role of fn.projectRoles ?? []) {
      lane(name, 'project', role, [
        'cloudmessaging.',
        'logging.logEntries.create',
        'monitoring.timeSeries.create',
      ]);
    }
    const access = fn.access ?? 'private';
    if (fn.trigger.type !== 'http' && access !== 'internal') {
      out.push(
        v(
          c,
          name,
          `a ${fn.trigger.type} function must be "internal" (only its trigger may call it), not "${access}"`,
        ),
      );
    }
    if (fn.trigger.type === 'schedule' && fn.trigger.cron.trim().split(/\s+/).length !== 5) {
      out.push(v(c, name, `cron "${fn.trigger.cron}" is not a 5-field Cloud Scheduler expression`));
    }
    const timeout = fn.runtime?.timeoutSeconds;
    if (timeout !== undefined && fn.trigger.type === 'storage.finalized' && timeout > 540) {
      out.push(v(c, name, `event-driven functions time out after at most 540 s, not ${timeout}`));
    }
  }
  for (const [key, owners] of keyOwners) {
    if (owners.length > 1)
      out.push(v(c, `key ${key}`, `shared by ${owners.join(', ')}: each function gets its own key`));
  }
  return out;
};

/** No owner/editor/viewer anywhere: not granted, not even written in any .tf attribute. */
export const checkNoPrimitiveRoles: Check = ({ rawStrings }, { grants: all }) => {
  const out: Violation[] = [];
  for (const grant of all) {
    if (PRIMITIVE_ROLES.has(grant.role))
      out.push(v('primitive-roles', grant.source, `grants ${grant.role} to ${grant.member}`));
  }
  for (const { file, text } of rawStrings) {
    const match = /roles\/(owner|editor|viewer)\b/.exec(text);
    if (match) out.push(v('primitive-roles', file, `mentions ${match[0]}`));
  }
  return out;
};

/**
 * Nothing is public except the invocation of the HTTP functions the catalog marks "public"
 * (devices have no Google identity; those functions authenticate every request themselves).
 * allAuthenticatedUsers is never right; no bucket or object ACLs at all.
 */
export const checkPublicAccess: Check = ({ catalog, rawStrings, plan }, { grants: all }) => {
  const out: Violation[] = [];
  const c = 'public-access';
  for (const grant of all) {
    if (!PUBLIC_MEMBERS.has(grant.member)) continue;
    const fn = catalog.functions[grant.resource];
    const allowed =
      grant.kind === 'run-service' &&
      grant.member === 'allUsers' &&
      grant.role === 'roles/run.invoker' &&
      fn?.access === 'public' &&
      fn.trigger.type === 'http';
    if (!allowed)
      out.push(
        v(c, grant.source, `grants ${grant.role} on ${grant.kind} ${grant.resource} to ${grant.member}`),
      );
  }
  for (const { file, text } of rawStrings) {
    if (text.includes('allAuthenticatedUsers')) out.push(v(c, file, 'mentions allAuthenticatedUsers'));
  }
  for (const resource of plan.resources) {
    if (/^google_storage_(bucket|object|default_object)_acl$/.test(resource.type)) {
      out.push(v(c, resource.address, 'ACLs bypass uniform bucket-level access'));
    }
  }
  return out;
};

/** Every bucket hardened, the catalog's buckets all present. */
export const checkBuckets: Check = ({ catalog, projectId }, { byType, kmsKeyIds }) => {
  const out: Violation[] = [];
  const c = 'buckets';
  const buckets = byType('google_storage_bucket');
  for (const bucket of buckets) {
    const b = bucket.values;
    const at = bucket.address;
    if (b.uniform_bucket_level_access !== true)
      out.push(v(c, at, `uniform_bucket_level_access is ${show(b.uniform_bucket_level_access)}`));
    if (b.public_access_prevention !== 'enforced') {
      out.push(v(c, at, `public_access_prevention is ${show(b.public_access_prevention)}, not "enforced"`));
    }
    const versioning = block(b, 'versioning');
    if (versioning && versioning.enabled !== false)
      out.push(v(c, at, 'versioning is on: deleted objects would survive as noncurrent versions'));
    const key = block(b, 'encryption')?.default_kms_key_name;
    if (typeof key !== 'string' || !kmsKeyIds.has(key)) {
      out.push(
        v(c, at, `no CMEK: default_kms_key_name is ${show(key)}, not a key this configuration manages`),
      );
    }
    const softDelete = block(b, 'soft_delete_policy')?.retention_duration_seconds;
    if (typeof softDelete !== 'number') {
      out.push(v(c, at, 'soft delete window not chosen (the default of 7 days would apply silently)'));
    } else if (softDelete !== 0 && (softDelete < 7 * 86400 || softDelete > 90 * 86400)) {
      out.push(v(c, at, `soft delete window ${softDelete}s is neither 0 nor 7-90 days`));
    }
    const deletes = blocks(b, 'lifecycle_rule').filter((rule) => block(rule, 'action')?.type === 'Delete');
    const role = [...KEPT_INDEFINITELY].find((r) => bucketName(catalog, r, projectId) === b.name);
    if (role !== undefined) {
      for (const rule of deletes) {
        out.push(
          v(
            c,
            at,
            `lifecycle Delete rule ${show(block(rule, 'condition') ?? null)} on the ${role} bucket, whose objects must be kept indefinitely`,
          ),
        );
      }
    } else {
      const backstop = deletes.some((rule) => {
        const condition = block(rule, 'condition');
        return typeof condition?.age === 'number' && condition.age > 0;
      });
      if (!backstop) out.push(v(c, at, 'no lifecycle Delete rule by age (the retention backstop)'));
    }
    if (b.force_destroy === true)
      out.push(v(c, at, 'force_destroy would delete every object with the bucket'));
    const policies = byType('google_storage_bucket_iam_policy').filter((p) => p.values.bucket === b.name);
    if (policies.length !== 1) {
      out.push(
        v(
          c,
          at,
          `has ${policies.length} authoritative IAM policies, expected 1 (else Google's convenience bindings let project viewers read objects)`,
        ),
      );
    }
  }
  for (const role of Object.keys(catalog.buckets)) {
    const name = bucketName(catalog, role, projectId);
    const found = buckets.filter((b) => b.values.name === name);
    if (found.length !== 1)
      out.push(v(c, `bucket ${role}`, `expected exactly one bucket named ${name}, found ${found.length}`));
  }
  return out;
};

/**
 * The ingest bucket: objects are created only by hospitals, each only under hospitals/<id>/
 * through an IAM condition, and read only by the function the bucket triggers. Anywhere else
 * a hospital's connector is granted something, it is conditioned to its own prefix and can
 * only create or read by name.
 */
export const checkHospitalPrefixes: Check = (
  { plan, catalog, projectId, hospitals },
  { grants: all, functionByMember },
) => {
  const out: Violation[] = [];
  const c = 'hospital-prefixes';
  const hospitalByMember = new Map(Object.entries(hospitals).map(([id, member]) => [member, id]));
  const prefixCondition = (bucket: string, id: string) =>
    `resource.name.startsWith("projects/_/buckets/${bucket}/objects/hospitals/${id}/")`;

  const triggered = Object.entries(catalog.functions).filter(
    ([, fn]) => fn.trigger.type === 'storage.finalized',
  );
  const ingestBuckets = new Map<string, string[]>();
  for (const [name, fn] of triggered) {
    if (fn.trigger.type !== 'storage.finalized') continue;
    const bucket = bucketName(catalog, fn.trigger.bucket, projectId);
    ingestBuckets.set(bucket, [...(ingestBuckets.get(bucket) ?? []), name]);
  }

  for (const [bucket, readers] of ingestBuckets) {
    const creators = new Set<string>();
    for (const grant of all.filter((g) => g.kind === 'bucket' && g.resource === bucket)) {
      const permissions = rolePermissions(plan, grant.role);
      if (grants(permissions, 'storage.objects.create')) {
        const id = hospitalByMember.get(grant.member);
        if (id === undefined) {
          out.push(
            v(
              c,
              grant.source,
              `${grant.member} may create objects in ${bucket} but is no hospital's connector`,
            ),
          );
        } else if (grant.condition?.expression !== prefixCondition(bucket, id)) {
          out.push(
            v(
              c,
              grant.source,
              `hospital ${id} may write to ${bucket} outside hospitals/${id}/ (condition: ${show(grant.condition?.expression)})`,
            ),
          );
        } else {
          creators.add(id);
        }
      }
      if (grants(permissions, 'storage.objects.get')) {
        const fn = functionByMember.get(grant.member);
        if (!fn || !readers.includes(fn)) {
          out.push(v(c, grant.source, `${grant.member} may read ${bucket}; only ${readers.join(', ')} may`));
        }
      }
    }
    for (const id of Object.keys(hospitals)) {
      if (!creators.has(id))
        out.push(v(c, `hospital ${id}`, `cannot upload to ${bucket} under hospitals/${id}/`));
    }
  }

  for (const grant of all) {
    const id = hospitalByMember.get(grant.member);
    if (id === undefined) continue;
    if (grant.kind !== 'bucket') {
      out.push(
        v(
          c,
          grant.source,
          `hospital ${id}'s connector holds ${grant.role} on ${grant.kind} ${grant.resource}`,
        ),
      );
      continue;
    }
    if (grant.condition?.expression !== prefixCondition(grant.resource, id)) {
      out.push(
        v(c, grant.source, `hospital ${id}'s grant on ${grant.resource} is not limited to hospitals/${id}/`),
      );
    }
    const permissions = rolePermissions(plan, grant.role);
    const extra =
      permissions === undefined
        ? ['(unknown role)']
        : [...permissions].filter(
            (p) =>
              !['storage.objects.create', 'storage.objects.get', 'storage.multipartUploads.create'].includes(
                p,
              ),
          );
    if (extra.length > 0)
      out.push(v(c, grant.source, `hospital ${id} gets ${extra.join(', ')} on ${grant.resource}`));
  }
  return out;
};

/** CMEK on every bucket and database, each key usable only by the service agent that encrypts with it. */
export const checkCmek: Check = (
  { catalog, projectId },
  { byType, grants: all, kmsKeyIds, functionByMember },
) => {
  const out: Violation[] = [];
  const c = 'cmek';
  const functionKeyIds = new Set(
    Object.values(catalog.functions).flatMap((fn) =>
      fn.kms.map((g) => cryptoKeyName(catalog, g.key, projectId)),
    ),
  );
  const users = new Map<string, { address: string; agent: RegExp }[]>();
  const use = (key: Value | undefined, address: string, agent: RegExp) => {
    if (typeof key !== 'string' || !kmsKeyIds.has(key)) {
      out.push(
        v(c, address, `not encrypted with a customer-managed key of this configuration (${show(key)})`),
      );
      return;
    }
    users.set(key, [...(users.get(key) ?? []), { address, agent }]);
  };
  for (const bucket of byType('google_storage_bucket')) {
    use(
      block(bucket.values, 'encryption')?.default_kms_key_name,
      bucket.address,
      /@gs-project-accounts\.iam\.gserviceaccount\.com$/,
    );
  }
  const databases = byType('google_firestore_database');
  if (databases.length === 0) out.push(v(c, 'firestore', 'no Firestore database is managed'));
  for (const db of databases) {
    use(
      block(db.values, 'cmek_config')?.kms_key_name,
      db.address,
      /@gcp-sa-firestore\.iam\.gserviceaccount\.com$/,
    );
  }
  for (const [key, consumers] of users) {
    if (functionKeyIds.has(key)) out.push(v(c, key, 'a function key doubles as CMEK'));
    const agents = new Set(consumers.map((u) => u.agent.source));
    if (agents.size > 1)
      out.push(v(c, key, `shared by different services: ${consumers.map((u) => u.address).join(', ')}`));
    const onKey = all.filter((g) => g.kind === 'kms-key' && g.resource === key);
    for (const grant of onKey) {
      const agentOk = consumers.every((u) => u.agent.test(grant.member));
      if (!agentOk || grant.role !== 'roles/cloudkms.cryptoKeyEncrypterDecrypter') {
        out.push(v(c, grant.source, `${grant.member} holds ${grant.role} on CMEK key ${key}`));
      }
      if (functionByMember.has(grant.member))
        out.push(v(c, grant.source, `function account ${grant.member} holds a role on CMEK key ${key}`));
    }
    if (!onKey.some((g) => g.role === 'roles/cloudkms.cryptoKeyEncrypterDecrypter')) {
      out.push(v(c, key, 'no service agent may use this key: creating what it protects would fail'));
    }
  }
  return out;
};

/** Every catalog key exists in the catalog's ring, with its purpose, rotation and protection level. */
export const checkFunctionKeys: Check = ({ catalog, projectId }, { byType }) => {
  const out: Violation[] = [];
  const c = 'function-keys';
  const rings = byType('google_kms_key_ring').filter((r) => r.values.name === catalog.keyRing);
  if (rings.length !== 1 || rings[0]!.values.location !== catalog.location) {
    out.push(
      v(
        c,
        `key ring ${catalog.keyRing}`,
        `expected one key ring "${catalog.keyRing}" in ${catalog.location}`,
      ),
    );
  }
  const keys = byType('google_kms_crypto_key');
  const seen = new Set<string>();
  for (const fn of Object.values(catalog.functions)) {
    for (const grant of fn.kms) {
      if (seen.has(grant.key)) continue;
      seen.add(grant.key);
      const id = cryptoKeyName(catalog, grant.key, projectId);
      const found = keys.filter((k) => k.values.id === id);
      if (found.length !== 1) {
        out.push(v(c, id, `expected exactly one key, found ${found.length}`));
        continue;
      }
      const key = found[0]!;
      const k = key.values;
      if (k.purpose !== grant.purpose)
        out.push(v(c, key.address, `purpose ${show(k.purpose)}, catalog says ${grant.purpose}`));
      if (grant.purpose === 'ENCRYPT_DECRYPT') {
        const rotation = seconds(k.rotation_period);
        if (rotation === undefined || rotation > MAX_ROTATION_SECONDS) {
          out.push(
            v(c, key.address, `rotation_period ${show(k.rotation_period)}: must be set and at most 90 days`),
          );
        }
      } else if (k.rotation_period !== undefined && k.rotation_period !== null) {
        // Cloud KMS refuses the whole key: automatic rotation is for symmetric keys only.
        out.push(
          v(
            c,
            key.address,
            `rotation_period ${show(k.rotation_period)} on a ${grant.purpose} key, which Cloud KMS does not rotate`,
          ),
        );
      }
      const algorithm = block(k, 'version_template')?.algorithm;
      const wanted = grant.algorithm ?? DEFAULT_ALGORITHM[grant.purpose];
      if (algorithm !== wanted)
        out.push(v(c, key.address, `algorithm ${show(algorithm)}, catalog says ${wanted ?? 'nothing'}`));
      const level = block(k, 'version_template')?.protection_level;
      if (level !== 'SOFTWARE' && level !== 'HSM')
        out.push(v(c, key.address, `protection_level ${show(level)}`));
      const lifecycle = (key.config.lifecycle as { prevent_destroy?: unknown }[] | undefined)?.[0];
      if (lifecycle?.prevent_destroy !== true)
        out.push(v(c, key.address, 'not protected by prevent_destroy: destroying it loses what it wraps'));
    }
  }
  return out;
};

/**
 * Invariant 4 on paper: each function's account holds exactly the catalog's role on exactly
 * its own key, and nothing else in Cloud KMS; nobody holds anything on a key ring or on KMS
 * project-wide; besides the function, a function key admits only Encrypt-only custodians.
 * Every function key's policy is authoritative, so out-of-band grants do not survive.
 */
export const checkKmsGrants: Check = (input, { grants: all, functionByMember, byType }) => {
  const { catalog, projectId, plan } = input;
  const out: Violation[] = [];
  const c = 'kms-grants';
  const expected = expectedKmsGrants(catalog, projectId);
  const expectedKeys = new Set(expected.map((e) => e.resource));
  const symmetricKeys = new Set(
    Object.values(catalog.functions).flatMap((fn) =>
      fn.kms
        .filter((g) => g.purpose === 'ENCRYPT_DECRYPT')
        .map((g) => cryptoKeyName(catalog, g.key, projectId)),
    ),
  );
  const key = (g: { resource: string; role: string; member: string }) =>
    `${g.resource} ${g.role} ${g.member}`;
  const expectedSet = new Set(expected.map(key));
  const actualSet = new Set<string>();
  for (const grant of all) {
    const kmsRole = grant.role.startsWith('roles/cloudkms.') || isCustomKmsRole(plan, grant.role);
    if (grant.kind === 'kms-key-ring') {
      out.push(
        v(
          c,
          grant.source,
          `${grant.member} holds ${grant.role} on key ring ${grant.resource}, which reaches every key in it`,
        ),
      );
      continue;
    }
    if (grant.kind !== 'kms-key') {
      if (kmsRole)
        out.push(
          v(c, grant.source, `${grant.member} holds ${grant.role} on ${grant.kind} ${grant.resource}`),
        );
      continue;
    }
    const fn = functionByMember.get(grant.member);
    if (fn !== undefined) {
      actualSet.add(key(grant));
      if (!expectedSet.has(key(grant)) || grant.condition) {
        const own = expected
          .filter((e) => e.member === grant.member)
          .map((e) => `${e.role} on ${e.resource}`);
        out.push(
          v(
            c,
            grant.source,
            `function ${fn} holds ${grant.role} on ${grant.resource}; the catalog grants ${own.join(', ') || 'nothing'}`,
          ),
        );
      }
    } else if (expectedKeys.has(grant.resource) && grant.role !== 'roles/cloudkms.cryptoKeyEncrypter') {
      out.push(
        v(
          c,
          grant.source,
          `${grant.member} holds ${grant.role} on function key ${grant.resource}; only Encrypt-only custodians may join the function`,
        ),
      );
    } else if (expectedKeys.has(grant.resource) && !symmetricKeys.has(grant.resource)) {
      out.push(
        v(
          c,
          grant.source,
          `${grant.member} holds ${grant.role} on ${grant.resource}, a key that wraps nothing; custodians belong on ENCRYPT_DECRYPT keys only`,
        ),
      );
    }
  }
  for (const e of expected) {
    if (!actualSet.has(key(e))) out.push(v(c, e.resource, `catalog grant missing: ${e.member} ${e.role}`));
  }
  const policies = byType('google_kms_crypto_key_iam_policy');
  for (const resource of expectedKeys) {
    const count = policies.filter((p) => p.values.crypto_key_id === resource).length;
    if (count !== 1)
      out.push(
        v(
          c,
          resource,
          `has ${count} authoritative IAM policies, expected 1 (grants added by hand would survive)`,
        ),
      );
  }
  return out;
};

function isCustomKmsRole(plan: Plan, role: string): boolean {
  if (!role.startsWith('projects/')) return false;
  const permissions = rolePermissions(plan, role);
  return permissions === undefined || [...permissions].some((p) => p.startsWith('cloudkms.'));
}

export interface KmsGrantTriple {
  readonly resource: string;
  readonly role: string;
  readonly member: string;
}

/** What the catalog grants in Cloud KMS: one (key, role, account) per function grant. */
export function expectedKmsGrants(catalog: Catalog, projectId: string): KmsGrantTriple[] {
  return Object.values(catalog.functions).flatMap((fn) =>
    fn.kms.map((g) => ({
      resource: cryptoKeyName(catalog, g.key, projectId),
      role: g.role,
      member: serviceAccountPrincipal(fn.serviceAccount, projectId),
    })),
  );
}

/** The Cloud KMS grants Terraform makes to functions' accounts, as (key, role, account). */
export function terraformFunctionKmsGrants(input: PolicyInput): KmsGrantTriple[] {
  const { grants: all, functionByMember } = derive(input);
  return all
    .filter((g) => (g.kind === 'kms-key' || g.kind === 'kms-key-ring') && functionByMember.has(g.member))
    .map((g) => ({ resource: g.resource, role: g.role, member: g.member }));
}

/** Outside KMS, a function's account holds exactly what its catalog entry lists. */
export const checkFunctionGrants: Check = ({ catalog, projectId }, { grants: all, byType }) => {
  const out: Violation[] = [];
  const c = 'function-grants';
  const databases = byType('google_firestore_database')
    .map((d) => d.values.name)
    .filter((name): name is string => typeof name === 'string');
  const accounts = byType('google_service_account');
  for (const key of byType('google_service_account_key'))
    out.push(v(c, key.address, 'service account keys are long-lived secrets; use workload identity'));
  for (const [name, fn] of Object.entries(catalog.functions)) {
    const member = serviceAccountPrincipal(fn.serviceAccount, projectId);
    const saId = `projects/${projectId}/serviceAccounts/${serviceAccountEmail(fn.serviceAccount, projectId)}`;
    if (accounts.filter((a) => a.values.account_id === fn.serviceAccount).length !== 1) {
      out.push(v(c, name, `expected one service account "${fn.serviceAccount}"`));
    }
    const expected = new Set<string>();
    for (const g of fn.storage ?? []) {
      if (catalog.buckets[g.bucket])
        expected.add(
          `bucket ${bucketName(catalog, g.bucket, projectId)} ${resolveRole(g.role, projectId)} -`,
        );
    }
    for (const role of fn.projectRoles ?? [])
      expected.add(`project ${projectId} ${resolveRole(role, projectId)} -`);
    if (fn.firestore) {
      for (const db of databases) {
        expected.add(
          `project ${projectId} ${resolveRole(fn.firestore, projectId)} resource.name == "projects/${projectId}/databases/${db}"`,
        );
      }
    }
    if (fn.signsUrls) expected.add(`service-account ${saId} roles/iam.serviceAccountTokenCreator -`);
    const actual = new Set<string>();
    for (const grant of all) {
      if (grant.member !== member || grant.kind === 'kms-key' || grant.kind === 'kms-key-ring') continue;
      const entry = `${grant.kind} ${grant.resource} ${grant.role} ${grant.condition?.expression ?? '-'}`;
      actual.add(entry);
      if (!expected.has(entry))
        out.push(
          v(
            c,
            grant.source,
            `function ${name} holds ${grant.role} on ${grant.kind} ${grant.resource}${grant.condition ? ` if ${grant.condition.expression}` : ''}, which the catalog does not list`,
          ),
        );
    }
    for (const entry of expected)
      if (!actual.has(entry)) out.push(v(c, name, `catalog grant not provisioned: ${entry}`));
  }
  return out;
};

/** Each catalog function deployed as gen2 on nodejs22, as its own account, with its trigger and invokers. */
export const checkFunctions: Check = ({ catalog, projectId }, { byType, grants: all, functionByMember }) => {
  const out: Violation[] = [];
  const c = 'functions';
  const deployed = byType('google_cloudfunctions2_function');
  for (const legacy of byType('google_cloudfunctions_function'))
    out.push(v(c, legacy.address, '1st gen function; use gen2'));
  for (const fn of deployed) {
    if (typeof fn.values.name !== 'string' || !catalog.functions[fn.values.name]) {
      out.push(v(c, fn.address, `function ${show(fn.values.name)} is not in the catalog`));
    }
  }
  const jobs = byType('google_cloud_scheduler_job');
  for (const grant of all) {
    if (grant.role === 'roles/run.invoker' && grant.kind !== 'run-service') {
      out.push(v(c, grant.source, `run.invoker on ${grant.kind} ${grant.resource} reaches every function`));
    }
  }
  for (const [name, entry] of Object.entries(catalog.functions)) {
    const found = deployed.filter((f) => f.values.name === name);
    if (found.length !== 1) {
      out.push(v(c, name, `expected one google_cloudfunctions2_function, found ${found.length}`));
      continue;
    }
    const fn = found[0]!;
    const at = fn.address;
    const build = block(fn.values, 'build_config') ?? {};
    const service = block(fn.values, 'service_config') ?? {};
    const email = serviceAccountEmail(entry.serviceAccount, projectId);
    const access = entry.access ?? 'private';
    if (build.runtime !== 'nodejs22') out.push(v(c, at, `runtime ${show(build.runtime)}, not nodejs22`));
    if (build.entry_point !== name) out.push(v(c, at, `entry point ${show(build.entry_point)}, not ${name}`));
    if (typeof build.service_account !== 'string')
      out.push(v(c, at, 'builds would run as the default compute account'));
    if (service.service_account_email !== email)
      out.push(v(c, at, `runs as ${show(service.service_account_email)}, not ${email}`));
    const ingress = access === 'internal' ? 'ALLOW_INTERNAL_ONLY' : 'ALLOW_ALL';
    if (service.ingress_settings !== ingress)
      out.push(v(c, at, `ingress ${show(service.ingress_settings)}, expected ${ingress} for ${access}`));
    if (typeof service.max_instance_count !== 'number') out.push(v(c, at, 'max instances not set'));
    else if (entry.runtime && service.max_instance_count !== entry.runtime.maxInstances) {
      out.push(
        v(c, at, `max instances ${service.max_instance_count}, catalog says ${entry.runtime.maxInstances}`),
      );
    }
    if (typeof service.min_instance_count !== 'number') out.push(v(c, at, 'min instances not set'));
    const env = isObject(service.environment_variables ?? null)
      ? (service.environment_variables as ValueObject)
      : {};
    const expectedEnv: Record<string, string> = {
      GOOGLE_CLOUD_PROJECT: projectId,
      SERVICE_ACCOUNT_EMAIL: email,
    };
    for (const role of Object.keys(catalog.buckets))
      expectedEnv[`${role.toUpperCase()}_BUCKET`] = bucketName(catalog, role, projectId);
    for (const [variable, value] of Object.entries(expectedEnv)) {
      if (env[variable] !== value)
        out.push(v(c, at, `${variable}=${show(env[variable])}, expected ${value}`));
    }
    const trigger = block(fn.values, 'event_trigger');
    let triggerAccount: string | undefined;
    if (entry.trigger.type === 'storage.finalized') {
      const bucket = bucketName(catalog, entry.trigger.bucket, projectId);
      const filter = blocks(trigger ?? {}, 'event_filters');
      if (trigger?.event_type !== 'google.cloud.storage.object.v1.finalized') {
        out.push(
          v(
            c,
            at,
            `event type ${show(trigger?.event_type)}, expected google.cloud.storage.object.v1.finalized`,
          ),
        );
      }
      if (filter.length !== 1 || filter[0]!.attribute !== 'bucket' || filter[0]!.value !== bucket) {
        out.push(v(c, at, `event filter ${show(trigger?.event_filters)}, expected bucket = ${bucket}`));
      }
      triggerAccount =
        typeof trigger?.service_account_email === 'string'
          ? `serviceAccount:${trigger.service_account_email}`
          : undefined;
      if (!triggerAccount || functionByMember.has(triggerAccount)) {
        out.push(
          v(c, at, `Eventarc must invoke as its own identity, not ${show(trigger?.service_account_email)}`),
        );
      }
    } else if (trigger) {
      out.push(v(c, at, 'has an event trigger the catalog does not declare'));
    }
    if (entry.trigger.type === 'schedule') {
      const job = jobs.find((j) => block(j.values, 'http_target')?.uri === fn.values.url);
      const oidc = job && block(block(job.values, 'http_target') ?? {}, 'oidc_token');
      triggerAccount =
        typeof oidc?.service_account_email === 'string'
          ? `serviceAccount:${oidc.service_account_email}`
          : undefined;
    }
    const invokers = new Set(
      all
        .filter((g) => g.kind === 'run-service' && g.resource === name && g.role === 'roles/run.invoker')
        .map((g) => g.member),
    );
    const want =
      access === 'public'
        ? new Set(['allUsers'])
        : access === 'internal'
          ? new Set(triggerAccount ? [triggerAccount] : [])
          : undefined;
    if (access === 'internal' && !triggerAccount) {
      out.push(
        v(c, at, 'its trigger calls without an identity of its own, so no invoker grant can be right'),
      );
    } else if (want) {
      const same = want.size === invokers.size && [...want].every((m) => invokers.has(m));
      if (!same)
        out.push(
          v(
            c,
            at,
            `invokers ${show([...invokers].sort())}, expected ${show([...want].sort())} for ${access}`,
          ),
        );
    } else {
      for (const member of invokers) {
        if (
          PUBLIC_MEMBERS.has(member) ||
          functionByMember.has(member) ||
          !/^(user|group|serviceAccount):/.test(member)
        ) {
          out.push(v(c, at, `private function invokable by ${member}`));
        }
      }
    }
  }
  return out;
};

/** Cloud Scheduler calls with an OIDC token, at the catalog's schedule. */
export const checkScheduler: Check = ({ catalog }, { byType, functionByMember }) => {
  const out: Violation[] = [];
  const c = 'scheduler';
  const jobs = byType('google_cloud_scheduler_job');
  const functions = byType('google_cloudfunctions2_function');
  for (const job of jobs) {
    const target = block(job.values, 'http_target');
    if (!target) {
      out.push(v(c, job.address, 'not an HTTP target'));
      continue;
    }
    const oidc = block(target, 'oidc_token');
    if (block(target, 'oauth_token'))
      out.push(v(c, job.address, 'uses an OAuth token; Cloud Run needs OIDC'));
    if (!oidc || typeof oidc.service_account_email !== 'string' || typeof oidc.audience !== 'string') {
      out.push(v(c, job.address, 'calls without an OIDC token (service account and audience)'));
    } else if (functionByMember.has(`serviceAccount:${oidc.service_account_email}`)) {
      out.push(v(c, job.address, 'mints tokens for a function account; use the scheduler identity'));
    }
  }
  for (const [name, fn] of Object.entries(catalog.functions)) {
    if (fn.trigger.type !== 'schedule') continue;
    const url = functions.find((f) => f.values.name === name)?.values.url;
    const found = jobs.filter((j) => block(j.values, 'http_target')?.uri === url);
    if (found.length !== 1) {
      out.push(v(c, name, `expected one scheduler job calling ${show(url)}, found ${found.length}`));
      continue;
    }
    const job = found[0]!;
    if (job.values.schedule !== fn.trigger.cron)
      out.push(v(c, job.address, `schedule ${show(job.values.schedule)}, catalog says "${fn.trigger.cron}"`));
    if (job.values.time_zone !== fn.trigger.timeZone)
      out.push(
        v(c, job.address, `time zone ${show(job.values.time_zone)}, catalog says ${fn.trigger.timeZone}`),
      );
  }
  return out;
};

/** firestore.rules released as is; TTL policies and composite indexes exactly as firestore.indexes.json says. */
export const checkFirestore: Check = ({ indexes, firestoreRules }, { byType }) => {
  const out: Violation[] = [];
  const c = 'firestore';
  const rulesets = byType('google_firebaserules_ruleset').filter((r) =>
    blocks(r.values, 'source').some((source) =>
      blocks(source, 'files').some(
        (file) => file.name === 'firestore.rules' && file.content === firestoreRules,
      ),
    ),
  );
  const releases = byType('google_firebaserules_release').filter((r) =>
    String(r.values.name).startsWith('cloud.firestore'),
  );
  if (rulesets.length !== 1 || releases.length !== 1) {
    out.push(
      v(
        c,
        'firestore.rules',
        `expected firestore.rules deployed as one ruleset and release, found ${rulesets.length} and ${releases.length}`,
      ),
    );
  }
  const ttlWanted = new Set(
    (indexes.fieldOverrides ?? []).filter((f) => f.ttl).map((f) => `${f.collectionGroup}/${f.fieldPath}`),
  );
  if (ttlWanted.has('functionKeys/expiresAt'))
    out.push(v(c, 'functionKeys', "TTL would delete functions' wrapped signing keys"));
  const ttlActual = new Set<string>();
  for (const field of byType('google_firestore_field')) {
    if (!block(field.values, 'ttl_config') && !Array.isArray(field.values.ttl_config)) continue;
    ttlActual.add(`${String(field.values.collection)}/${String(field.values.field)}`);
  }
  for (const want of ttlWanted)
    if (!ttlActual.has(want)) out.push(v(c, want, 'TTL policy in firestore.indexes.json not provisioned'));
  for (const have of ttlActual)
    if (!ttlWanted.has(have)) out.push(v(c, have, 'TTL policy not in firestore.indexes.json'));

  const shape = (
    collection: unknown,
    scope: unknown,
    fields: { fieldPath: unknown; order?: unknown; arrayConfig?: unknown }[],
  ) =>
    `${String(collection)}|${String(scope ?? 'COLLECTION')}|${fields.map((f) => `${String(f.fieldPath)}:${String(f.order ?? f.arrayConfig)}`).join(',')}`;
  const wanted = new Set(
    (indexes.indexes ?? []).map((i) => shape(i.collectionGroup, i.queryScope, [...i.fields])),
  );
  const actual = new Set(
    byType('google_firestore_index').map((i) =>
      shape(
        i.values.collection,
        i.values.query_scope,
        blocks(i.values, 'fields').map((f) => ({
          fieldPath: f.field_path,
          order: f.order ?? undefined,
          arrayConfig: f.array_config ?? undefined,
        })),
      ),
    ),
  );
  for (const want of wanted)
    if (!actual.has(want)) out.push(v(c, want, 'composite index in firestore.indexes.json not provisioned'));
  for (const have of actual)
    if (!wanted.has(have)) out.push(v(c, have, 'composite index not in firestore.indexes.json'));
  return out;
};

/** KMS data-access audit logs on; log metrics and alerts for rejections, errors and KMS denials. */
export const checkAuditAndAlerts: Check = (_input, { byType }) => {
  const out: Violation[] = [];
  const c = 'audit-alerts';
  const kmsAudit = byType('google_project_iam_audit_config').find(
    (a) => a.values.service === 'cloudkms.googleapis.com',
  );
  const logTypes = new Set(blocks(kmsAudit?.values ?? {}, 'audit_log_config').map((l) => l.log_type));
  for (const type of ['DATA_READ', 'DATA_WRITE']) {
    if (!logTypes.has(type)) out.push(v(c, 'cloudkms.googleapis.com', `${type} audit logs are off`));
  }
  for (const config of blocks(kmsAudit?.values ?? {}, 'audit_log_config')) {
    if (Array.isArray(config.exempted_members) && config.exempted_members.length > 0) {
      out.push(v(c, 'cloudkms.googleapis.com', `audit exemptions for ${show(config.exempted_members)}`));
    }
  }
  const metrics = byType('google_logging_metric');
  const policies = byType('google_monitoring_alert_policy');
  const wants: [string, (filter: string) => boolean][] = [
    ['ingest rejections', (f) => f.includes('ingest.rejected')],
    ['function errors', (f) => f.includes('severity>=ERROR')],
    ['KMS permission denials', (f) => f.includes('cloudkms.googleapis.com') && f.includes('status.code=7')],
  ];
  for (const [what, matches] of wants) {
    const metric = metrics.find((m) => typeof m.values.filter === 'string' && matches(m.values.filter));
    if (!metric) {
      out.push(v(c, what, 'no log-based metric'));
      continue;
    }
    const alerted = policies.some((p) =>
      blocks(p.values, 'conditions').some((cond) => {
        const filter = block(cond, 'condition_threshold')?.filter;
        return (
          typeof filter === 'string' &&
          filter.includes(`logging.googleapis.com/user/${String(metric.values.name)}`)
        );
      }),
    );
    if (!alerted) out.push(v(c, what, `no alert policy on metric ${show(metric.values.name)}`));
  }
  return out;
};

/** Every IAM resource resolvable at plan time: an unknown policy cannot be proven least-privilege. */
export const checkResolvable: Check = (_input, { unresolved }) =>
  unresolved.map((u) => v('resolvable', u.source, u.reason));

export const CHECKS: Readonly<Record<string, Check>> = {
  catalog: checkCatalog,
  'primitive-roles': checkNoPrimitiveRoles,
  'public-access': checkPublicAccess,
  buckets: checkBuckets,
  'hospital-prefixes': checkHospitalPrefixes,
  cmek: checkCmek,
  'function-keys': checkFunctionKeys,
  'kms-grants': checkKmsGrants,
  'function-grants': checkFunctionGrants,
  functions: checkFunctions,
  scheduler: checkScheduler,
  firestore: checkFirestore,
  'audit-alerts': checkAuditAndAlerts,
  resolvable: checkResolvable,
};

export function runCheck(name: string, input: PolicyInput): Violation[] {
  const check = CHECKS[name];
  if (!check) throw new Error(`no check "${name}"`);
  return check(input, derive(input));
}

export function runChecks(input: PolicyInput): Violation[] {
  const derived = derive(input);
  return Object.values(CHECKS).flatMap((check) => check(input, derived));
}
