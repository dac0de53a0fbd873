// Where audit events are kept, as the services need it. Each patient at each hospital has a chain
// of their own, each hospital one more for events about no patient, and the platform one for
// events no hospital owns: a chain's head is one document, which Firestore updates about once a
// second, so chains must be as narrow as the events that contend for them. The patient's chain
// is also exactly their access log. Appends extend a chain atomically; an entry may carry a
// `once` key so that a retried step (a redelivered ingest event, a retention rerun after a
// crash) logs its event exactly once. The Firestore adapter is shared/adapters/firestore-audit.ts.
import type { AuditCheckpoint, AuditEvent, AuditFields } from './chain.ts';

/** The chain of events that no hospital owns (operator actions on the platform itself). */
export const PLATFORM_CHAIN = 'platform';

export function chainOf(fields: Pick<AuditFields, 'hospitalId' | 'patientRef'>): string {
  if (fields.hospitalId === undefined) return PLATFORM_CHAIN;
  return fields.patientRef === undefined
    ? fields.hospitalId
    : patientChain(fields.hospitalId, fields.patientRef);
}

/** One patient's chain at one hospital ('.' cannot occur in either id). */
export function patientChain(hospitalId: string, patientRef: string): string {
  return `${hospitalId}.${patientRef}`;
}

export interface AuditEntry {
  readonly fields: AuditFields;
  /** Idempotency key: an entry whose key was logged before is skipped. */
  readonly once?: string;
}

export interface AuditLog {
  /** Chains and stores the entries after their chain's head, atomically per chain. */
  append(entries: readonly AuditEntry[]): Promise<AuditEvent[]>;
  /** One chain's events in sequence order after `afterSeq` (default 0), at most `limit`. */
  list(
    chain: string,
    options?: { readonly afterSeq?: number; readonly limit?: number },
  ): Promise<AuditEvent[]>;
  /** The chains that have events (all of them: one per patient, so this grows with patients). */
  chains(): Promise<string[]>;
  /** The chains with events appended since their last checkpoint. */
  unsealedChains(): Promise<string[]>;
  /** The chains whose oldest kept event is at or before `at` (candidates for pruning). */
  chainsOlderThan(at: Date): Promise<string[]>;
  /** One patient's events at one hospital, newest first, at most `limit`, before `beforeSeq`. */
  forPatient(
    hospitalId: string,
    patientRef: string,
    options: { readonly limit: number; readonly beforeSeq?: number },
  ): Promise<AuditEvent[]>;
  /** Signs the chain's current head (nothing if the chain is empty) and stores the checkpoint. */
  checkpoint(
    chain: string,
    sign: (head: { seq: number; hash: string; at: string }) => Promise<Uint8Array> | Uint8Array,
    at: Date,
  ): Promise<AuditCheckpoint | undefined>;
  checkpoints(chain: string): Promise<AuditCheckpoint[]>;
  /**
   * Deletes the chain's events up to and including `throughSeq` (their retention is over), and
   * the checkpoints before it; the checkpoint at `throughSeq` stays as the signed anchor the
   * verifier needs. Returns how many events went.
   */
  prune(chain: string, throughSeq: number): Promise<number>;
}

/** Every event of one chain, in sequence order, read page by page. */
export async function readChain(audit: AuditLog, chain: string): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  for (;;) {
    const page = await audit.list(chain, { afterSeq: events.at(-1)?.seq ?? 0 });
    events.push(...page);
    if (page.length === 0) return events;
  }
}
