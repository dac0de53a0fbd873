// A local stand-in for FCM: it accepts the FCM HTTP v1 `messages:send` call, checks it as
// FCM would (plus Clinic Bridge's own rule that pushes are data-only and go to device
// tokens), and records what it accepted instead of delivering it. A local device client
// then collects its pushes from the control API under /_recorder/, by long-poll or by
// server-sent events. Google ships no FCM emulator (docs/DEPENDENCIES.md).
//
// FCM API                       POST /v1/projects/{project}/messages:send
// Control API (local only, no auth; bind to loopback, or with `advertise` to the local network,
// where callers from other machines get only a token's own long-poll and event stream):
//   POST /_recorder/tokens/{token}:unregister          mark a token dead (FCM then says UNREGISTERED)
//   GET  /_recorder/messages?token=&after=&limit=        what was recorded
//   GET  /_recorder/tokens/{token}/messages?after=&waitMs=&limit=
//                                                       long-poll: answers as soon as a message with
//                                                       seq > after exists, or empty after waitMs
//   GET  /_recorder/tokens/{token}/events?after=        server-sent events (also Last-Event-ID)
//   GET  /_recorder/status                              counts, for readiness checks
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { isLocalCaller } from '../local-caller.ts';
import { openStore, type RecordedMessage, type Store } from './store.ts';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  MAX_REQUEST_BYTES,
  TOKEN_PATTERN,
  googleError,
  invalidArgument,
  parseJson,
  sendRequestSchema,
  summarise,
  unauthenticated,
  unregistered,
  violationsOf,
  type GoogleErrorBody,
} from './wire.ts';

export type { RecordedMessage } from './store.ts';

export interface FcmRecorderOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /**
   * The address in `url` when `host` is a wildcard (0.0.0.0): the one phones on the local
   * network reach. Default: `host`.
   */
  advertise?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Recorded messages and dead tokens are kept here, so a restart keeps them. */
  dataDir: string;
  /** Default 4096, FCM's limit on a message's data payload. */
  maxMessageBytes?: number;
  log?: (entry: Record<string, unknown>) => void;
}

export interface FcmRecorder {
  /** Base URL, e.g. http://127.0.0.1:8085 (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** From now on, sends to this token fail with UNREGISTERED, as for an uninstalled app. */
  markUnregistered(token: string): Promise<void>;
  /** Recorded messages in seq order, all or for one token. */
  messages(token?: string): Promise<RecordedMessage[]>;
  /** Answers pending long-polls, ends event streams, frees the port and closes the files. */
  close(): Promise<void>;
}

/** Long-polls wait at most this long. */
export const MAX_WAIT_MS = 60_000;
const HEARTBEAT_MS = 15_000;
/** After close(), connections still busy this long are cut. */
const CLOSE_GRACE_MS = 1_000;
/** An oversized body is refused at once, then read and discarded up to this size before the socket is cut. */
const DISCARD_LIMIT_BYTES = 64 * 1024 * 1024;

const SEND_PATH = /^\/v1\/projects\/([^/]+)\/messages:send$/;
const PROJECT_PATTERN = /^[A-Za-z0-9._:-]{1,100}$/;
const UNREGISTER_PATH = /^\/_recorder\/tokens\/([^/]+):unregister$/;
const TOKEN_MESSAGES_PATH = /^\/_recorder\/tokens\/([^/]+)\/messages$/;
const TOKEN_EVENTS_PATH = /^\/_recorder\/tokens\/([^/]+)\/events$/;

const intParam = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,15}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
const seqParam = intParam(0, Number.MAX_SAFE_INTEGER);

const listQuery = z.strictObject({
  token: z.string().regex(TOKEN_PATTERN, 'not a valid registration token').optional(),
  after: seqParam.optional(),
  limit: intParam(1, 100_000).optional(),
});
const pollQuery = z.strictObject({
  after: seqParam.default(0),
  waitMs: intParam(0, MAX_WAIT_MS).default(0),
  limit: intParam(1, 1000).default(100),
});
const eventsQuery = z.strictObject({ after: seqParam.optional() });

