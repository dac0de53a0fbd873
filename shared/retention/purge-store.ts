// What retention, erasure and recall need of the metadata store: find what is due through
// indexed queries (so the work grows with what has expired, not with the database), delete
// documents idempotently, and keep a job's ledger — the ids it deleted — apart from the data,
// so that a job interrupted by a crash resumes and counts every deletion exactly once.
// The Firestore adapter is shared/adapters/firestore-purge.ts.

export type PurgeKind = 'record' | 'invitation' | 'device';

/** What a deletion receipt counts. Blob kinds have no metadata of their own. */
export type LedgerKind = 'records' | 'invitations' | 'devices' | 'uploads' | 'quarantined' | 'orphans';
export const LEDGER_KINDS: readonly LedgerKind[] = [
  'records',
  'invitations',
  'devices',
  'uploads',
  'quarantined',
  'orphans',
];

export interface PurgeItem {
  readonly kind: PurgeKind;
  readonly id: string;
  readonly hospitalId: string;
  readonly patientRef: string;
  /** Records: the container in the records bucket, pinned to the generation ingest filed. */
  readonly objectName?: string;
  readonly generation?: string;
  /** Records: the upload it came from, which names its receipt in the outbox. */
  readonly uploadId?: string;
}

/**
 * Items of one kind whose `field` lies at or before `before`, optionally at one hospital.
 * expiresAt: the hard expiry every kind carries. createdAt: records and invitations by age.
 * allStoredAt: records every recipient has stored. lastSeenAt: devices by inactivity.
 */
export interface ExpiryQuery {
  readonly kind: PurgeKind;
  readonly field: 'expiresAt' | 'createdAt' | 'allStoredAt' | 'lastSeenAt';
  readonly before: Date;
  readonly hospitalId?: string;
  readonly limit: number;
}

export type Ledger = Readonly<Record<LedgerKind, readonly string[]>>;

/**
 * How long a finished job keeps its signed receipt, for a retry to be answered with the same one.
 * Its ledger is gone by then; the receipt names record, invitation and device ids, never a patient.
 */
export const FINISHED_JOB_DAYS = 30;

/** When a job finished at `finishedAt` may be deleted (its document's expiresAt, a TTL field). */
export function finishedJobExpiry(finishedAt: Date): Date {
  return new Date(finishedAt.getTime() + FINISHED_JOB_DAYS * 24 * 3600 * 1000);
}

export interface JobState {
  readonly status: 'running' | 'done';
  readonly startedAt: Date;
  /** The signed receipt, once the job is done. */
  readonly receipt?: Uint8Array;
}

export interface PurgeStore {
  findExpired(query: ExpiryQuery): Promise<PurgeItem[]>;
  /** Everything of one kind that belongs to one patient at one hospital, at most `limit`. */
  findForPatient(
    kind: PurgeKind,
    hospitalId: string,
    patientRef: string,
    limit: number,
  ): Promise<PurgeItem[]>;
  /** Which of these record ids still have metadata. */
  existingRecords(recordIds: readonly string[]): Promise<Set<string>>;
  /** Deletes the items' documents; deleting one that is gone already is not an error. */
  removeDocuments(items: readonly PurgeItem[]): Promise<void>;

  /** Starts a job, or returns the state of the one already started under this id. */
  openJob(jobId: string, startedAt: Date): Promise<JobState>;
  /** The job's state, or undefined if it was never started (reads only). */
  getJob(jobId: string): Promise<JobState | undefined>;
  /** Adds ids to the job's ledger before they are deleted; noting an id twice counts it once. */
  note(jobId: string, kind: LedgerKind, ids: readonly string[]): Promise<void>;
  ledger(jobId: string): Promise<Ledger>;
  /**
   * Marks the job done with its signed receipt, kept until `keepUntil` so that a retry gets the
   * same receipt, and drops its ledger in the same write: the receipt lists the ids, and nothing
   * else about them need outlive the job (docs/COMPLIANCE.md, what is left after an erasure).
   */
  finishJob(jobId: string, receipt: Uint8Array, finishedAt: Date, keepUntil: Date): Promise<void>;
  /**
   * Removes a job and its ledger (erasure keeps no list of what it erased), and `alsoRemove` in
   * the same write: erasure deletes the caller's own device with it, so a retry either still
   * finds the ledger (and signs the whole receipt again) or can no longer authenticate.
   */
  discardJob(jobId: string, alsoRemove?: readonly PurgeItem[]): Promise<void>;

  /** A resumable position for incremental scans (the orphan sweep). */
  cursor(name: string): Promise<string | undefined>;
  setCursor(name: string, value: string | undefined): Promise<void>;
}
