// The signed call a service verifies (docs/PROTOCOL.md §8), built from what the HTTP wrapper
// received. The signature covers the target from the versioned prefix on (/records/v1/…),
// query included, so an endpoint that takes no query refuses one outright: a query it would
// ignore could still ride along under a valid signature.
import { ProtocolError } from '../core/protocol/error-codes.ts';
import { signingTarget, type SignedCall } from '../services/signed-call.ts';
import type { ApiRequest } from './api-function.ts';

export interface SignedCalls {
  /** For endpoints that read query parameters (listings); the signature covers them. */
  withQuery(request: ApiRequest): SignedCall;
  /** For every other endpoint. */
  withoutQuery(request: ApiRequest): SignedCall;
}

/** Refuses a request that carries a query string. */
export function refuseQuery(request: Pick<ApiRequest, 'rawQuery'>): void {
  if (request.rawQuery !== '') throw new ProtocolError('INVALID_REQUEST');
}

/**
 * The signed calls of a function whose signatures cover `prefix` (e.g. '/records') and name
 * `audience`, this deployment's apiBase.
 */
export function signedCalls(prefix: string, audience: string): SignedCalls {
  const withQuery = (request: ApiRequest): SignedCall => ({
    audience,
    method: request.method,
    target: signingTarget(prefix, request.path, request.rawQuery),
    headers: request.headers,
    body: request.rawBody,
    logger: request.logger,
  });
  return {
    withQuery,
    withoutQuery(request) {
      refuseQuery(request);
      return withQuery(request);
    },
  };
}
