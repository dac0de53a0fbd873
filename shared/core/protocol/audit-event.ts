// What one audit event says (NEN 7513: who did what to whose data, when, on whose behalf), and
// how it becomes a leaf of its log (shared/core/tlog/audit-leaf.ts). Never PHI: ids only. A wire
// format (PROTOCOL.md §16.2): a phone reads the event text back and checks it against what its
// access log shows, so it lives with the protocol, where the device SDK can reach it.
import { z } from 'zod';
import { platform } from '#platform';
import { auditActorSchema, PATIENT_AUDIT_ACTIONS } from './api.ts';
import { canonicalJson } from './encoding.ts';
import {
  deviceIdSchema,
  hospitalIdSchema,
  invitationIdSchema,
  operatorRefSchema,
  patientRefSchema,
  recordIdSchema,
  timestampSchema,
} from './ids.ts';
import { AUDIT_LEAF_SALT_SIZE, auditLeafData, PLATFORM_LOG } from '../tlog/audit-leaf.ts';

export const auditFieldsSchema = z.strictObject({
  at: timestampSchema,
  actor: auditActorSchema,
  action: z.enum([...PATIENT_AUDIT_ACTIONS, 'policy.changed', 'retention.run']),
  hospitalId: hospitalIdSchema.optional(),
  patientRef: patientRefSchema.optional(),
  /** Whose request the actor acted on (e.g. the patient whose device asked). */
  onBehalfOf: z.string().min(1).max(200).optional(),
  recordId: recordIdSchema.optional(),
  deviceId: deviceIdSchema.optional(),
  invitationId: invitationIdSchema.optional(),
  /** The member of staff who acted for the hospital: the hospital's pseudonym, never a name. */
  operatorRef: operatorRefSchema.optional(),
  /** A stable outcome or error code. */
  outcome: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]{1,63}$/)
    .optional(),
});
export type AuditFields = z.output<typeof auditFieldsSchema>;

/** NEN 7513's floor: no audit entry may be pruned before it is five years old. */
export const MIN_AUDIT_RETENTION_DAYS = 1825;

/** The log an event belongs to: its hospital's, or the platform's for events no hospital owns. */
export function logIdOf(fields: Pick<AuditFields, 'hospitalId'>): string {
  return fields.hospitalId ?? PLATFORM_LOG;
}

/** An event as it is committed to: its exact text, its salt, and the leaf they make. */
export interface SealedAuditEvent {
  readonly fields: AuditFields;
  readonly event: string;
  readonly salt: Uint8Array;
  readonly leaf: Uint8Array;
}

export function sealAuditEvent(
  fields: AuditFields,
  salt: Uint8Array = platform.randomBytes(AUDIT_LEAF_SALT_SIZE),
): SealedAuditEvent {
  const parsed = auditFieldsSchema.parse(fields);
  const event = canonicalJson(parsed);
  return { fields: parsed, event, salt: new Uint8Array(salt), leaf: auditLeafData(salt, event) };
}

/** Reads an event back from its text, checking it is exactly the canonical text of its fields. */
export function openAuditEvent(event: string): AuditFields {
  const fields = auditFieldsSchema.parse(JSON.parse(event));
  if (canonicalJson(fields) !== event) throw new Error('the audit event text is not canonical');
  return fields;
}
