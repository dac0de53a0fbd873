// Structured logging (invariant 9). A log entry is a fixed message chosen by the code plus a
// few typed fields from an allow-list: nothing else reaches the log, so PHI, keys, tokens, QR
// secrets and hospital patient identifiers have no way in. The Cloud Logging adapter lives
// in shared/adapters/cloud-logger.ts.

/** Cloud Logging's severities, lowest first. */
export const SEVERITIES = [
  'DEBUG',
  'INFO',
  'NOTICE',
  'WARNING',
  'ERROR',
  'CRITICAL',
  'ALERT',
  'EMERGENCY',
] as const;
export type Severity = (typeof SEVERITIES)[number];

/** The only fields an entry may carry, and the type of each. */
export const LOG_FIELD_TYPES = {
  /** A stable error or outcome code (e.g. DIGEST_MISMATCH). */
  code: 'string',
  /** An HTTP status or a short status word. */
  status: 'string|number',
  /** The Cloud Trace id (32 hex digits) of the request; becomes logging.googleapis.com/trace. */
  traceId: 'string',
  /** The span id (16 hex digits); becomes logging.googleapis.com/spanId. */
  spanId: 'string',
  /** The platform's id of a hospital (not a patient identifier). */
  hospitalId: 'string',
  /** A device key fingerprint. */
  deviceId: 'string',
  uploadId: 'string',
  recordId: 'string',
  invitationId: 'string',
  /**
   * A fixed name for the step being logged (e.g. "copy-to-records"). Alerts match on it:
   * infra's ingest-rejection metric counts `operation: "ingest.rejected"`.
   */
  operation: 'string',
  function: 'string',
  durationMs: 'number',
  count: 'number',
  bytes: 'number',
  attempt: 'number',
} as const;

export type LogFieldName = keyof typeof LOG_FIELD_TYPES;
type FieldType<K extends LogFieldName> = (typeof LOG_FIELD_TYPES)[K] extends 'number'
  ? number
  : (typeof LOG_FIELD_TYPES)[K] extends 'string|number'
    ? string | number
    : string;

export type LogFields = { readonly [K in LogFieldName]?: FieldType<K> };

/** True for `string` and for template patterns such as `failed for ${string}`: types with no fixed text. */
type IsOpenPattern<T extends string> = T extends unknown
  ? Record<never, never> extends Record<T, unknown>
    ? true
    : false
  : never;

/**
 * A message the code chose: a string literal (or a union of literals). A `string` built at
 * run time, or a template with interpolation, does not type-check.
 */
export type FixedMessage<M extends string> = true extends IsOpenPattern<M> ? never : M;

export interface Logger {
  log<M extends string>(severity: Severity, message: FixedMessage<M>, fields?: LogFields): void;
  debug<M extends string>(message: FixedMessage<M>, fields?: LogFields): void;
  info<M extends string>(message: FixedMessage<M>, fields?: LogFields): void;
  notice<M extends string>(message: FixedMessage<M>, fields?: LogFields): void;
  warning<M extends string>(message: FixedMessage<M>, fields?: LogFields): void;
  error<M extends string>(message: FixedMessage<M>, fields?: LogFields): void;
  critical<M extends string>(message: FixedMessage<M>, fields?: LogFields): void;
  /** A logger that adds `fields` to every entry (an entry's own fields win). */
  child(fields: LogFields): Logger;
}
