// The Cloud Logging adapter (shared/adapters/cloud-logger.ts): Cloud Logging's structured
// JSON format, and invariant 9's allow-list of typed fields.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../shared/adapters/clock.ts';
import { cloudLogger, MAX_LOG_MESSAGE, MAX_LOG_STRING } from '../../shared/adapters/cloud-logger.ts';
import { errorCode, traceFromHeaders } from '../../shared/http/diagnostics.ts';
import { LOG_FIELD_TYPES, type LogFields, type Logger } from '../../shared/ports/logger.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

function capture(options: { projectId?: string; minSeverity?: 'DEBUG' | 'INFO' | 'WARNING' } = {}) {
  const lines: string[] = [];
  const logger = cloudLogger({
    functionName: 'ingest',
    projectId: 'projectId' in options ? options.projectId : 'clinic-bridge-test',
    clock: new ManualClock('2030-05-06T07:08:09.010Z'),
    sink: (line) => lines.push(line),
    ...(options.minSeverity ? { minSeverity: options.minSeverity } : {}),
  });
  const entries = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, lines, entries };
}

describe('cloudLogger: format', () => {
  it('writes one JSON line per entry in Cloud Logging structured form', () => {
    const { logger, lines, entries } = capture();
    logger.info('upload accepted', { uploadId: 'u-123', bytes: 2048, durationMs: 12.5, traceId: TRACE });
    logger.error('upload rejected', { code: 'DIGEST_MISMATCH', status: 400 });
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).not.toContain('\n');
    expect(entries()).toEqual([
      {
        severity: 'INFO',
        message: 'upload accepted',
        time: '2030-05-06T07:08:09.010Z',
        'logging.googleapis.com/trace': `projects/clinic-bridge-test/traces/${TRACE}`,
        'logging.googleapis.com/labels': { function: 'ingest' },
        uploadId: 'u-123',
        bytes: 2048,
        durationMs: 12.5,
      },
      {
        severity: 'ERROR',
        message: 'upload rejected',
        time: '2030-05-06T07:08:09.010Z',
        'logging.googleapis.com/labels': { function: 'ingest' },
        code: 'DIGEST_MISMATCH',
        status: 400,
      },
    ]);
  });

  it('has a method per severity and honours minSeverity', () => {
    const all = capture();
    all.logger.debug('d');
    all.logger.info('i');
    all.logger.notice('n');
    all.logger.warning('w');
    all.logger.error('e');
    all.logger.critical('c');
    all.logger.log('ALERT', 'a');
    expect(all.entries().map((e) => e['severity'])).toEqual([
      'DEBUG',
      'INFO',
      'NOTICE',
      'WARNING',
      'ERROR',
      'CRITICAL',
      'ALERT',
    ]);
    const some = capture({ minSeverity: 'WARNING' });
    some.logger.info('i');
    some.logger.warning('w');
    expect(some.entries().map((e) => e['severity'])).toEqual(['WARNING']);
  });

  it('writes the trace only for a well-formed id and a known project, and a hex span id', () => {
    const { logger, entries } = capture();
    logger.info('a', { traceId: 'not-a-trace' });
    logger.info('b', { traceId: TRACE.toUpperCase(), spanId: '00f067aa0ba902b7' });
    logger.info('c', { traceId: TRACE, spanId: '12345' });
    const [a, b, c] = entries();
    expect(a).not.toHaveProperty(['logging.googleapis.com/trace']);
    expect(a).not.toHaveProperty('traceId');
    expect(b).toMatchObject({
      'logging.googleapis.com/trace': `projects/clinic-bridge-test/traces/${TRACE}`,
      'logging.googleapis.com/spanId': '00f067aa0ba902b7',
    });
    expect(c).not.toHaveProperty(['logging.googleapis.com/spanId']);
    const noProject = capture({ projectId: undefined });
    noProject.logger.info('d', { traceId: TRACE });
    expect(noProject.entries()[0]).not.toHaveProperty(['logging.googleapis.com/trace']);
  });

  it('child loggers bind fields; an entry’s own fields win', () => {
    const { logger, entries } = capture();
    const request = logger.child({ traceId: TRACE, hospitalId: 'h-1', attempt: 1 });
    request.warning('retrying', { attempt: 2 });
    expect(entries()[0]).toMatchObject({
      'logging.googleapis.com/trace': `projects/clinic-bridge-test/traces/${TRACE}`,
      hospitalId: 'h-1',
      attempt: 2,
    });
  });

  it('never throws, even when the sink does', () => {
    const logger = cloudLogger({
      functionName: 'ingest',
      sink: () => {
        throw new Error('EPIPE');
      },
    });
    expect(() => logger.info('still fine')).not.toThrow();
  });
});

