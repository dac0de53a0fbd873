// Where audit events are kept, as the services need it (NEN 7513; docs/ARCHITECTURE.md, "The
// audit transparency log"). Recording an event writes a document of its own: no head, no
// transaction across events, so nothing contends however many events one patient collects.
// The sequencer (shared/services/sequencer.ts) later gives each event its index in its
// hospital's log and commits it into the Merkle tree; until then the event is pending. An
// entry may carry a `once` key so that a retried step (a redelivered ingest event, a
// retention rerun after a crash) records its event exactly once. The Firestore adapter is
// shared/adapters/firestore-audit.ts.
import type { AuditFields } from './fields.ts';

export interface AuditEntry {
  readonly fields: AuditFields;
  /** Idempotency key: an entry whose key was recorded before is skipped. */
  readonly once?: string;
}

/** One recorded event: its exact text and salt (which make its leaf), and its index once sequenced. */
export interface RecordedAuditEntry {
  readonly id: string;
  readonly logId: string;
  readonly fields: AuditFields;
  readonly event: string;
  readonly salt: Uint8Array;
  /** Its leaf index in the log; absent while pending. */
  readonly index?: number;
}

export interface AuditLog {
  /** Records the entries, each in a document of its own. */
  append(entries: readonly AuditEntry[]): Promise<void>;
  /**
   * One patient's events at one hospital, newest first, at most `limit`, after the entry whose
   * id is `after` (a page token).
   */
  forPatient(
    hospitalId: string,
    patientRef: string,
    options: { readonly limit: number; readonly after?: string },
  ): Promise<RecordedAuditEntry[]>;
}

/** What the sequencer, retention and verifiers need beyond recording. */
export interface AuditEntryStore {
  /** Entries not yet sequenced, oldest first, across all logs, at most `limit`. */
  pending(limit: number): Promise<RecordedAuditEntry[]>;
  /** The entries with these ids (undefined where there is none), in the order asked. */
  get(ids: readonly string[]): Promise<(RecordedAuditEntry | undefined)[]>;
  /** Marks each entry with its leaf index (idempotent: the same index again is a no-op). */
  assignIndexes(assignments: readonly { readonly id: string; readonly index: number }[]): Promise<void>;
  /** A log's sequenced entries with index in [from, from + limit), by index. */
  sequenced(
    logId: string,
    options: { readonly from: number; readonly limit: number },
  ): Promise<RecordedAuditEntry[]>;
  /** Deletes a log's sequenced entries with index below `before` (their retention is over); how many went. */
  pruneBefore(logId: string, before: number): Promise<number>;
}
