// Every IAM grant a planned configuration makes, flattened to (resource, role, member,
// condition), whatever resource type made it: *_iam_member, *_iam_binding, or an
// authoritative *_iam_policy fed by a google_iam_policy data source.
import { Unknown, isObject, type Value, type ValueObject } from './hcl-eval.ts';
import type { Plan, PlannedResource } from './terraform.ts';

export type GrantKind =
  'kms-key' | 'kms-key-ring' | 'bucket' | 'project' | 'service-account' | 'run-service' | 'other';

export interface Grant {
  readonly kind: GrantKind;
  /** Key or key ring resource name, bucket name, project id, service account id or service name. */
  readonly resource: string;
  readonly role: string;
  readonly member: string;
  readonly condition: { readonly title: string; readonly expression: string } | undefined;
  /** Address of the resource that makes the grant. */
  readonly source: string;
  readonly authoritative: boolean;
}

export interface UnresolvedGrant {
  readonly source: string;
  readonly reason: string;
}

const TARGETS: Record<string, { kind: GrantKind; attribute: string }> = {
  google_kms_crypto_key: { kind: 'kms-key', attribute: 'crypto_key_id' },
  google_kms_key_ring: { kind: 'kms-key-ring', attribute: 'key_ring_id' },
  google_storage_bucket: { kind: 'bucket', attribute: 'bucket' },
  google_project: { kind: 'project', attribute: 'project' },
  google_service_account: { kind: 'service-account', attribute: 'service_account_id' },
  google_cloud_run_service: { kind: 'run-service', attribute: 'service' },
  google_cloud_run_v2_service: { kind: 'run-service', attribute: 'name' },
  google_cloudfunctions2_function: { kind: 'run-service', attribute: 'cloud_function' },
  google_cloudfunctions_function: { kind: 'run-service', attribute: 'cloud_function' },
};

const IAM_TYPE = /^(.*)_iam_(member|binding|policy)$/;

export function isIamResource(resource: PlannedResource): boolean {
  return resource.mode === 'managed' && IAM_TYPE.test(resource.type);
}

function conditionOf(value: Value | undefined): Grant['condition'] {
  const block = Array.isArray(value) ? value[0] : isObject(value ?? null) ? value : undefined;
  if (!block || !isObject(block)) return undefined;
  const expression = block.expression;
  const title = block.title;
  return {
    title: typeof title === 'string' ? title : '',
    expression: typeof expression === 'string' ? expression : String(expression),
  };
}

export function collectGrants(plan: Plan): { grants: Grant[]; unresolved: UnresolvedGrant[] } {
  const grants: Grant[] = [];
  const unresolved: UnresolvedGrant[] = [];
  for (const resource of plan.resources) {
    if (!isIamResource(resource)) continue;
    const match = IAM_TYPE.exec(resource.type)!;
    const base = match[1]!;
    const style = match[2] as 'member' | 'binding' | 'policy';
    const target = TARGETS[base] ?? { kind: 'other' as const, attribute: '' };
    const v = resource.values;
    const resourceValue = target.attribute ? v[target.attribute] : resource.address;
    if (typeof resourceValue !== 'string') {
      unresolved.push({ source: resource.address, reason: `cannot tell which ${base} it grants on` });
      continue;
    }
    const push = (role: Value | undefined, member: Value | undefined, condition: Value | undefined) => {
      if (typeof role !== 'string' || typeof member !== 'string') {
        unresolved.push({
          source: resource.address,
          reason: `role or member not known at plan time (${describe(role)}, ${describe(member)})`,
        });
        return;
      }
      grants.push({
        kind: target.kind,
        resource: resourceValue,
        role,
        member,
        condition: conditionOf(condition),
        source: resource.address,
        authoritative: style === 'policy',
      });
    };
    if (style === 'member') {
      push(v.role, v.member, v.condition);
    } else if (style === 'binding') {
      const members = v.members;
      if (!Array.isArray(members)) {
        unresolved.push({ source: resource.address, reason: 'members not known at plan time' });
        continue;
      }
      for (const member of members) push(v.role, member, v.condition);
    } else {
      const data = v.policy_data;
      if (typeof data !== 'string') {
        unresolved.push({
          source: resource.address,
          reason: `policy_data not known at plan time (${describe(data)})`,
        });
        continue;
      }
      const policy = JSON.parse(data) as {
        bindings?: { role: string; members: string[]; condition?: ValueObject }[];
      };
      for (const binding of policy.bindings ?? []) {
        for (const member of binding.members)
          push(binding.role, member, binding.condition as Value | undefined);
      }
    }
  }
  return { grants, unresolved };
}

function describe(value: Value | undefined): string {
  if (value instanceof Unknown) return value.toString();
  return JSON.stringify(value) ?? 'undefined';
}

/** Permissions of the predefined roles these checks reason about (object-level storage). */
const PREDEFINED: Record<string, readonly string[]> = {
  'roles/storage.objectViewer': ['storage.objects.get', 'storage.objects.list'],
  'roles/storage.objectCreator': ['storage.objects.create', 'storage.multipartUploads.create'],
  'roles/storage.objectUser': [
    'storage.objects.create',
    'storage.objects.delete',
    'storage.objects.get',
    'storage.objects.list',
    'storage.objects.update',
  ],
  'roles/storage.objectAdmin': [
    'storage.objects.create',
    'storage.objects.delete',
    'storage.objects.get',
    'storage.objects.list',
    'storage.objects.update',
    'storage.objects.setIamPolicy',
  ],
  'roles/storage.admin': [
    'storage.buckets.setIamPolicy',
    'storage.objects.create',
    'storage.objects.delete',
    'storage.objects.get',
    'storage.objects.list',
  ],
  'roles/storage.legacyBucketReader': ['storage.buckets.get', 'storage.objects.list'],
  'roles/storage.legacyBucketWriter': [
    'storage.objects.create',
    'storage.objects.delete',
    'storage.objects.list',
  ],
  'roles/storage.legacyBucketOwner': [
    'storage.buckets.setIamPolicy',
    'storage.objects.create',
    'storage.objects.delete',
    'storage.objects.list',
  ],
  'roles/storage.legacyObjectReader': ['storage.objects.get'],
  'roles/storage.legacyObjectOwner': ['storage.objects.get', 'storage.objects.setIamPolicy'],
  'roles/owner': ['*'],
  'roles/editor': ['*'],
  'roles/viewer': ['storage.objects.get', 'storage.objects.list'],
};

/** The permissions a role grants, for custom roles the plan defines and known predefined ones. */
export function rolePermissions(plan: Plan, role: string): ReadonlySet<string> | undefined {
  const predefined = PREDEFINED[role];
  if (predefined) return new Set(predefined);
  const custom = plan.resources.find(
    (r) => r.type === 'google_project_iam_custom_role' && r.values.name === role,
  );
  const permissions = custom?.values.permissions;
  if (Array.isArray(permissions) && permissions.every((p) => typeof p === 'string'))
    return new Set(permissions as string[]);
  return undefined;
}

export function grants(permissions: ReadonlySet<string> | undefined, permission: string): boolean {
  return permissions === undefined || permissions.has('*') || permissions.has(permission);
}
