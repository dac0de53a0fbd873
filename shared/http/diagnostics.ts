// What a request's log lines may say about it, for the HTTP wrapper: the trace id the platform
// sent (so Cloud Logging groups a request's lines) and a safe code for whatever was thrown.
// Pure functions of the request and the error; the Cloud Logging adapter formats the lines.

/**
 * The trace id from an incoming request's X-Cloud-Trace-Context ("TRACE_ID/SPAN_ID;o=1"),
 * or from a W3C traceparent; undefined if neither is well-formed.
 */
export function traceFromHeaders(headers: {
  readonly [name: string]: string | readonly string[] | undefined;
}): { traceId: string; spanId?: string } | undefined {
  const first = (value: string | readonly string[] | undefined) =>
    (Array.isArray(value) ? value[0] : value) as string | undefined;
  const cloud = first(headers['x-cloud-trace-context']);
  const match = cloud ? /^([0-9a-fA-F]{32})(?:\/(\d{1,20}))?/.exec(cloud) : null;
  if (match) {
    // That header's span id is decimal; Cloud Logging wants 16 hex digits.
    const span = match[2] ? BigInt(match[2]) : 0n;
    const spanId = span > 0n && span < 2n ** 64n ? span.toString(16).padStart(16, '0') : undefined;
    return { traceId: match[1]!.toLowerCase(), ...(spanId ? { spanId } : {}) };
  }
  const parent = first(headers['traceparent']);
  const w3c = parent ? /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/.exec(parent) : null;
  if (w3c && !/^0+$/.test(w3c[1]!)) return { traceId: w3c[1]!, spanId: w3c[2]! };
  return undefined;
}

/** A stable code for an error, for the `code` field: its own code if it has a sane one. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Za-z][A-Za-z0-9_/.-]{0,63}$/.test(code)) return code;
  if (typeof code === 'number' && Number.isSafeInteger(code)) return String(code);
  return 'INTERNAL';
}
