// The audit event is a wire format the phones check (PROTOCOL.md §16.2), so it is defined in
// shared/core/protocol/audit-event.ts; the functions keep importing it from here.
export {
  auditFieldsSchema,
  logIdOf,
  MIN_AUDIT_RETENTION_DAYS,
  openAuditEvent,
  sealAuditEvent,
} from '../core/protocol/audit-event.ts';
export type { AuditFields, SealedAuditEvent } from '../core/protocol/audit-event.ts';
