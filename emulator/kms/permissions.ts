// IAM for the emulator: the predefined Cloud KMS roles, reduced to the permissions the
// emulated methods check. A binding on a resource also covers everything beneath it
// (a key ring's binding covers its keys), as IAM inheritance does.
import { LOCAL_OWNER } from '../../shared/emulation.ts';
import { permissionDenied } from './errors.ts';
import type { KmsPolicy } from './policy.ts';

export type Permission =
  | 'cloudkms.keyRings.create'
  | 'cloudkms.keyRings.get'
  | 'cloudkms.keyRings.list'
  | 'cloudkms.cryptoKeys.create'
  | 'cloudkms.cryptoKeys.get'
  | 'cloudkms.cryptoKeys.list'
  | 'cloudkms.cryptoKeys.update'
  | 'cloudkms.cryptoKeyVersions.create'
  | 'cloudkms.cryptoKeyVersions.get'
  | 'cloudkms.cryptoKeyVersions.list'
  | 'cloudkms.cryptoKeyVersions.update'
  | 'cloudkms.cryptoKeyVersions.destroy'
  | 'cloudkms.cryptoKeyVersions.restore'
  | 'cloudkms.cryptoKeyVersions.useToEncrypt'
  | 'cloudkms.cryptoKeyVersions.useToDecrypt'
  | 'cloudkms.cryptoKeyVersions.useToSign'
  | 'cloudkms.cryptoKeyVersions.useToVerify'
  | 'cloudkms.cryptoKeyVersions.viewPublicKey';

const VIEW: Permission[] = [
  'cloudkms.keyRings.get',
  'cloudkms.keyRings.list',
  'cloudkms.cryptoKeys.get',
  'cloudkms.cryptoKeys.list',
  'cloudkms.cryptoKeyVersions.get',
  'cloudkms.cryptoKeyVersions.list',
];

const MANAGE: Permission[] = [
  ...VIEW,
  'cloudkms.keyRings.create',
  'cloudkms.cryptoKeys.create',
  'cloudkms.cryptoKeys.update',
  'cloudkms.cryptoKeyVersions.create',
  'cloudkms.cryptoKeyVersions.update',
  'cloudkms.cryptoKeyVersions.destroy',
  'cloudkms.cryptoKeyVersions.restore',
];

const USE: Permission[] = [
  'cloudkms.cryptoKeyVersions.useToEncrypt',
  'cloudkms.cryptoKeyVersions.useToDecrypt',
  'cloudkms.cryptoKeyVersions.useToSign',
  'cloudkms.cryptoKeyVersions.useToVerify',
  'cloudkms.cryptoKeyVersions.viewPublicKey',
];

export const ROLE_PERMISSIONS = {
  'roles/cloudkms.admin': MANAGE,
  'roles/cloudkms.viewer': VIEW,
  'roles/cloudkms.cryptoKeyEncrypter': ['cloudkms.cryptoKeyVersions.useToEncrypt'],
  'roles/cloudkms.cryptoKeyDecrypter': ['cloudkms.cryptoKeyVersions.useToDecrypt'],
  'roles/cloudkms.cryptoKeyEncrypterDecrypter': [
    'cloudkms.cryptoKeyVersions.useToEncrypt',
    'cloudkms.cryptoKeyVersions.useToDecrypt',
  ],
  'roles/cloudkms.signer': ['cloudkms.cryptoKeyVersions.useToSign'],
  'roles/cloudkms.signerVerifier': [
    'cloudkms.cryptoKeyVersions.useToSign',
    'cloudkms.cryptoKeyVersions.useToVerify',
    'cloudkms.cryptoKeyVersions.viewPublicKey',
  ],
  'roles/cloudkms.publicKeyViewer': ['cloudkms.cryptoKeyVersions.viewPublicKey'],
  'roles/cloudkms.cryptoOperator': USE,
  'roles/owner': [...MANAGE, ...USE],
} as const satisfies Record<string, readonly Permission[]>;

export type KmsRole = keyof typeof ROLE_PERMISSIONS;
export const KMS_ROLES = Object.keys(ROLE_PERMISSIONS) as [KmsRole, ...KmsRole[]];

interface Grant {
  readonly resource: string;
  readonly permissions: ReadonlySet<Permission>;
}

export class Authorizer {
  readonly #grants = new Map<string, Grant[]>();

  constructor(policy: KmsPolicy) {
    for (const binding of policy.bindings) {
      const permissions = new Set<Permission>(ROLE_PERMISSIONS[binding.role]);
      for (const member of binding.members) {
        const list = this.#grants.get(member) ?? [];
        list.push({ resource: binding.resource, permissions });
        this.#grants.set(member, list);
      }
    }
  }

  allows(principal: string, permission: Permission, resource: string): boolean {
    if (principal === LOCAL_OWNER) return true;
    return (this.#grants.get(principal) ?? []).some(
      (grant) =>
        grant.permissions.has(permission) &&
        (resource === grant.resource || resource.startsWith(`${grant.resource}/`)),
    );
  }

  /** Throws PERMISSION_DENIED worded as Cloud KMS words it. */
  check(principal: string, permission: Permission, resource: string): void {
    if (!this.allows(principal, permission, resource)) throw permissionDenied(permission, resource);
  }
}
