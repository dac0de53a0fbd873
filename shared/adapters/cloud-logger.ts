// Logger in Cloud Logging's structured format: one JSON object per line on stdout, which
// Cloud Run functions forward to Cloud Logging as a structured entry
// (https://cloud.google.com/logging/docs/structured-logging).
//
// Invariant 9: only the allow-listed fields of the Logger port are written, each checked
// against its type; anything else is dropped. Strings lose control and formatting characters
// and are capped. The message is a literal chosen by the code (the port's type enforces it);
// it is scrubbed and capped too, in case an untyped caller slips something through.
import { LOG_FIELD_TYPES, SEVERITIES, type LogFields, type Logger, type Severity } from '../ports/logger.ts';
import type { Clock } from '../ports/clock.ts';
import { systemClock } from './clock.ts';

export const MAX_LOG_STRING = 128;
export const MAX_LOG_MESSAGE = 200;

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
// C0/C1 controls, format characters (bidi overrides, zero-width), line/paragraph separators,
// lone surrogates.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

export type LogSink = (line: string) => void;

export interface CloudLoggerOptions {
  /** Goes into logging.googleapis.com/labels as `function`. */
  readonly functionName: string;
  /** Needed to turn a trace id into logging.googleapis.com/trace; without it no trace is written. */
  readonly projectId?: string;
  /** Default: process.stdout, one line per entry. */
  readonly sink?: LogSink;
  readonly clock?: Clock;
  /** Entries below this severity are skipped. Default DEBUG (everything). */
  readonly minSeverity?: Severity;
}

const stdoutSink: LogSink = (line) => {
  process.stdout.write(`${line}\n`);
};

export function cloudLogger(options: CloudLoggerOptions): Logger {
  const settings: Settings = {
    functionName: scrub(options.functionName, MAX_LOG_STRING),
    projectId: options.projectId,
    sink: options.sink ?? stdoutSink,
    clock: options.clock ?? systemClock,
    minRank: SEVERITIES.indexOf(options.minSeverity ?? 'DEBUG'),
  };
  return new CloudLogger(settings, {});
}

interface Settings {
  readonly functionName: string;
  readonly projectId: string | undefined;
  readonly sink: LogSink;
  readonly clock: Clock;
  readonly minRank: number;
}

class CloudLogger implements Logger {
  readonly #settings: Settings;
  readonly #bound: Readonly<Record<string, string | number>>;

  constructor(settings: Settings, bound: Readonly<Record<string, string | number>>) {
    this.#settings = settings;
    this.#bound = bound;
  }

  log(severity: Severity, message: string, fields?: LogFields): void {
    const rank = SEVERITIES.indexOf(severity);
    if (rank < 0 || rank < this.#settings.minRank) return;
    try {
      this.#settings.sink(this.#format(severity, message, fields));
    } catch {
      // Logging must never take the function down (a closed stdout, a failing sink).
    }
  }

  debug(message: string, fields?: LogFields): void {
    this.log('DEBUG', message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.log('INFO', message, fields);
  }
  notice(message: string, fields?: LogFields): void {
    this.log('NOTICE', message, fields);
  }
  warning(message: string, fields?: LogFields): void {
    this.log('WARNING', message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.log('ERROR', message, fields);
  }
  critical(message: string, fields?: LogFields): void {
    this.log('CRITICAL', message, fields);
  }

  child(fields: LogFields): Logger {
    return new CloudLogger(this.#settings, { ...this.#bound, ...allowedFields(fields) });
  }

  #format(severity: Severity, message: string, fields: LogFields | undefined): string {
    const { traceId, spanId, ...rest } = { ...this.#bound, ...allowedFields(fields) };
    const entry: Record<string, unknown> = {
      severity,
      message: typeof message === 'string' ? scrub(message, MAX_LOG_MESSAGE) : '',
      time: this.#settings.clock.now().toISOString(),
    };
    const trace = typeof traceId === 'string' ? traceId.toLowerCase() : undefined;
    if (trace && TRACE_ID.test(trace) && this.#settings.projectId) {
      entry['logging.googleapis.com/trace'] = `projects/${this.#settings.projectId}/traces/${trace}`;
      if (typeof spanId === 'string' && SPAN_ID.test(spanId)) entry['logging.googleapis.com/spanId'] = spanId;
    }
    entry['logging.googleapis.com/labels'] = { function: this.#settings.functionName };
    Object.assign(entry, rest);
    return JSON.stringify(entry);
  }
}

/** Keeps the allow-listed fields whose values have the declared type; drops the rest. */
export function allowedFields(fields: unknown): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  if (typeof fields !== 'object' || fields === null) return out;
  for (const name of Object.keys(LOG_FIELD_TYPES) as (keyof typeof LOG_FIELD_TYPES)[]) {
    if (!Object.hasOwn(fields, name)) continue;
    const value: unknown = (fields as Record<string, unknown>)[name];
    const type = LOG_FIELD_TYPES[name];
    if (typeof value === 'string' && type !== 'number') {
      const clean = scrub(value, MAX_LOG_STRING);
      if (clean !== '') out[name] = clean;
    } else if (typeof value === 'number' && type !== 'string' && Number.isFinite(value)) {
      out[name] = value;
    }
  }
  return out;
}

/** Removes control and formatting characters and caps the length (in code points). */
export function scrub(value: string, max: number): string {
  const clean = value.replace(UNSAFE, '');
  if (clean.length <= max) return clean;
  return Array.from(clean).slice(0, max).join('');
}
