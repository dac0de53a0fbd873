// Structured logs for the hospital's monitoring: one JSON object per line on stderr (or a sink
// the caller gives). They carry the request's method, route, status, duration and a request id,
// never a query string, a form body, a cookie, a patient number or a QR text: the hospital's
// audit file (audit.ts) is where who-did-what-for-whom lives, with its own access rules.
export type LogSink = (line: string) => void;

export interface ConsoleLogger {
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

export function jsonLogger(sink: LogSink = (line) => process.stderr.write(line)): ConsoleLogger {
  const emit = (level: string, message: string, fields: Readonly<Record<string, unknown>> = {}) =>
    sink(
      `${JSON.stringify({ time: new Date().toISOString(), level, component: 'console', message, ...fields })}\n`,
    );
  return {
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
  };
}
