// The Cloud Storage JSON API's resumable upload protocol, spoken by the connector itself so that
// an upload survives a dropped connection, a 5xx and a restart of the connector: the session
// URI (started elsewhere, create-only) is persisted by the caller, bytes go up in chunks that are
// streamed from disk (memory stays at a few socket buffers), and after any transient failure the
// session is asked how much it committed (PUT `Content-Range: bytes */TOTAL` → 308 + Range) and
// the upload continues from there, after a capped, fully jittered exponential backoff. Cloud
// Storage finalizes the object only on the request that completes it, so however often a chunk is
// re-sent, the object is created once. Locally the same requests go to the storage emulator.
import { once } from 'node:events';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** Non-final chunks must be multiples of this (Cloud Storage's rule). */
export const UPLOAD_GRANULE = 256 * 1024;
/** Bytes per PUT: streamed, so this bounds only what a failure costs to re-send. */
export const DEFAULT_UPLOAD_CHUNK_BYTES = 32 * UPLOAD_GRANULE;
const MAX_ANSWER_BYTES = 1024 * 1024;

export interface RetryPolicy {
  /** The first backoff's ceiling. */
  readonly baseMs: number;
  /** No backoff is longer than this. */
  readonly capMs: number;
  /** Give up after this many failures in a row with no byte committed in between. */
  readonly maxAttempts: number;
  /** Uniform in [0, 1); injected so tests can seed it. */
  readonly random: () => number;
  /** A request that sends or receives nothing for this long counts as failed. */
  readonly idleTimeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  baseMs: 500,
  capMs: 32_000,
  maxAttempts: 8,
  random: Math.random,
  idleTimeoutMs: 60_000,
};

/**
 * Full jitter (uniform between zero and the capped exponential), so connectors that lost the
 * same network at once do not come back in step. `failure` counts from 1.
 */
export function backoffMs(failure: number, policy: Pick<RetryPolicy, 'baseMs' | 'capMs' | 'random'>): number {
  if (!Number.isInteger(failure) || failure < 1) throw new RangeError('failure counts from 1');
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(failure - 1, 52));
  return Math.floor(policy.random() * ceiling);
}

export type ResumableUploadErrorCode =
  /** Transient failures went on for the whole retry budget. */
  | 'UPLOAD_RETRIES_EXHAUSTED'
  /** The session is gone (expired after a week, cancelled, or failed on the server). */
  | 'UPLOAD_SESSION_GONE'
  /** The object exists already: this create-only upload was not the one that made it. */
  | 'UPLOAD_ALREADY_EXISTS'
  /** Cloud Storage refused the request (a 4xx that retrying cannot fix). */
  | 'UPLOAD_REFUSED'
  /** The session's answer contradicts the protocol (an offset past the end, say). */
  | 'UPLOAD_PROTOCOL';

/**
 * A failed upload, with a stable code and the upload URL it was sending to. The session id is
 * left out of the URL: whoever holds it can write to the session.
 */
export class ResumableUploadError extends Error {
  readonly code: ResumableUploadErrorCode;
  readonly url: string;
  readonly status: number | undefined;

