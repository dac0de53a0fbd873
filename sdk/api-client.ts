// The clients' side of docs/PROTOCOL.md §8–§9: JSON calls to the functions, signed with the
// caller's key (device or hospital) when the endpoint wants it, with every error answer turned
// into an ApiError carrying the stable code, the status and the trace id. A service that cannot
// be reached, or does not answer, is a NetworkError naming the URL and a stable code, in seconds.
import type { z } from 'zod';
import type { PrivateKey, Signer } from '../shared/core/crypto/index.ts';
import { errorBodySchema, signRequest } from '../shared/core/protocol/index.ts';
import { ApiError, displayUrl, NetworkError } from './errors.ts';

export { ApiError, NetworkError } from './errors.ts';

export interface RequestSigner {
  /** `device:<deviceId>` or `hospital:<hospitalId>:<fingerprint>` (shared/core/protocol keyIds). */
  readonly keyId: string;
  /** A device's private key, or the hospital's Signer (its key custody). */
  readonly privateKey: PrivateKey | Signer;
}

export interface ApiClientOptions {
  /** The canonical apiBase (from the QR code, or FUNCTIONS_BASE_URL locally). */
  readonly apiBase: string;
  /** Signs every request; leave out for the unsigned pair call. */
  readonly signer?: RequestSigner;
  /** Defaults to the system clock; tests may skew it. */
  readonly now?: () => Date;
  /**
   * Resolves once the service accepts connections, else rejects with a NetworkError; awaited once
   * per client before its first call. On Node the clients pass a TCP connect with a short
   * deadline (fetch would wait for the system's connect timeout on a silent host); a browser
   * has no sockets and leaves it out.
   */
  readonly checkReachable?: (apiBase: string) => Promise<void>;
  /** The fetch to use (default: the global one). */
  readonly fetch?: typeof fetch;
  /**
   * How long it may take to start answering a call (default 30 s: a recall or an erasure
   * deletes before it answers). The body of an answer that has started is not limited.
   */
  readonly answerTimeoutMs?: number;
}

export interface ApiCall {
  readonly method: 'GET' | 'POST' | 'PUT';
  /** From the versioned prefix on, query included: /records/v1/records?pageSize=10 */
  readonly target: string;
  /** Sent as JSON; omit for no body. */
  readonly json?: unknown;
  /** Extra headers outside the signature (a Range to resume a download). */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ApiClient {
  /** A JSON call whose answer is checked against `schema`. */
  call<S extends z.ZodType>(request: ApiCall, schema: S): Promise<z.output<S>>;
  /** A call whose answer body is not JSON (record content); errors still become ApiError. */
  raw(request: ApiCall): Promise<Response>;
}

const encoder = new TextEncoder();

async function errorFrom(response: Response): Promise<ApiError> {
  const traceId = response.headers.get('x-trace-id') ?? undefined;
  const text = await response.text().catch(() => '');
  try {
    const parsed = errorBodySchema.safeParse(JSON.parse(text));
    if (parsed.success) {
      const { code, message } = parsed.data.error;
      return new ApiError(response.status, code, message, parsed.data.error.traceId ?? traceId);
    }
  } catch {
    // not JSON: fall through
  }
  return new ApiError(
    response.status,
    `HTTP_${response.status}`,
    'unexpected answer from the service',
    traceId,
  );
}

export function createApiClient(options: ApiClientOptions): ApiClient {
  const now = options.now ?? (() => new Date());
  const answerTimeoutMs = options.answerTimeoutMs ?? 30_000;
  const fetchFn = options.fetch ?? ((input: string, init?: RequestInit) => fetch(input, init));
  let reachable: Promise<void> | undefined;

  async function send(url: string, init: RequestInit): Promise<Response> {
    reachable ??= options.checkReachable?.(options.apiBase) ?? Promise.resolve();
    try {
      await reachable;
    } catch (error) {
      reachable = undefined; // the next call tries again
      throw error;
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), answerTimeoutMs);
    try {
      return await fetchFn(url, { ...init, signal: controller.signal });
    } catch (error) {
      if (controller.signal.aborted) {
        throw new NetworkError(
          'SERVICE_TIMEOUT',
          displayUrl(url),
          `no answer within ${answerTimeoutMs / 1000} s`,
        );
      }
      const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
      const detail =
        typeof cause?.code === 'string' ? cause.code : String(cause?.message ?? (error as Error).message);
      throw new NetworkError('SERVICE_UNREACHABLE', displayUrl(url), detail);
    } finally {
      // Only the wait for the answer's start is bounded: a long download keeps streaming.
      clearTimeout(timer);
    }
  }

  async function raw(request: ApiCall): Promise<Response> {
    const body =
      request.json === undefined ? new Uint8Array(0) : encoder.encode(JSON.stringify(request.json));
    const headers: Record<string, string> =
      request.json === undefined ? {} : { 'content-type': 'application/json' };
    if (options.signer) {
      Object.assign(
        headers,
        signRequest({
          // The apiBase is the deployment the signature is for (the audience line).
          audience: options.apiBase,
          method: request.method,
          target: request.target,
          body,
          keyId: options.signer.keyId,
          privateKey: options.signer.privateKey,
          now: now(),
        }),
      );
    }
    Object.assign(headers, request.headers);
    const response = await send(`${options.apiBase}${request.target}`, {
      method: request.method,
      headers,
      ...(request.json === undefined ? {} : { body }),
      redirect: 'manual',
    });
    if (response.status >= 400) throw await errorFrom(response);
    return response;
  }

  return Object.freeze({
    raw,
    async call<S extends z.ZodType>(request: ApiCall, schema: S): Promise<z.output<S>> {
      const response = await raw(request);
      const text = await response.text();
      const parsed = schema.safeParse(text === '' ? {} : JSON.parse(text));
      if (!parsed.success) {
        throw new ApiError(
          response.status,
          'UNEXPECTED_RESPONSE',
          'the service answered in an unexpected shape',
        );
      }
      return parsed.data;
    },
  });
}

/**
 * Tries an idempotent call again when it failed for a reason that may pass (a 5xx, a network
 * error), as long as the service guarantees that the retry lands where a first success would:
 * invitations and pairing (PROTOCOL §9.1) and erasure (§9.2) do. A 4xx is the answer and is
 * never retried.
 */
export async function withTransientRetries<T>(
  attempt: () => Promise<T>,
  options: { readonly tries?: number; readonly delayMs?: number } = {},
): Promise<T> {
  const tries = options.tries ?? 3;
  for (let done = 1; ; done++) {
    try {
      return await attempt();
    } catch (error) {
      const final = error instanceof ApiError && error.status < 500;
      if (final || done >= tries) throw error;
      await new Promise((resolve) => setTimeout(resolve, (options.delayMs ?? 500) * done));
    }
  }
}

/** A response body as the async byte source shared/core/protocol readers take, without buffering it. */
export async function* responseBytes(response: Response): AsyncGenerator<Uint8Array, void, undefined> {
  if (!response.body) return;
  const reader = response.body.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      yield value;
    }
  } finally {
    // A consumer that stops early (a failed check) must not leave the connection streaming.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
