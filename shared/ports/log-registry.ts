// What the platform keeps about each audit transparency log beside its objects (Firestore
// `auditLogs/{logId}`): whether a sequencer batch is in flight (so a crashed run is finished
// even if no new entry arrives), and the checkpoints the hospital's witness cosigned, newest
// and past (retention prunes behind one of those). The adapter is shared/adapters/firestore-audit.ts.

export interface WitnessedCheckpoint {
  readonly size: number;
  /** The checkpoint note with the platform's signature and the witness's cosignature. */
  readonly note: string;
  /** The cosignature's own timestamp: by then every entry below `size` existed. */
  readonly cosignedAt: Date;
}

export interface LogState {
  /** The platform key that signs the log's checkpoints, as a note verifier key. */
  readonly verifierKey?: string;
  /** The hospital witness's Ed25519 public key, base64url, as its first cosignature gave it. */
  readonly witnessKey?: string;
  /** The newest cosigned checkpoint. */
  readonly witnessed?: WitnessedCheckpoint;
}

export interface LogRegistry {
  /** Marks a batch in flight for the log, before anything of it is written. */
  markStaging(logId: string): Promise<void>;
  /** Clears the mark once the checkpoint covers the batch, naming the key that signed it. */
  markCommitted(logId: string, verifierKey?: string): Promise<void>;
  /** The logs with a batch in flight (a sequencer crashed, or is running). */
  inFlight(): Promise<string[]>;
  /** Every log that has had an entry sequenced. */
  logs(): Promise<string[]>;
  /** What is known of one log. */
  state(logId: string): Promise<LogState>;
  /**
   * Keeps `checkpoint`, cosigned by `witnessKey`, if it is larger than the newest one kept. The
   * first cosignature fixes the log's witness key; another key is refused ('key-mismatch').
   */
  recordWitnessed(
    logId: string,
    checkpoint: WitnessedCheckpoint,
    witnessKey: string,
  ): Promise<'recorded' | 'stale' | 'key-mismatch'>;
  /** The largest cosigned checkpoint cosigned at or before `at` (a retention anchor). */
  witnessedBefore(logId: string, at: Date): Promise<WitnessedCheckpoint | undefined>;
}
