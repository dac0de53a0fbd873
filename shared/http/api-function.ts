// The one wrapper every HTTP function goes through: match a route, hand the handler a
// parsed request, and turn whatever it throws into a well-formed JSON response with a
// stable code and the request's trace id. Expected failures (ProtocolError) answer with
// their own status; anything else is a 500 that says nothing about its cause to the
// caller and logs only a code, so no input or PHI can leak through an error path.
import './body-guard.ts';
import type { HttpFunction, Request, Response } from '@google-cloud/functions-framework';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../ports/logger.ts';
import { ERROR_CODES, ProtocolError, type ErrorCode } from '../core/protocol/error-codes.ts';
import { bodyFailure } from './body-guard.ts';
import { CORS_HEADERS, preflightHeaders } from './cors.ts';
import { errorCode, traceFromHeaders } from './diagnostics.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface ApiRequest {
  readonly method: HttpMethod;
  /** Path below the function, e.g. /v1/records/abc. */
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string>>;
  /** The query exactly as sent, without the '?' ('' if none): request signatures cover it. */
  readonly rawQuery: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The exact bytes received (request signatures cover these). */
  readonly rawBody: Uint8Array;
  readonly traceId: string;
  readonly logger: Logger;
}

export type ApiResult =
  | { readonly status: number; readonly body?: unknown; readonly headers?: Readonly<Record<string, string>> }
  | {
      readonly status: number;
      readonly stream: AsyncIterable<Uint8Array>;
      readonly headers?: Readonly<Record<string, string>>;
    };

export interface ApiRoute {
  readonly method: HttpMethod;
  /** Segments; `:name` captures one segment into params. */
  readonly path: string;
  handle(request: ApiRequest): Promise<ApiResult>;
}

interface CompiledRoute extends ApiRoute {
  readonly segments: readonly string[];
}

function compile(route: ApiRoute): CompiledRoute {
  return { ...route, segments: route.path.split('/').filter(Boolean) };
}

function match(route: CompiledRoute, segments: readonly string[]): Record<string, string> | undefined {
  if (route.segments.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, pattern] of route.segments.entries()) {
    const actual = segments[i]!;
    if (pattern.startsWith(':')) params[pattern.slice(1)] = actual;
    else if (pattern !== actual) return undefined;
  }
  return params;
}

function decodeSegments(path: string): string[] | undefined {
  try {
    return path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return undefined;
  }
}

function singleValuedQuery(query: unknown): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    if (typeof value !== 'string') return undefined; // repeated or nested parameters are not part of the API
    out[name] = value;
  }
  return out;
}

function rawQueryOf(url: string): string {
  const at = url.indexOf('?');
  return at === -1 ? '' : url.slice(at + 1);
}

const BODY_FAILURE_CODES: Record<NonNullable<ReturnType<typeof bodyFailure>>, ErrorCode> = {
  TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  MALFORMED: 'INVALID_REQUEST',
  UNSUPPORTED_ENCODING: 'UNSUPPORTED_MEDIA_TYPE',
};

export function createApiFunction(options: { logger: Logger; routes: readonly ApiRoute[] }): HttpFunction {
  const routes = options.routes.map(compile);

  return async (req: Request, res: Response) => {
    const trace = traceFromHeaders(req.headers) ?? { traceId: randomBytes(16).toString('hex') };
    const logger = options.logger.child({ traceId: trace.traceId });
    const started = performance.now();
    res.setHeader('x-trace-id', trace.traceId);
    res.setHeader('cache-control', 'no-store');
    for (const [name, value] of Object.entries(CORS_HEADERS)) res.setHeader(name, value);

    const sendError = (code: ErrorCode, field?: string) => {
      const info = ERROR_CODES[code];
      res.status(info.status).json({
        error: { code, message: info.message, ...(field ? { field } : {}), traceId: trace.traceId },
      });
    };

    try {
      const failure = bodyFailure(req);
      if (failure) throw new ProtocolError(BODY_FAILURE_CODES[failure]);
      const segments = decodeSegments(req.path);
      const query = singleValuedQuery(req.query);
      if (!segments || !query) throw new ProtocolError('INVALID_REQUEST');
      const candidates = routes.map((route) => [route, match(route, segments)] as const).filter(([, p]) => p);
      if (candidates.length === 0) throw new ProtocolError('NOT_FOUND');
      const methods = [...new Set(candidates.map(([route]) => route.method))];
      if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
        for (const [name, value] of Object.entries(preflightHeaders(methods))) res.setHeader(name, value);
        res.status(204).end();
        logger.info('preflight answered', { status: 204 });
        return;
      }
      const found = candidates.find(([route]) => route.method === req.method);
      if (!found) {
        res.setHeader('allow', methods.join(', '));
        throw new ProtocolError('METHOD_NOT_ALLOWED');
      }
      const [route, params] = found;
      const rawBody: Uint8Array = (req as { rawBody?: Buffer }).rawBody ?? new Uint8Array(0);
      const result = await route.handle({
        method: route.method,
        path: req.path,
        params: params!,
        query,
        rawQuery: rawQueryOf(req.originalUrl ?? req.url),
        headers: req.headers,
        rawBody,
        traceId: trace.traceId,
        logger,
      });
      for (const [name, value] of Object.entries(result.headers ?? {})) res.setHeader(name, value);
      if ('stream' in result) {
        res.status(result.status);
        for await (const chunk of result.stream) {
          if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
        }
        res.end();
      } else if (result.body === undefined) {
        res.status(result.status).end();
      } else {
        res.status(result.status).json(result.body);
      }
      logger.info('request handled', {
        status: result.status,
        durationMs: Math.round(performance.now() - started),
      });
    } catch (error) {
      if (res.headersSent) {
        // A stream failed part-way: the status is gone, so cut the connection rather than
        // let a truncated body look complete.
        logger.error('response stream failed', { code: errorCode(error) });
        res.destroy();
        return;
      }
      if (error instanceof ProtocolError) {
        logger.notice('request refused', { code: error.code, status: error.httpStatus });
        sendError(error.code, error.details.field);
      } else {
        logger.error('request failed', { code: errorCode(error) });
        sendError('INTERNAL_ERROR');
      }
    }
  };
}
