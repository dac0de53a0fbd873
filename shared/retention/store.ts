// Where each hospital's retention policy is kept. A change is audited: the adapter appends the
// `policy.changed` event before it writes the new policy, so an interrupted change can leave an
// audit entry too many but never a change without one (NEN 7513 prefers the former).
import type { RetentionPolicy } from './policy.ts';

export interface PolicyChange {
  readonly hospitalId: string;
  readonly changes: Partial<RetentionPolicy>;
  /** Who changed it (NEN 7513: who), e.g. the operator's account. */
  readonly operator: string;
  readonly at: Date;
}

export interface RetentionPolicyStore {
  /** The hospital's policy, or the defaults if it never set one. */
  get(hospitalId: string): Promise<RetentionPolicy>;
  /** Applies a change within the bounds (ZodError otherwise, and nothing is written). */
  change(
    change: PolicyChange,
  ): Promise<{ readonly before: RetentionPolicy; readonly after: RetentionPolicy }>;
}
