// Cross-origin use of the API (docs/PROTOCOL.md §4.3): a patient's app in a browser or a web view
// (a PWA, Capacitor's capacitor://localhost) calls the functions from an origin of its own, and
// without these headers the browser hides every answer from it. Any origin may call: every
// endpoint is authorised by a signature over the request that only a key holder can make, never
// by a cookie or other credential a browser adds by itself, so a page on another origin can do
// nothing that the same request from curl could not (threat model C7). Credentials are
// therefore never allowed (no access-control-allow-credentials).
import { SIGNATURE_HEADERS } from '../core/protocol/request-signing.ts';

/** What a request may carry besides the browser's own: the signature, a body type, a resume. */
const ALLOWED_HEADERS = [
  ...Object.values(SIGNATURE_HEADERS),
  'content-type',
  'range',
  'x-cloud-trace-context',
  'traceparent',
];

/** What a script may read besides the CORS-safelisted headers: the trace id and a resumed range. */
const EXPOSED_HEADERS = ['x-trace-id', 'content-range'];

/** How long a browser may keep a preflight's answer (seconds). */
const PREFLIGHT_MAX_AGE = 600;

/** Headers for every answer. */
export const CORS_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'access-control-allow-origin': '*',
  'access-control-expose-headers': EXPOSED_HEADERS.join(', '),
});

/** What a preflight's answer adds to CORS_HEADERS, for the methods the path has. */
export function preflightHeaders(methods: readonly string[]): Record<string, string> {
  return {
    'access-control-allow-methods': methods.join(', '),
    'access-control-allow-headers': ALLOWED_HEADERS.join(', '),
    'access-control-max-age': String(PREFLIGHT_MAX_AGE),
  };
}
