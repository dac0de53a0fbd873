// Record metadata as the ingest and records services need it (invariants 1, 2, 8, 9): which
// container in the records bucket belongs to which hospital, patient and recipient devices, and
// which devices have acknowledged it. Nothing here is PHI: ids are opaque, the content class is
// coarse, and sizes are of ciphertext. The Firestore adapter lives in
// shared/adapters/firestore-records.ts.

/** The manifest's coarse class (PROTOCOL.md §5.3); no filename or media type reaches the platform. */
export type ContentClass = 'document' | 'fhir' | 'imaging' | 'other';

export interface NewRecord {
  readonly recordId: string;
  /** The upload it came from; a retried ingest of the same upload finds its own record. */
  readonly uploadId: string;
  readonly hospitalId: string;
  readonly patientRef: string;
  readonly contentClass: ContentClass;
  /** From the signed manifest. */
  readonly createdAt: Date;
  /** From the signed manifest; the retention job deletes the record then. */
  readonly expiresAt: Date;
  /** When ingest filed it; the device's list is ordered by this. */
  readonly acceptedAt: Date;
  /** Bytes of the container in the records bucket. */
  readonly size: number;
  /** The container's object name in the records bucket. */
  readonly objectName: string;
  /** Its Cloud Storage generation, so reads are pinned to exactly what ingest checked. */
  readonly generation: string;
  /** deviceIds that hold a wrapped key in the manifest. */
  readonly recipients: readonly string[];
}

export interface RecordAck {
  readonly outcome: 'stored' | 'failed';
  /** The device's error code when it could not open the record. */
  readonly errorCode?: string;
  readonly at: Date;
}

export interface StoredRecord extends NewRecord {
  /** Acknowledgements by deviceId. */
  readonly acks: Readonly<Record<string, RecordAck>>;
}

/** Where a device's listing continues: after this record in (acceptedAt, recordId) order. */
export interface RecordCursor {
  readonly acceptedAt: Date;
  readonly recordId: string;
}

export interface RecordPage {
  readonly records: readonly StoredRecord[];
  /** Present when more records may follow. */
  readonly next?: RecordCursor;
}

export interface RecordStore {
  /**
   * Create-only. `created: false` hands back the record already stored under this id, so the
   * caller can tell its own earlier attempt (same uploadId) from a collision (another upload).
   */
  create(record: NewRecord): Promise<{ readonly created: boolean; readonly record: StoredRecord }>;
  get(recordId: string): Promise<StoredRecord | undefined>;
  /**
   * Records that list this device as a recipient, in (acceptedAt, recordId) order, starting after
   * `after`. Expired records are left out.
   */
  listForDevice(
    deviceId: string,
    options: { readonly pageSize: number; readonly after?: RecordCursor; readonly now: Date },
  ): Promise<RecordPage>;
  /**
   * Stores a recipient's acknowledgement. A 'stored' acknowledgement is final: a later one does
   * not replace it. Returns the record as it now is, or undefined if the record does not exist
   * or the device is not one of its recipients. Once every recipient in `activeRecipients`
   * (default: all of them) has stored it, the record is marked for the shorter retention.
   */
  acknowledge(
    recordId: string,
    deviceId: string,
    ack: RecordAck,
    activeRecipients?: readonly string[],
  ): Promise<StoredRecord | undefined>;
}
