// Typed access to infra/catalog.json, the one place that says which function runs as
// which service account, how it is triggered and which KMS key it may use.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const triggerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('http') }),
  z.object({ type: z.literal('storage.finalized'), bucket: z.string() }),
  z.object({ type: z.literal('schedule'), cron: z.string(), timeZone: z.string() }),
]);

const kmsGrantSchema = z.object({
  key: z.string().regex(/^[a-zA-Z0-9_-]{1,63}$/),
  purpose: z.enum(['ENCRYPT_DECRYPT', 'ASYMMETRIC_SIGN', 'MAC']),
  /** The key's version algorithm; absent means the purpose's default (symmetric, P-256, HMAC-SHA256). */
  algorithm: z.enum(['EC_SIGN_ED25519', 'EC_SIGN_P256_SHA256']).optional(),
  role: z.string().startsWith('roles/cloudkms.'),
});

// The fields below are optional so older catalogs (and test fixtures) still parse; infra/
// gives an absent field the least-privileged meaning (no grant, private, platform defaults).

/** A predefined role (`roles/...`) or one of the catalog's own custom roles (`custom:<id>`). */
const roleRefSchema = z.string().regex(/^(roles\/[a-zA-Z0-9_.]+|custom:[a-zA-Z0-9_.]{3,64})$/);

const customRoleSchema = z.object({
  title: z.string().min(1).max(100),
  description: z.string().max(256),
  permissions: z.array(z.string().regex(/^[a-z0-9]+(\.[a-zA-Z0-9]+){2,}$/)).min(1),
});

const runtimeSchema = z.object({
  memoryMiB: z.number().int().min(128).max(32768),
  timeoutSeconds: z.number().int().min(1).max(3600),
  maxInstances: z.number().int().min(1),
  concurrency: z.number().int().min(1).max(1000),
});

/**
 * Who may invoke: `public` (anyone on the internet; the function authenticates every request
 * itself), `private` (only the operators' principals infra/ is given), `internal` (only the
 * trigger's own identity: Eventarc or Cloud Scheduler).
 */
const accessSchema = z.enum(['public', 'private', 'internal']);

export const catalogSchema = z.object({
  location: z.string(),
  keyRing: z.string(),
  buckets: z.record(z.string(), z.object({ suffix: z.string(), purpose: z.string() })),
  customRoles: z.record(z.string().regex(/^[a-zA-Z0-9_.]{3,64}$/), customRoleSchema).optional(),
  functions: z.record(
    z.string().regex(/^[a-z][a-z0-9-]*$/),
    z.object({
      serviceAccount: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/),
      trigger: triggerSchema,
      kms: z.array(kmsGrantSchema),
      access: accessSchema.optional(),
      runtime: runtimeSchema.optional(),
      /** Roles on the catalog's buckets, by bucket role (`ingest`, `records`, ...). */
      storage: z.array(z.object({ bucket: z.string(), role: roleRefSchema })).optional(),
      /** The role on the Firestore database, if any (IAM-conditioned to that database). */
      firestore: roleRefSchema.optional(),
      /** Further project-level roles (never primitive ones). */
      projectRoles: z.array(roleRefSchema).optional(),
      /** May sign blobs as itself (V4 signed URLs): token creator on its own account only. */
      signsUrls: z.boolean().optional(),
    }),
  ),
});

export type Catalog = z.infer<typeof catalogSchema>;
export type FunctionTrigger = z.infer<typeof triggerSchema>;

export const CATALOG_PATH = fileURLToPath(new URL('../../infra/catalog.json', import.meta.url));

export function loadCatalog(path = CATALOG_PATH): Catalog {
  return catalogSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
}

/** Bucket names are per project, so two environments never share one. */
export function bucketName(catalog: Catalog, role: string, projectId: string): string {
  const bucket = catalog.buckets[role];
  if (!bucket) throw new Error(`The catalog has no bucket role "${role}".`);
  return `${projectId}-${bucket.suffix}`;
}

export function cryptoKeyName(catalog: Catalog, key: string, projectId: string): string {
  return `projects/${projectId}/locations/${catalog.location}/keyRings/${catalog.keyRing}/cryptoKeys/${key}`;
}