/** A stable, non-reversible reference to a token for logs: logs never hold tokens (invariant 9). */
function tokenRef(token: string): string {
  return `sha256:${createHash('sha256').update(token).digest('hex').slice(0, 12)}`;
}

class HttpError extends Error {
  status: number;
  body: GoogleErrorBody;
  headers: Record<string, string>;
  constructor(status: number, body: GoogleErrorBody, headers: Record<string, string> = {}) {
    super(body.error.message);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

const notFound = (what: string) => new HttpError(404, googleError(404, 'NOT_FOUND', what));
const methodNotAllowed = (allow: string, method: string | undefined) =>
  new HttpError(
    405,
    googleError(405, 'METHOD_NOT_ALLOWED', `Method ${method ?? '?'} is not allowed here; use ${allow}.`),
    { allow },
  );
const badRequest = (message: string, field?: string) =>
  new HttpError(
    400,
    googleError(
      400,
      'INVALID_ARGUMENT',
      message,
      field ? { violations: [{ field, description: message }] } : {},
    ),
  );

function parseQuery<T>(schema: z.ZodType<T>, params: URLSearchParams): T {
  const parsed = schema.safeParse(Object.fromEntries(params));
  if (!parsed.success) {
    const violations = violationsOf(parsed.error, 'query');
    throw new HttpError(400, googleError(400, 'INVALID_ARGUMENT', summarise(violations), { violations }));
  }
  return parsed.data;
}

function pathToken(encoded: string): string {
  let token: string;
  try {
    token = decodeURIComponent(encoded);
  } catch {
    throw badRequest('The token in the path is not valid percent-encoding.', 'token');
  }
  if (!TOKEN_PATTERN.test(token))
    throw badRequest('The registration token is not a valid FCM registration token.', 'token');
  return token;
}

function readBody(
  req: IncomingMessage,
  limit: number,
): Promise<{ kind: 'ok'; text: string } | { kind: 'too-big' }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (done) {
        // Answered already; the rest is discarded so the client can finish sending (cutting the
        // connection mid-upload makes it see a reset instead of the answer), up to a point.
        if (size > DISCARD_LIMIT_BYTES) req.socket.destroy();
        return;
      }
      if (size > limit) {
        done = true;
        chunks.length = 0;
        resolve({ kind: 'too-big' });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      try {
        resolve({
          kind: 'ok',
          text: new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)),
        });
      } catch {
        reject(
          new HttpError(400, invalidArgument('Invalid JSON payload received. The body is not valid UTF-8.')),
        );
      }
    });
    req.on('error', (error) => {
      if (done) return;
      done = true;
      reject(error);
    });
  });
}

