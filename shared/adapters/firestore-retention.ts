// Firestore adapter for retention policies (shared/retention/store.ts): one document per
// hospital in `retentionPolicies/{hospitalId}`, apart from the hospital registry so that
// re-registering a hospital's key never resets its policy. Changes are audited first.
import type { Firestore } from '@google-cloud/firestore';
import type { AuditLog } from '../audit/log.ts';
import { formatTimestamp } from '../core/protocol/ids.ts';
import { changePolicy, resolvePolicy } from '../retention/policy.ts';
import type { PolicyChange, RetentionPolicyStore } from '../retention/store.ts';
import { ts } from './firestore-values.ts';

export const RETENTION_POLICIES_COLLECTION = 'retentionPolicies';

export function createFirestoreRetentionPolicyStore(
  firestore: Firestore,
  audit: AuditLog,
): RetentionPolicyStore {
  const policies = firestore.collection(RETENTION_POLICIES_COLLECTION);

  async function get(hospitalId: string) {
    const snapshot = await policies.doc(hospitalId).get();
    return resolvePolicy(snapshot.exists ? (snapshot.get('policy') as Record<string, unknown>) : undefined);
  }

  return Object.freeze({
    get,
    async change(change: PolicyChange) {
      const before = await get(change.hospitalId);
      const after = changePolicy(before, change.changes); // out of bounds: throws, nothing written
      await audit.append([
        {
          fields: {
            at: formatTimestamp(change.at),
            actor: { kind: 'operator', id: change.operator },
            action: 'policy.changed',
            hospitalId: change.hospitalId,
          },
        },
      ]);
      await policies.doc(change.hospitalId).set({ policy: { ...after }, updatedAt: ts(change.at) });
      return { before, after };
    },
  });
}