  constructor(
    code: ResumableUploadErrorCode,
    sessionUri: string,
    detail: string,
    options: { status?: number; cause?: unknown } = {},
  ) {
    const url = redactSession(sessionUri);
    super(`${detail} (${url})`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ResumableUploadError';
    this.code = code;
    this.url = url;
    this.status = options.status;
  }
}

export function isResumableUploadError(error: unknown): error is ResumableUploadError {
  return error instanceof ResumableUploadError;
}

/** The session URI without its credential (upload_id), for messages and logs. */
export function redactSession(uri: string): string {
  try {
    const url = new URL(uri);
    for (const key of ['upload_id', 'upload_protocol']) url.searchParams.delete(key);
    return url.toString();
  } catch {
    return '(unparsable session URI)';
  }
}

/**
 * The bytes being uploaded: `range(start, end)` yields exactly bytes [start, end). A yielded
 * piece may be overwritten once the next one is asked for: the uploader has sent it by then.
 */
export interface UploadSource {
  readonly size: number;
  /**
   * The base64 MD5 of all the bytes, sent with the request that completes the object: Cloud
   * Storage then refuses to create an object whose bytes (however many resumes they took to
   * assemble) differ from the ones the connector sealed.
   */
  readonly md5?: string;
  range(start: number, end: number): AsyncIterable<Uint8Array>;
}

export interface UploadToSessionOptions {
  readonly sessionUri: string;
  readonly source: UploadSource;
  /** A positive multiple of 256 KiB. */
  readonly chunkBytes?: number;
  readonly retry?: Partial<RetryPolicy>;
  /** Bytes the session has committed, after each answer. */
  readonly onCommitted?: (offset: number, total: number) => void;
  /** A failure that will be retried after `delayMs`. */
  readonly onRetry?: (failure: number, delayMs: number, reason: string) => void;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** What the session answered once the object exists (the JSON API object resource, in part). */
export interface UploadedObject {
  readonly bucket: string;
  readonly name: string;
  readonly generation: string;
  readonly size: number;
}

type Answer =
  | { readonly kind: 'done'; readonly object: UploadedObject }
  | { readonly kind: 'partial'; readonly offset: number };

/** A failure worth retrying: the network, a timeout, 408, 429, 5xx. */
class TransientFailure extends Error {
  readonly reason: string;

  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }
}

/** The source could not be read: the caller's problem, never retried as a network one. */
class SourceFailure extends Error {}

/**
 * Uploads `source` to the resumable session from whatever the session has already committed,
 * and returns the object the session created. A session that was already complete (a restart
 * after the last answer was lost) returns its object without sending anything.
 */
export async function uploadToSession(options: UploadToSessionOptions): Promise<UploadedObject> {
  const { sessionUri, source } = options;
  const chunkBytes = options.chunkBytes ?? DEFAULT_UPLOAD_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0 || chunkBytes % UPLOAD_GRANULE !== 0) {
    throw new RangeError('chunkBytes must be a positive multiple of 256 KiB');
  }
  if (!Number.isSafeInteger(source.size) || source.size <= 0) {
    throw new RangeError('a resumable upload needs at least one byte');
  }
  const policy: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const url = new URL(sessionUri);
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') throw new RangeError('the session URI must be http(s)');
  // Own sockets: a reset one is never reused, and none outlive the upload.
  const agent = secure ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  const total = source.size;

  const exchange = async (range: string, start: number, end: number): Promise<Answer> => {
    const body = end > start ? source.range(start, end) : undefined;
    // Only the request that can complete the object carries the digest; a status query may too.
    const hash =
      source.md5 !== undefined && (end === total || end === start) ? `md5=${source.md5}` : undefined;
    const answer = await send(url, agent, range, end - start, body, hash, policy.idleTimeoutMs);
    return interpret(answer, sessionUri, total);
  };

  let failures = 0;
  let committed: number | undefined; // unknown until the session says
  try {
    for (;;) {
      let answer: Answer;
      try {
        if (committed === undefined) {
          answer = await exchange(`bytes */${total}`, 0, 0);
        } else if (committed === total) {
          // Every byte is there but the object is not: the empty final request completes it.
          answer = await exchange(`bytes */${total}`, total, total);
          if (answer.kind === 'partial') throw new TransientFailure('all bytes committed, no object yet');
        } else {
          const end = Math.min(committed + chunkBytes, total);
          answer = await exchange(`bytes ${committed}-${end - 1}/${total}`, committed, end);
          // Bytes sent but none committed is a failure too, or a stuck session loops for ever.
          if (answer.kind === 'partial' && answer.offset <= committed) {
            throw new TransientFailure(`no progress past byte ${answer.offset}`);
          }
        }
      } catch (error) {
        if (!(error instanceof TransientFailure)) throw error;
        failures++;
        if (failures >= policy.maxAttempts) {
          throw new ResumableUploadError(
            'UPLOAD_RETRIES_EXHAUSTED',
            sessionUri,
            `the upload failed ${failures} times in a row without progress, last: ${error.reason}`,
            { cause: error },
          );
        }
        const delay = backoffMs(failures, policy);
        options.onRetry?.(failures, delay, error.reason);
        await sleep(delay);
        committed = undefined; // ask the session, never assume
        continue;
      }
      if (answer.kind === 'done') {
        if (answer.object.size !== total) {
          throw new ResumableUploadError(
            'UPLOAD_PROTOCOL',
            sessionUri,
            `the session made an object of ${answer.object.size} bytes, not ${total}`,
          );
        }
        options.onCommitted?.(total, total);
        return answer.object;
      }
      if (committed !== undefined) failures = 0; // a chunk was committed (checked above)
      committed = answer.offset;
      options.onCommitted?.(committed, total);
    }
  } finally {
    agent.destroy();
  }
}

interface RawAnswer {
  readonly status: number;
  readonly range: string | undefined;
  readonly body: string;
}

