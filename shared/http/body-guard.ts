// The Functions Framework parses every request body before our code runs, with a 1 GiB
// limit, and answers malformed JSON with Express's HTML error page, which echoes part of
// the input. That would break two promises: bad input gets a JSON error with a stable code,
// and no request can make a function buffer a gigabyte. So, before the framework builds its
// server, we wrap the body-parser factories it uses: bodies are capped at MAX_BODY_BYTES,
// a parse failure is recorded on the request and handed to our handler instead of
// Express. The framework is otherwise unchanged; this runs the same locally and deployed.
// Known gap: a path with an undecodable percent-escape is refused by Express's router (400,
// HTML) before any middleware runs, so it cannot be answered in JSON from here.
import { createRequire } from 'node:module';

/** No Clinic Bridge endpoint takes more; uploads go to Cloud Storage, not through functions. */
export const MAX_BODY_BYTES = 256 * 1024;

export type BodyFailure = 'TOO_LARGE' | 'MALFORMED' | 'UNSUPPORTED_ENCODING';

const FAILURE = Symbol.for('clinic-bridge.body-failure');
const GUARDED = Symbol.for('clinic-bridge.body-guarded');

type Next = (error?: unknown) => void;
type Middleware = (req: object, res: object, next: Next) => void;
type ParserFactory = ((options?: Record<string, unknown>) => Middleware) & { [GUARDED]?: true };

function classify(error: unknown): BodyFailure {
  const type = (error as { type?: unknown } | null)?.type;
  if (type === 'entity.too.large') return 'TOO_LARGE';
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return 'UNSUPPORTED_ENCODING';
  return 'MALFORMED';
}

/** What went wrong reading this request's body, if anything. */
export function bodyFailure(req: object): BodyFailure | undefined {
  return (req as { [FAILURE]?: BodyFailure })[FAILURE];
}

export function installBodyGuard(): void {
  const fromFramework = createRequire(
    createRequire(import.meta.url).resolve('@google-cloud/functions-framework'),
  );
  const bodyParser = fromFramework('body-parser') as Record<string, ParserFactory>;
  for (const name of ['json', 'text', 'urlencoded', 'raw']) {
    const original = bodyParser[name];
    if (!original || original[GUARDED]) continue;
    const guarded: ParserFactory = (options = {}) => {
      const inner = original({ ...options, limit: MAX_BODY_BYTES });
      return (req, res, next) => {
        inner(req, res, (error?: unknown) => {
          if (error !== undefined && error !== null)
            (req as { [FAILURE]?: BodyFailure })[FAILURE] = classify(error);
          next();
        });
      };
    };
    guarded[GUARDED] = true;
    bodyParser[name] = guarded;
  }
}

installBodyGuard();
