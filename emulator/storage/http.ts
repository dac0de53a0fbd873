// HTTP plumbing shared by the routes: JSON bodies in and out, error answers that leave the
// connection usable, request bodies as chunk iterables, and byte-range parsing.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, backendError, invalid, parseError, rangeNotSatisfiable } from './errors.ts';

/** Request bodies bigger than this are refused for JSON calls. */
export const MAX_JSON_BYTES = 2 * 1024 * 1024;
/** After an early error answer, at most this much of the unread body is read and dropped. */
const DISCARD_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * The request body as chunks. Leaving the loop early does not destroy the request (which
 * would cut the socket before the error answer is sent); `sendError` drains the rest.
 */
export function bodyOf(req: IncomingMessage): AsyncIterable<Buffer> {
  return req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>;
}

export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw invalid(`The request body is larger than ${limit} bytes.`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of bodyOf(req)) {
    size += chunk.byteLength;
    if (size > limit) throw invalid(`The request body is larger than ${limit} bytes.`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Parses a JSON body; an empty body is undefined, a non-object or bad JSON is a 400. */
export function parseJson(raw: Buffer): unknown {
  if (raw.length === 0 || raw.toString('utf8').trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw parseError();
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw parseError();
  return value;
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  return parseJson(await readBody(req, MAX_JSON_BYTES));
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=UTF-8',
    'Content-Length': String(payload.length),
    'Cache-Control': 'no-cache, no-store, max-age=0, must-revalidate',
    ...headers,
  });
  res.end(payload);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Length': '0', ...headers });
  res.end();
}

/** Answers with the API's error JSON (or an empty 304) and keeps the connection sane. */
export function sendError(
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
  log: (entry: Record<string, unknown>) => void,
): void {
  const apiError = error instanceof ApiError ? error : backendError();
  if (!(error instanceof ApiError)) {
    log({
      severity: 'ERROR',
      message: 'storage emulator request failed',
      method: req.method,
      error: String(error),
    });
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (!req.complete) discardRest(req);
  if (apiError.status === 304) sendEmpty(res, 304, apiError.headers);
  else sendJson(res, apiError.status, apiError.body(), apiError.headers);
}

/** Reads and drops the rest of a body we answered early, up to a limit, then cuts the socket. */
function discardRest(req: IncomingMessage): void {
  // A 'readable' listener (left by an abandoned iterator) would keep the stream paused.
  req.removeAllListeners('readable');
  let dropped = 0;
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.byteLength;
    if (dropped > DISCARD_LIMIT_BYTES) req.socket.destroy();
  });
  req.on('error', () => {});
  req.resume();
}

export interface ByteRange {
  start: number;
  end: number;
}

/**
 * A single `bytes=` range against an object of `size` bytes. Syntax Cloud Storage does not
 * understand (or several ranges) is ignored, so the whole object is served; a range that
 * starts past the end is 416.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) throw rangeNotSatisfiable(size);
    if (size === 0) return undefined;
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return undefined;
  if (start >= size) {
    if (size === 0) return undefined;
    throw rangeNotSatisfiable(size);
  }
  return { start, end };
}