/** One PUT to the session: `length` bytes from `body` (none for a status query). */
async function send(
  url: URL,
  agent: HttpAgent,
  contentRange: string,
  length: number,
  body: AsyncIterable<Uint8Array> | undefined,
  googHash: string | undefined,
  idleTimeoutMs: number,
): Promise<RawAnswer> {
  const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
    method: 'PUT',
    agent,
    timeout: idleTimeoutMs,
    headers: {
      'content-range': contentRange,
      'content-length': String(length),
      ...(length > 0 ? { 'content-type': 'application/octet-stream' } : {}),
      ...(googHash !== undefined ? { 'x-goog-hash': googHash } : {}),
    },
  });
  request.once('timeout', () =>
    request.destroy(Object.assign(new Error('idle timeout'), { code: 'ETIMEDOUT' })),
  );
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', reject);
  });
  response.catch(() => {}); // observed below; never an unhandled rejection
  // Rejects when the request fails while the body is being written.
  const broken = new Promise<never>((_, reject) => {
    request.once('error', reject);
    request.once('close', () => reject(Object.assign(new Error('closed early'), { code: 'ECONNRESET' })));
  });
  broken.catch(() => {});
  try {
    if (body) {
      let pieces;
      try {
        pieces = body[Symbol.asyncIterator]();
      } catch (error) {
        throw new SourceFailure('the upload source failed', { cause: error });
      }
      for (;;) {
        let next: IteratorResult<Uint8Array>;
        try {
          next = await pieces.next();
        } catch (error) {
          throw new SourceFailure('the upload source failed', { cause: error });
        }
        if (next.done) break;
        // Wait until the socket has taken the piece: the source reuses its buffer.
        const written = new Promise<void>((resolve, reject) =>
          request.write(next.value, (error) => (error ? reject(error) : resolve())),
        );
        await Promise.race([written, broken]);
      }
    }
    request.end();
    const res = await response;
    const text = await readAnswer(res, idleTimeoutMs);
    const range = res.headers.range;
    return { status: res.statusCode ?? 0, range: typeof range === 'string' ? range : undefined, body: text };
  } catch (error) {
    request.destroy();
    if (error instanceof SourceFailure) throw error.cause;
    throw new TransientFailure(networkReason(error));
  }
}

async function readAnswer(res: IncomingMessage, idleTimeoutMs: number): Promise<string> {
  res.setTimeout(idleTimeoutMs, () =>
    res.destroy(Object.assign(new Error('idle timeout'), { code: 'ETIMEDOUT' })),
  );
  const pieces: Buffer[] = [];
  let size = 0;
  res.on('data', (piece: Buffer) => {
    size += piece.length;
    if (size <= MAX_ANSWER_BYTES) pieces.push(piece);
  });
  await once(res, 'end');
  return Buffer.concat(pieces).toString('utf8');
}

function networkReason(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'network error';
}

function interpret(answer: RawAnswer, sessionUri: string, total: number): Answer {
  const { status } = answer;
  if (status === 200 || status === 201) return { kind: 'done', object: objectFrom(answer.body, sessionUri) };
  if (status === 308) {
    // No Range: nothing committed yet. Otherwise "bytes=0-N": N + 1 committed.
    if (answer.range === undefined) return { kind: 'partial', offset: 0 };
    const match = /^bytes=0-(\d{1,16})$/.exec(answer.range.trim());
    const offset = match ? Number(match[1]) + 1 : NaN;
    if (!Number.isSafeInteger(offset) || offset > total) {
      throw new ResumableUploadError(
        'UPLOAD_PROTOCOL',
        sessionUri,
        `the session answered Range ${answer.range}`,
      );
    }
    // All bytes but no object: the next (empty) request finalizes.
    return { kind: 'partial', offset };
  }
  if (status === 408 || status === 429 || status >= 500) throw new TransientFailure(`HTTP ${status}`);
  if (status === 404 || status === 410 || status === 499) {
    throw new ResumableUploadError(
      'UPLOAD_SESSION_GONE',
      sessionUri,
      `the upload session is gone (HTTP ${status})`,
      {
        status,
      },
    );
  }
  if (status === 412) {
    throw new ResumableUploadError(
      'UPLOAD_ALREADY_EXISTS',
      sessionUri,
      'the object already exists (HTTP 412)',
      {
        status,
      },
    );
  }
  throw new ResumableUploadError(
    'UPLOAD_REFUSED',
    sessionUri,
    `Cloud Storage refused the upload (HTTP ${status})`,
    {
      status,
    },
  );
}

function objectFrom(text: string, sessionUri: string): UploadedObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const o = parsed as { bucket?: unknown; name?: unknown; generation?: unknown; size?: unknown } | undefined;
  if (!o || typeof o.bucket !== 'string' || typeof o.name !== 'string' || o.generation === undefined) {
    throw new ResumableUploadError(
      'UPLOAD_PROTOCOL',
      sessionUri,
      'the finished session did not name its object',
    );
  }
  return { bucket: o.bucket, name: o.name, generation: String(o.generation), size: Number(o.size ?? NaN) };
}
