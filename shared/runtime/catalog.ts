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
  role: z.string().startsWith('roles/cloudkms.'),
});

export const catalogSchema = z.object({
  location: z.string(),
  keyRing: z.string(),
  buckets: z.record(z.string(), z.object({ suffix: z.string(), purpose: z.string() })),
  functions: z.record(
    z.string().regex(/^[a-z][a-z0-9-]*$/),
    z.object({
      serviceAccount: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/),
      trigger: triggerSchema,
      kms: z.array(kmsGrantSchema),
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
