// What every handler gets: the state, the policy and who is calling.
import type { Authorizer, Permission } from './permissions.ts';
import type { KmsStore } from './store.ts';

export interface CallContext {
  readonly store: KmsStore;
  readonly auth: Authorizer;
  /** The IAM principal of the caller, e.g. serviceAccount:cb-pairing@p.iam.gserviceaccount.com. */
  readonly principal: string;
}

export function authorize(ctx: CallContext, permission: Permission, resource: string): void {
  ctx.auth.check(ctx.principal, permission, resource);
}