describe('cloudLogger: invariant 9 allow-list', () => {
  it('drops every field that is not allow-listed', () => {
    const { logger, entries } = capture();
    const smuggled = {
      recordId: 'r-1',
      patientName: 'Jan Jansen',
      bsn: '123456782',
      token: 'fcm-token',
      error: new Error('secret detail'),
      body: { anything: true },
      severity: 'EMERGENCY',
      message: 'overridden',
      'logging.googleapis.com/labels': { function: 'spoofed' },
    } as unknown as LogFields;
    logger.info('record stored', smuggled);
    const [entry] = entries();
    expect(entry).toEqual({
      severity: 'INFO',
      message: 'record stored',
      time: '2030-05-06T07:08:09.010Z',
      'logging.googleapis.com/labels': { function: 'ingest' },
      recordId: 'r-1',
    });
    expect(JSON.stringify(entry)).not.toMatch(/Jansen|123456782|fcm-token|secret/);
  });

  it('drops values of the wrong type and non-finite numbers', () => {
    const { logger, entries } = capture();
    logger.info('typed', {
      count: '3',
      bytes: Number.NaN,
      durationMs: Number.POSITIVE_INFINITY,
      deviceId: 42,
      hospitalId: { id: 'h' },
      status: 'ok',
    } as unknown as LogFields);
    expect(entries()[0]).toEqual({
      severity: 'INFO',
      message: 'typed',
      time: '2030-05-06T07:08:09.010Z',
      'logging.googleapis.com/labels': { function: 'ingest' },
      status: 'ok',
    });
  });

  it('scrubs control and formatting characters and caps strings', () => {
    const { logger, entries } = capture();
    logger.info('scrub', {
      uploadId: 'u-1\nsevere: fake entry\r\u0000\u001b[31m',
      recordId: 'r\u202Eevil\u200B\u2028x',
      deviceId: 'a'.repeat(1000),
      code: '\u0007\u0008',
    });
    const [entry] = entries();
    expect(entry?.['uploadId']).toBe('u-1severe: fake entry[31m');
    expect(entry?.['recordId']).toBe('revilx');
    expect(entry?.['deviceId']).toBe('a'.repeat(MAX_LOG_STRING));
    expect(entry).not.toHaveProperty('code'); // nothing left after scrubbing
  });

  it('scrubs and caps the message too, for untyped callers', () => {
    const { logger, entries } = capture();
    (logger as unknown as { info(message: string): void }).info(`line1\nline2${'x'.repeat(500)}`);
    const message = entries()[0]?.['message'] as string;
    expect(message.startsWith('line1line2')).toBe(true);
    expect(message.length).toBe(MAX_LOG_MESSAGE);
  });

  it('the message must be a literal chosen by the code (type level)', () => {
    const { logger } = capture();
    const userInput: string = 'Jan Jansen';
    const port: Logger = logger;
    // @ts-expect-error a runtime string is not a fixed message
    port.info(userInput);
    // @ts-expect-error nor is a template with interpolation
    port.error(`failed for ${userInput}`);
    // @ts-expect-error unknown field names do not type-check
    port.info('x', { patientName: userInput });
    // @ts-expect-error a number field takes numbers only
    port.info('x', { count: '3' });
    // @ts-expect-error nor a union that holds one
    port.warning(Math.random() > 2 ? 'fixed' : `failed for ${userInput}`);
    port.notice(Math.random() > 2 ? 'one fixed text' : 'another fixed text');
    const fixed = 'a constant';
    port.debug(fixed);
  });

  it('the allow-list is exactly the documented set', () => {
    expect(Object.keys(LOG_FIELD_TYPES).sort()).toEqual(
      [
        'attempt',
        'bytes',
        'code',
        'count',
        'deviceId',
        'durationMs',
        'function',
        'hospitalId',
        'invitationId',
        'operation',
        'recordId',
        'spanId',
        'status',
        'traceId',
        'uploadId',
      ].sort(),
    );
  });
});

describe('cloud-logger helpers', () => {
  it('reads the trace from X-Cloud-Trace-Context or traceparent', () => {
    expect(traceFromHeaders({ 'x-cloud-trace-context': `${TRACE.toUpperCase()}/1;o=1` })).toEqual({
      traceId: TRACE,
      spanId: '0000000000000001',
    });
    expect(traceFromHeaders({ 'x-cloud-trace-context': TRACE })).toEqual({ traceId: TRACE });
    expect(traceFromHeaders({ traceparent: `00-${TRACE}-00f067aa0ba902b7-01` })).toEqual({
      traceId: TRACE,
      spanId: '00f067aa0ba902b7',
    });
    expect(traceFromHeaders({ traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` })).toBeUndefined();
    expect(traceFromHeaders({ 'x-cloud-trace-context': 'garbage' })).toBeUndefined();
    expect(traceFromHeaders({})).toBeUndefined();
  });

  it('errorCode keeps sane codes only', () => {
    expect(errorCode({ code: 'DIGEST_MISMATCH' })).toBe('DIGEST_MISMATCH');
    expect(errorCode({ code: 'messaging/internal-error' })).toBe('messaging/internal-error');
    expect(errorCode({ code: 7 })).toBe('7');
    expect(errorCode({ code: 'patient Jan Jansen not found' })).toBe('INTERNAL');
    expect(errorCode(new Error('x'))).toBe('INTERNAL');
    expect(errorCode(undefined)).toBe('INTERNAL');
  });
});
