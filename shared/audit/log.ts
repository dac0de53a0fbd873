// Where audit events are kept, as the services will need it: appends that extend one chain
// (never two concurrent appends forking it) and reads in sequence order for the verifier. The
// Firestore adapter lives in shared/adapters/firestore-audit.ts.
import type { AuditEvent, AuditFields } from './chain.ts';

export interface AuditLog {
  /** Chains and stores the events after the current head, atomically; returns them as stored. */
  append(fields: readonly AuditFields[]): Promise<AuditEvent[]>;
  /** Events in sequence order after `afterSeq` (default 0), at most `limit`. */
  list(options?: { readonly afterSeq?: number; readonly limit?: number }): Promise<AuditEvent[]>;
}