export async function startFcmRecorder(options: FcmRecorderOptions): Promise<FcmRecorder> {
  const host = options.host ?? '127.0.0.1';
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const log = options.log ?? (() => {});
  const schema = sendRequestSchema(maxMessageBytes);

  await mkdir(options.dataDir, { recursive: true });
  const store: Store = await openStore(options.dataDir, log);

  let closing = false;
  /** Each pending long-poll or open event stream, keyed to the function that ends it now. */
  const pending = new Set<() => void>();

  const sendJson = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': String(Buffer.byteLength(text)),
      'cache-control': 'no-store',
      ...(closing ? { connection: 'close' } : {}),
      ...headers,
    });
    res.end(text);
  };

  // ---- FCM v1 -------------------------------------------------------------------------

  const handleSend = async (req: IncomingMessage, res: ServerResponse, project: string) => {
    if (req.method !== 'POST') throw methodNotAllowed('POST', req.method);
    if (!PROJECT_PATTERN.test(project)) throw notFound('Requested entity was not found.');
    // FCM wants an OAuth 2 access token; any bearer value will do here.
    if (!/^Bearer\s+\S+/i.test(req.headers.authorization ?? '')) {
      throw new HttpError(401, unauthenticated(), {
        'www-authenticate': 'Bearer realm="https://accounts.google.com/"',
      });
    }
    const body = await readBody(req, MAX_REQUEST_BYTES);
    if (body.kind === 'too-big') {
      throw new HttpError(
        400,
        invalidArgument(`Request payload size exceeds the limit: ${MAX_REQUEST_BYTES} bytes.`),
      );
    }
    const json = parseJson(body.text);
    if (!json.ok) throw new HttpError(400, invalidArgument(json.error));
    const parsed = schema.safeParse(json.value);
    if (!parsed.success) {
      const violations = violationsOf(parsed.error);
      log({
        severity: 'WARNING',
        message: 'fcm send refused',
        errorCode: 'INVALID_ARGUMENT',
        fields: violations.map((v) => v.field),
      });
      throw new HttpError(400, invalidArgument(summarise(violations), violations));
    }
    const { message, validateOnly } = parsed.data;
    // The policy check guarantees a token target.
    const token = message.token ?? '';
    if (store.isUnregistered(token)) {
      log({
        severity: 'INFO',
        message: 'fcm send to an unregistered token',
        token: tokenRef(token),
        project,
      });
      throw new HttpError(404, unregistered());
    }
    if (validateOnly) {
      // FCM answers a dry run with this fixed id and delivers nothing.
      sendJson(res, 200, { name: `projects/${project}/messages/fake_message_id` });
      return;
    }
    const recorded = await store.append({ project, token, message: message as Record<string, unknown> });
    log({
      severity: 'INFO',
      message: 'fcm message recorded',
      project,
      seq: recorded.seq,
      token: tokenRef(token),
      dataKeys: Object.keys(recorded.data),
    });
    sendJson(res, 200, { name: recorded.name });
  };

  // ---- control API --------------------------------------------------------------------

  const pollResult = (token: string, after: number, limit: number) => {
    const messages = store.list({ token, after, limit });
    return { messages, lastSeq: messages.at(-1)?.seq ?? after, unregistered: store.isUnregistered(token) };
  };

  const handlePoll = (req: IncomingMessage, res: ServerResponse, token: string, params: URLSearchParams) => {
    const { after, waitMs, limit } = parseQuery(pollQuery, params);
    const now = pollResult(token, after, limit);
    if (now.messages.length > 0 || waitMs === 0 || closing) {
      sendJson(res, 200, now);
      return;
    }
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      unsubscribe();
      pending.delete(finish);
      sendJson(res, 200, pollResult(token, after, limit));
    };
    // Wakes on a new message for this token, or when the token is marked dead.
    const unsubscribe = store.subscribe(token, finish);
    const timer = setTimeout(finish, waitMs);
    pending.add(finish);
    res.on('close', () => {
      // The client gave up: drop the waiter without answering.
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      unsubscribe();
      pending.delete(finish);
    });
  };

  const handleEvents = (
    req: IncomingMessage,
    res: ServerResponse,
    token: string,
    params: URLSearchParams,
  ) => {
    const query = parseQuery(eventsQuery, params);
    const lastEventId = req.headers['last-event-id'];
    let after = query.after ?? 0;
    if (query.after === undefined && typeof lastEventId === 'string' && lastEventId !== '') {
      after = parseQuery(eventsQuery, new URLSearchParams({ after: lastEventId })).after ?? 0;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    const writeMessage = (m: RecordedMessage) =>
      res.write(`id: ${m.seq}\nevent: message\ndata: ${JSON.stringify(m)}\n\n`);
    const writeDead = () => res.write(`event: unregistered\ndata: ${JSON.stringify({ token })}\n\n`);
    res.write('retry: 1000\n\n');
    for (const m of store.list({ token, after })) writeMessage(m);
    if (store.isUnregistered(token)) writeDead();

    let ended = false;
    const cleanup = () => {
      if (ended) return false;
      ended = true;
      clearInterval(heartbeat);
      unsubscribe();
      pending.delete(end);
      return true;
    };
    const end = () => {
      if (cleanup()) res.end();
    };
    const unsubscribe = store.subscribe(token, (event) => {
      if (event.type === 'message') writeMessage(event.message);
      else writeDead();
    });
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    pending.add(end);
    res.on('close', cleanup);
    if (closing) end();
  };

  const handleRecorder = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const path = url.pathname;
    let match: RegExpExecArray | null;
    if ((match = UNREGISTER_PATH.exec(path))) {
      if (req.method !== 'POST') throw methodNotAllowed('POST', req.method);
      const token = pathToken(match[1] ?? '');
      await store.markUnregistered(token);
      log({ severity: 'INFO', message: 'fcm token marked unregistered', token: tokenRef(token) });
      sendJson(res, 200, { token, unregistered: true });
      return;
    }
    if ((match = TOKEN_MESSAGES_PATH.exec(path))) {
      if (req.method !== 'GET') throw methodNotAllowed('GET', req.method);
      handlePoll(req, res, pathToken(match[1] ?? ''), url.searchParams);
      return;
    }
    if ((match = TOKEN_EVENTS_PATH.exec(path))) {
      if (req.method !== 'GET') throw methodNotAllowed('GET', req.method);
      handleEvents(req, res, pathToken(match[1] ?? ''), url.searchParams);
      return;
    }
    if (path === '/_recorder/messages') {
      if (req.method !== 'GET') throw methodNotAllowed('GET', req.method);
      const query = parseQuery(listQuery, url.searchParams);
      sendJson(res, 200, { messages: store.list(query) });
      return;
    }
    if (path === '/_recorder/status') {
      if (req.method !== 'GET') throw methodNotAllowed('GET', req.method);
      sendJson(res, 200, {
        messages: store.count(),
        lastSeq: store.lastSeq,
        unregisteredTokens: store.unregisteredCount(),
      });
      return;
    }
    throw notFound(`No recorder endpoint at ${path}.`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://recorder.invalid');
    } catch {
      throw badRequest('The request target is not a valid URL.');
    }
    // A phone on the network needs only its own token's pushes (the token is its secret).
    const ownPushes = TOKEN_MESSAGES_PATH.test(url.pathname) || TOKEN_EVENTS_PATH.test(url.pathname);
    if (!ownPushes && !isLocalCaller(req.socket)) {
      throw new HttpError(
        403,
        googleError(403, 'PERMISSION_DENIED', 'Only this machine may use this endpoint.'),
      );
    }
    const send = SEND_PATH.exec(url.pathname);
    if (send) return handleSend(req, res, send[1] ?? '');
    if (url.pathname.startsWith('/_recorder/')) return handleRecorder(req, res, url);
    throw notFound(`The requested URL ${url.pathname} was not found on this server.`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof HttpError) {
        sendJson(res, error.status, error.body, error.headers);
        return;
      }
      if (res.destroyed) return; // the client went away mid-request
      log({ severity: 'ERROR', message: 'fcm recorder: request failed', error: String(error) });
      sendJson(res, 500, googleError(500, 'INTERNAL', 'Internal error encountered.'));
    });
  });
  // Unparseable HTTP: answer with Google-shaped JSON rather than a bare 400.
  server.on('clientError', (_error, socket) => {
    if (!socket.writable) return socket.destroy();
    const text = JSON.stringify(googleError(400, 'INVALID_ARGUMENT', 'Malformed HTTP request.'));
    socket.end(
      `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json; charset=UTF-8\r\n` +
        `content-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
    );
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await store.close();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  const shown = options.advertise ?? host;
  const url = `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
  log({ severity: 'INFO', message: 'fcm recorder ready', url, messages: store.count() });

  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    async markUnregistered(token) {
      if (!TOKEN_PATTERN.test(token)) throw new TypeError('not a valid FCM registration token');
      await store.markUnregistered(token);
    },
    async messages(token) {
      return store.list(token === undefined ? {} : { token });
    },
    close() {
      closed ??= (async () => {
        closing = true;
        for (const end of [...pending]) end();
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
          server.close(() => {
            clearTimeout(force);
            resolve();
          });
          server.closeIdleConnections();
        });
        await store.close();
        log({ severity: 'INFO', message: 'fcm recorder stopped' });
      })();
      return closed;
    },
  };
}
