// The retention service (issue: data minimisation and retention; GDPR storage limitation):
// deletes what each hospital's policy says has expired — records with their containers,
// invitations, devices (and so their push tokens), leftover uploads, quarantined uploads, and
// containers whose metadata is gone — in bounded batches, and signs a deletion receipt.
//
// Work is found through indexed expiry queries, so a run costs what has expired, not what is
// stored; the orphan sweep is the one scan, and it reads one bounded page per run from where
// the last run stopped. A run has an id (the scheduled time, or the operator's); a rerun with
// the same id after a crash resumes it, and the ledger makes every deletion count once.
import type { AuditEntryStore, AuditLog } from '../audit/log.ts';
import { PLATFORM_LOG } from '../core/tlog/audit-leaf.ts';
import type { LogRegistry } from '../ports/log-registry.ts';
import type { PrivateKey } from '../core/crypto/index.ts';
import type { BlobInfo, BlobStore } from '../ports/blob-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { Logger } from '../ports/logger.ts';
import type { HospitalRegistry } from '../ports/pairing-store.ts';
import {
  MAX_DELETIONS_PER_RECEIPT,
  readDeletionReceiptUnverified,
  type DeletionReceipt,
} from '../core/protocol/deletion-receipt.ts';
import { formatTimestamp } from '../core/protocol/ids.ts';
import { DEFAULT_RETENTION_POLICY, type RetentionPolicy } from '../retention/policy.ts';
import {
  finishedJobExpiry,
  type ExpiryQuery,
  type LedgerKind,
  type PurgeItem,
  type PurgeStore,
} from '../retention/purge-store.ts';
import type { RetentionPolicyStore } from '../retention/store.ts';
import {
  DELETE_CONCURRENCY,
  deleteGeneration,
  deletionReceiptFor,
  purgeItems,
  type PurgeContext,
} from './purge.ts';
import { inParallel } from '../core/in-parallel.ts';

const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;

export interface RetentionLimits {
  /** Items per batch: one ledger note, one audit append, one Firestore batch. */
  readonly batchSize: number;
  /** Deletions per run; the rest waits for the next run (the receipt says `complete: false`). */
  readonly maxDeletions: number;
  /** Objects of the records bucket the orphan sweep checks per run. */
  readonly orphanScanObjects: number;
  /** A container younger than this may be an ingest still filing its record: not an orphan. */
  readonly orphanGraceHours: number;
}

export const DEFAULT_RETENTION_LIMITS: RetentionLimits = {
  batchSize: 250,
  maxDeletions: MAX_DELETIONS_PER_RECEIPT,
  orphanScanObjects: 1000,
  orphanGraceHours: 24,
};

export interface RetentionServiceOptions {
  readonly store: PurgeStore;
  readonly policies: RetentionPolicyStore;
  readonly hospitals: HospitalRegistry;
  readonly blobs: BlobStore;
  readonly buckets: {
    readonly ingest: string;
    readonly records: string;
    readonly outbox: string;
    readonly quarantine: string;
  };
  readonly audit: AuditLog;
  /** The transparency logs' entries and witnessed checkpoints, for pruning audit entries. */
  readonly auditLogs: { readonly entries: AuditEntryStore; readonly registry: LogRegistry };
  readonly clock: Clock;
  /** The retention function's own private key (its deletion receipts). */
  readonly signingKey: () => Promise<PrivateKey>;
  readonly logger?: Logger;
  readonly limits?: Partial<RetentionLimits>;
}

export interface RetentionRunRequest {
  /** Names the run; the same id resumes it (or returns its receipt once done). */
  readonly jobId: string;
}

export interface RetentionRunResult {
  readonly receipt: Uint8Array;
  readonly summary: DeletionReceipt;
  /** True when this call found the run already finished and only returned its receipt. */
  readonly alreadyDone: boolean;
}

export interface RetentionService {
  run(request: RetentionRunRequest): Promise<RetentionRunResult>;
}

const ORPHAN_CURSOR = 'orphans';
const RECORD_OBJECT = /^hospitals\/([a-z0-9][a-z0-9-]{2,39})\/records\/([A-Za-z0-9_-]{22})\.cbr$/;
const HOSPITAL_PREFIX = /^hospitals\/([a-z0-9][a-z0-9-]{2,39})\//;

