// The emulator's IAM policy: which principal holds which Cloud KMS role on which resource.
// The local stack derives it from infra/catalog.json, as Terraform derives production's,
// so a function that reaches for another function's key fails locally just as in the cloud.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { serviceAccountPrincipal } from '../../shared/emulation.ts';
import { cryptoKeyName, type Catalog } from '../../shared/runtime/catalog.ts';
import { KMS_ROLES } from './permissions.ts';

const RESOURCE =
  /^projects\/[a-z0-9][a-z0-9.:-]{0,62}(\/locations\/[a-z0-9][a-z0-9-]{0,62}(\/keyRings\/[a-zA-Z0-9_-]{1,63}(\/cryptoKeys\/[a-zA-Z0-9_-]{1,63})?)?)?$/;

export const policyBindingSchema = z.strictObject({
  /** A project, location, key ring or crypto key; the grant covers what lies beneath. */
  resource: z.string().regex(RESOURCE, 'must be a project, location, key ring or crypto key name'),
  role: z.enum(KMS_ROLES),
  members: z.array(z.string().regex(/^(user|serviceAccount|group|domain):\S+$/)).min(1),
});

export const kmsPolicySchema = z.strictObject({
  $comment: z.string().optional(),
  bindings: z.array(policyBindingSchema),
});

export type KmsPolicy = z.infer<typeof kmsPolicySchema>;
export type KmsPolicyBinding = z.infer<typeof policyBindingSchema>;

export const EMPTY_POLICY: KmsPolicy = { bindings: [] };

export function parsePolicy(value: unknown, source = 'policy'): KmsPolicy {
  const result = kmsPolicySchema.safeParse(value);
  if (!result.success) throw new Error(`Invalid KMS policy in ${source}:\n${z.prettifyError(result.error)}`);
  return result.data;
}

export async function loadPolicyFile(path: string): Promise<KmsPolicy> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new Error(`Cannot read the KMS policy file ${path}: ${(error as Error).message}`, { cause: error });
  }
  return parsePolicy(json, path);
}

/** Each function's service account gets its listed role on its listed key, and nothing else. */
export function policyFromCatalog(catalog: Catalog, projectId: string): KmsPolicy {
  const bindings: KmsPolicyBinding[] = [];
  for (const fn of Object.keys(catalog.functions)
    .sort()
    .map((name) => catalog.functions[name]!)) {
    for (const grant of fn.kms) {
      const resource = cryptoKeyName(catalog, grant.key, projectId);
      const member = serviceAccountPrincipal(fn.serviceAccount, projectId);
      const binding = bindings.find((b) => b.resource === resource && b.role === grant.role);
      if (binding) {
        if (!binding.members.includes(member)) binding.members.push(member);
      } else {
        bindings.push(policyBindingSchema.parse({ resource, role: grant.role, members: [member] }));
      }
    }
  }
  return { bindings };
}

/** Writes atomically, so an emulator starting meanwhile never reads half a file. */
export async function writePolicyFile(path: string, policy: KmsPolicy): Promise<void> {
  const valid = parsePolicy(policy);
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(valid, null, 2)}\n`);
  await rename(temporary, path);
}
