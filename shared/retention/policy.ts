// Retention policy per hospital (GDPR storage limitation; groundwork for the retention function):
// how long each kind of data may live. Every setting has a safe default and hard bounds, so a
// typo in an operator's command cannot keep records for decades or delete audit entries that
// NEN 7513 requires to be kept. Pure: stored by shared/adapters/firestore-retention.ts.
import { z } from 'zod';

/** [default, minimum, maximum] per setting. */
export const RETENTION_BOUNDS = {
  /** A delivered record, from the manifest's creation (the manifest's own expiry may be shorter). */
  recordDays: [90, 1, 400],
  /** Once every active recipient device has acknowledged it as stored. */
  acknowledgedRecordDays: [14, 1, 400],
  /** An unused invitation (the pairing function also caps it at 7 days). */
  invitationHours: [72, 1, 168],
  /** A device that has not called the records API for this long is removed. */
  deviceInactiveDays: [180, 7, 730],
  /** An upload ingest never finished (stuck or abandoned). */
  leftoverUploadHours: [24, 1, 168],
  /** A quarantined upload kept for hospital ICT. */
  quarantineDays: [30, 1, 90],
  /** Audit entries: NEN 7513 asks for at least five years. */
  auditEntryDays: [1825, 1825, 3650],
} as const satisfies Record<string, readonly [number, number, number]>;

export type RetentionSetting = keyof typeof RETENTION_BOUNDS;
export const RETENTION_SETTINGS = Object.keys(RETENTION_BOUNDS) as RetentionSetting[];

export type RetentionPolicy = { readonly [K in RetentionSetting]: number };

export const DEFAULT_RETENTION_POLICY: RetentionPolicy = Object.fromEntries(
  RETENTION_SETTINGS.map((name) => [name, RETENTION_BOUNDS[name][0]]),
) as RetentionPolicy;

const settingSchema = (name: RetentionSetting) =>
  z.int().min(RETENTION_BOUNDS[name][1]).max(RETENTION_BOUNDS[name][2]);

/** A complete policy: every setting within its bounds, and no unknown settings. */
export const retentionPolicySchema = z
  .strictObject(
    Object.fromEntries(RETENTION_SETTINGS.map((name) => [name, settingSchema(name)])) as {
      [K in RetentionSetting]: z.ZodInt;
    },
  )
  .refine((policy) => policy.acknowledgedRecordDays <= policy.recordDays, {
    message: 'acknowledged records cannot be kept longer than records',
    path: ['acknowledgedRecordDays'],
  });

/** The stored policy completed with defaults; throws (zod) if anything is out of bounds. */
export function resolvePolicy(stored: Partial<Record<string, unknown>> | undefined): RetentionPolicy {
  return retentionPolicySchema.parse({ ...DEFAULT_RETENTION_POLICY, ...stored });
}

/** `current` with `changes` applied; throws (zod) naming the first setting out of bounds. */
export function changePolicy(current: RetentionPolicy, changes: Partial<RetentionPolicy>): RetentionPolicy {
  return retentionPolicySchema.parse({ ...current, ...changes });
}
