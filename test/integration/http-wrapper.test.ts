// The shared HTTP wrapper, served by the Functions Framework exactly as in production:
// every kind of bad input gets a JSON error with a stable code, never Express's HTML page,
// a crash or a leak of what the caller or a dependency said.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFunctionsHost, type FunctionsHost } from '../../emulator/functions/host.ts';
import { MAX_BODY_BYTES } from '../../shared/http/body-guard.ts';
import { errorBodySchema } from '../../shared/core/protocol/api.ts';
import { loadCatalog } from '../../shared/runtime/catalog.ts';
import { CANARY, logLines } from '../fixtures/functions/api/function.ts';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));

describe('HTTP wrapper (createApiFunction)', () => {
  let host: FunctionsHost;
  let base = '';
  beforeAll(async () => {
    host = await startFunctionsHost({
      projectId: 'wrapper-test',
      catalog: loadCatalog(join(fixtures, 'catalog.json')),
      functionsDir: join(fixtures, 'functions'),
      env: {},
    });
    base = `${host.url}/api`;
  });
  afterAll(() => host?.close());

  async function errorOf(response: Response) {
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = errorBodySchema.parse(await response.json());
    expect(body.error.traceId).toBe(response.headers.get('x-trace-id'));
    return { status: response.status, code: body.error.code, message: body.error.message };
  }

  it('routes with path parameters and a trace id', async () => {
    const response = await fetch(`${base}/v1/items/abc?x=1`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ id: 'abc', query: { x: '1' } });
    expect(response.headers.get('x-trace-id')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('keeps the caller’s Cloud Trace id', async () => {
    const traceId = '0123456789abcdef0123456789abcdef';
    const response = await fetch(`${base}/v1/items/abc`, {
      headers: { 'x-cloud-trace-context': `${traceId}/1;o=1` },
    });
    expect(response.headers.get('x-trace-id')).toBe(traceId);
  });

  it('answers malformed JSON with INVALID_REQUEST in JSON, not an HTML page', async () => {
    const response = await fetch(`${base}/v1/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"name": "${CANARY}`,
    });
    const error = await errorOf(response);
    expect(error).toMatchObject({ status: 400, code: 'INVALID_REQUEST' });
    expect(JSON.stringify(error)).not.toContain(CANARY);
  });

  it('answers a body failing its schema with INVALID_REQUEST naming the field only', async () => {
    const response = await fetch(`${base}/v1/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: CANARY.repeat(3) }),
    });
    const body = (await response.json()) as { error: { code: string; field?: string } };
    expect(response.status).toBe(400);
    expect(body.error).toMatchObject({ code: 'INVALID_REQUEST', field: 'name' });
    expect(JSON.stringify(body)).not.toContain(CANARY);
  });

  it('refuses an oversized body with PAYLOAD_TOO_LARGE before buffering it', async () => {
    const response = await fetch(`${base}/v1/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x'.repeat(MAX_BODY_BYTES + 1) }),
    });
    expect(await errorOf(response)).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
  });

  it('answers unknown routes with NOT_FOUND and wrong methods with METHOD_NOT_ALLOWED', async () => {
    expect(await errorOf(await fetch(`${base}/v2/nothing`))).toMatchObject({
      status: 404,
      code: 'NOT_FOUND',
    });
    const wrong = await fetch(`${base}/v1/items/abc`, { method: 'DELETE' });
    expect(wrong.headers.get('allow')).toBe('GET');
    expect(await errorOf(wrong)).toMatchObject({ status: 405, code: 'METHOD_NOT_ALLOWED' });
  });

  it('answers a repeated query parameter with INVALID_REQUEST', async () => {
    expect(await errorOf(await fetch(`${base}/v1/items/a?x=1&x=2`))).toMatchObject({
      status: 400,
      code: 'INVALID_REQUEST',
    });
  });

  it('still refuses (as 4xx) a path Express cannot decode', async () => {
    // Express answers this one itself, in HTML, before any middleware: a known gap.
    expect((await fetch(`${base}/v1/items/%E0%A4%A`)).status).toBe(400);
  });

  it('maps a ProtocolError to its own status and code', async () => {
    expect(await errorOf(await fetch(`${base}/v1/gone`))).toMatchObject({
      status: 410,
      code: 'INVITATION_EXPIRED',
    });
  });

  it('turns an unexpected error into a 500 that leaks nothing, in the response or the log', async () => {
    const error = await errorOf(await fetch(`${base}/v1/boom`));
    expect(error).toMatchObject({ status: 500, code: 'INTERNAL_ERROR' });
    expect(JSON.stringify(error)).not.toContain(CANARY);
    expect(logLines.join('\n')).not.toContain(CANARY);
    const entry = JSON.parse(logLines.find((line) => line.includes('request failed'))!) as Record<
      string,
      unknown
    >;
    expect(entry.severity).toBe('ERROR');
  });

  it('streams a response body', async () => {
    const response = await fetch(`${base}/v1/stream`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    expect(bytes.length).toBe(3 * 1024);
    expect(bytes[2048]).toBe(2);
  });

  it('C7 lets a page on any origin call, never with credentials, and answers its preflight per path', async () => {
    const origin = 'https://patient-app.example';
    const answer = await fetch(`${base}/v1/items/abc`, { headers: { origin } });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    expect(answer.headers.get('access-control-allow-credentials')).toBeNull();
    expect(answer.headers.get('access-control-expose-headers')).toBe('x-trace-id, content-range');
    // Errors too: a script must be able to read the code and the trace id.
    const refused = await fetch(`${base}/v1/nothing/here`, { headers: { origin } });
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
    expect((await errorOf(refused)).code).toBe('NOT_FOUND');

    const preflight = await fetch(`${base}/v1/items`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'cb-key-id, cb-signature, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-methods')).toBe('POST');
    expect(preflight.headers.get('access-control-allow-headers')?.split(', ')).toEqual(
      expect.arrayContaining([
        'cb-key-id',
        'cb-timestamp',
        'cb-nonce',
        'cb-signature',
        'content-type',
        'range',
        'x-cloud-trace-context',
        'traceparent',
      ]),
    );
    expect(preflight.headers.get('access-control-max-age')).toBe('600');
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
    expect(await preflight.text()).toBe('');
    // A preflight for a path the function does not have is refused like the request would be;
    // an OPTIONS that is not a preflight is a method the API does not have.
    const nowhere = await fetch(`${base}/v2/nothing`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'GET' },
    });
    expect((await errorOf(nowhere)).status).toBe(404);
    const plain = await fetch(`${base}/v1/items/abc`, { method: 'OPTIONS' });
    expect(await errorOf(plain)).toMatchObject({ status: 405, code: 'METHOD_NOT_ALLOWED' });
  });
});