export function createRetentionService(options: RetentionServiceOptions): RetentionService {
  const { store, blobs, buckets, audit, clock } = options;
  const limits = { ...DEFAULT_RETENTION_LIMITS, ...options.limits };
  const deps = { store, blobs, recordsBucket: buckets.records, receiptsBucket: buckets.outbox, audit };

  return Object.freeze({
    async run(request: RetentionRunRequest): Promise<RetentionRunResult> {
      const startedAt = clock.now();
      const job = await store.openJob(request.jobId, startedAt);
      if (job.status === 'done' && job.receipt) {
        return {
          receipt: job.receipt,
          summary: readDeletionReceiptUnverified(job.receipt),
          alreadyDone: true,
        };
      }
      const now = clock.now();
      const noted = await store.ledger(request.jobId);
      let budget = limits.maxDeletions - Object.values(noted).reduce((n, ids) => n + ids.length, 0);
      const context: PurgeContext = {
        jobId: request.jobId,
        at: now,
        actor: { kind: 'system', id: 'retention' },
        recordAction: 'record.deleted',
        outcome: 'EXPIRED',
      };

      /** Set when something due was left for the next run because the budget ran out. */
      let leftOver = false;

      /**
       * Finds everything `find` says is due, up to the budget, with one query, then purges it batch
       * by batch. One query per kind keeps round trips (and, on the emulator, full scans) few.
       */
      async function drain(find: (limit: number) => Promise<PurgeItem[]>): Promise<void> {
        if (budget <= 0) {
          leftOver ||= (await find(1)).length > 0;
          return;
        }
        const found = await find(budget + 1);
        leftOver ||= found.length > budget;
        const items = found.slice(0, budget);
        for (let i = 0; i < items.length; i += limits.batchSize) {
          await purgeItems(deps, context, items.slice(i, i + limits.batchSize));
        }
        budget -= items.length;
      }
      const expired = (query: Omit<ExpiryQuery, 'limit'>) => (limit: number) =>
        store.findExpired({ ...query, limit });
      const ago = (ms: number) => new Date(now.getTime() - ms);

      const hospitals = await options.hospitals.listHospitals();
      const policies = new Map<string, RetentionPolicy>();
      for (const hospital of hospitals) {
        policies.set(hospital.hospitalId, await options.policies.get(hospital.hospitalId));
      }
      const policyOf = (hospitalId: string | undefined) =>
        (hospitalId !== undefined ? policies.get(hospitalId) : undefined) ?? DEFAULT_RETENTION_POLICY;

      // Metadata with its blobs: the hard expiry first, then each hospital's shorter policy.
      for (const kind of ['record', 'invitation', 'device'] as const) {
        await drain(expired({ kind, field: 'expiresAt', before: now }));
      }
      for (const [hospitalId, policy] of policies) {
        for (const [kind, field, ageMs] of policyQueries(policy)) {
          await drain(expired({ kind, field, hospitalId, before: ago(ageMs) }));
        }
      }

      // Blobs without metadata of their own: uploads ingest never finished, and quarantine.
      const sweepBucket = async (
        bucket: string,
        kind: LedgerKind,
        maxAgeMs: (p: RetentionPolicy) => number,
      ) => {
        let pageToken: string | undefined;
        do {
          const page = await blobs.list(bucket, '', {
            maxResults: 1000,
            ...(pageToken ? { pageToken } : {}),
          });
          const due = page.items.filter((blob) =>
            olderThan(blob, ago(maxAgeMs(policyOf(HOSPITAL_PREFIX.exec(blob.name)?.[1])))),
          );
          leftOver ||= due.length > budget;
          await deleteBlobs(bucket, kind, due);
          pageToken = page.nextPageToken;
          // Past the budget, listing goes on only until something due is known to be left.
        } while (pageToken && !(budget <= 0 && leftOver));
      };
      const deleteBlobs = async (bucket: string, kind: LedgerKind, due: readonly BlobInfo[]) => {
        const take = due.slice(0, Math.max(0, budget));
        if (take.length === 0) return;
        await store.note(
          request.jobId,
          kind,
          take.map((blob) => blob.name),
        );
        await inParallel(take, DELETE_CONCURRENCY, (blob) =>
          deleteGeneration(blobs, bucket, blob.name, blob.generation),
        );
        budget -= take.length;
      };
      await sweepBucket(buckets.ingest, 'uploads', (p) => p.leftoverUploadHours * HOUR_MS);
      await sweepBucket(buckets.quarantine, 'quarantined', (p) => p.quarantineDays * DAY_MS);

      // Orphans: containers whose record is gone (an ingest abandoned between copy and filing).
      if (budget > 0) {
        const cursor = await store.cursor(ORPHAN_CURSOR);
        const page = await blobs
          .list(buckets.records, 'hospitals/', {
            maxResults: limits.orphanScanObjects,
            ...(cursor ? { pageToken: cursor } : {}),
          })
          .catch(() => blobs.list(buckets.records, 'hospitals/', { maxResults: limits.orphanScanObjects }));
        const named = page.items.map((blob) => ({ blob, recordId: RECORD_OBJECT.exec(blob.name)?.[2] }));
        const known = await store.existingRecords(named.flatMap((n) => (n.recordId ? [n.recordId] : [])));
        const graceCutoff = ago(limits.orphanGraceHours * HOUR_MS);
        const orphans = named
          .filter(
            (n) => (n.recordId === undefined || !known.has(n.recordId)) && olderThan(n.blob, graceCutoff),
          )
          .map((n) => n.blob);
        leftOver ||= orphans.length > budget;
        await deleteBlobs(buckets.records, 'orphans', orphans);
        await store.setCursor(ORPHAN_CURSOR, page.nextPageToken);
      }

      // Audit entries past their retention: the events (their text and salt) below the largest
      // checkpoint the hospital's witness cosigned before the cutoff. The witness's timestamp,
      // not the platform's word, shows every entry below it is old enough. Tiles and checkpoints
      // stay, so no proof a phone, witness or monitor needs ever breaks; a pruned leaf is a
      // hash of a salt that no longer exists anywhere.
      let prunedAuditEvents = 0;
      for (const logId of await options.auditLogs.registry.logs()) {
        const hospitalId = logId === PLATFORM_LOG ? undefined : logId;
        const cutoff = ago(policyOf(hospitalId).auditEntryDays * DAY_MS);
        const anchor = await options.auditLogs.registry.witnessedBefore(logId, cutoff);
        if (anchor) prunedAuditEvents += await options.auditLogs.entries.pruneBefore(logId, anchor.size);
      }

      const finishedAt = clock.now();
      const key = await options.signingKey();
      const { receipt, summary } = await deletionReceiptFor(
        store,
        {
          reason: 'retention',
          jobId: request.jobId,
          startedAt: formatTimestamp(job.startedAt),
          finishedAt: formatTimestamp(finishedAt),
          complete: !leftOver,
          ...(prunedAuditEvents > 0 ? { prunedAuditEvents } : {}),
        },
        key,
      );
      await audit.append([
        {
          fields: {
            at: formatTimestamp(finishedAt),
            actor: { kind: 'system', id: 'retention' },
            action: 'retention.run',
            outcome: summary.complete ? 'COMPLETE' : 'PARTIAL',
          },
          once: `${request.jobId}:run`,
        },
      ]);
      await store.finishJob(request.jobId, receipt, finishedAt, finishedJobExpiry(finishedAt));
      options.logger?.info('retention run finished', {
        operation: 'retention.run',
        count: Object.values(summary.deleted).reduce((n, ids) => n + ids.length, 0),
        durationMs: finishedAt.getTime() - now.getTime(),
      });
      return { receipt, summary, alreadyDone: false };
    },
  });
}

/** What a hospital's policy expires, by which field, after how long. */
function policyQueries(policy: RetentionPolicy): [ExpiryQuery['kind'], ExpiryQuery['field'], number][] {
  return [
    ['record', 'createdAt', policy.recordDays * DAY_MS],
    ['record', 'allStoredAt', policy.acknowledgedRecordDays * DAY_MS],
    ['invitation', 'createdAt', policy.invitationHours * HOUR_MS],
    ['device', 'lastSeenAt', policy.deviceInactiveDays * DAY_MS],
  ];
}

function olderThan(blob: BlobInfo, cutoff: Date): boolean {
  return blob.createdAt !== undefined && blob.createdAt <= cutoff;
}
