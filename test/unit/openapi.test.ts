// The OpenAPI document (docs/openapi.json) against a real OpenAPI 3.1 validator, against what the
// contract generates today, and against the routes the functions declare, both ways. Each check
// is also shown to catch the drift it exists for: a route added, moved or dropped, a document
// that is not OpenAPI, an answer with an undocumented status, code or field.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import {
  API_CONTRACT,
  errorsOf,
  openApiPath,
  type ApiEndpoint,
} from '../../shared/core/protocol/api-contract.ts';
import { ERROR_CODES, signRequest } from '../../shared/core/protocol/index.ts';
import { generateKeyPair } from '../../shared/core/crypto/index.ts';
import { loadCatalog } from '../../shared/runtime/catalog.ts';
import { openApiDocument, type OpenApiDocument } from '../../shared/core/protocol/openapi.ts';
import {
  answerProblems,
  apiFunctionRoutes,
  NOT_CLIENT_APIS,
  OPENAPI_FILE,
  openApiText,
  REPO_ROOT,
  requestProblems,
  routeDrift,
  routesInSource,
  schemaErrors,
} from '../helpers/openapi.ts';

const document = openApiDocument();

async function validate(doc: unknown): Promise<{ valid: boolean; version: string; errors: unknown }> {
  const validator = new Validator();
  const result = await validator.validate(structuredClone(doc) as Record<string, unknown>);
  return { valid: result.valid, version: validator.version, errors: result.errors };
}

describe('OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await validate(document);
    expect(result.errors).toBeUndefined();
    expect(result).toMatchObject({ valid: true, version: '3.1' });
  });

  it('the validator is real: it refuses a document that is not OpenAPI', async () => {
    const broken = structuredClone(document) as { paths: Record<string, Record<string, unknown>> };
    (broken.paths['/records/v1/records']!.get as Record<string, unknown>).responses = 'none';
    expect((await validate(broken)).valid).toBe(false);
    expect((await validate({ ...document, openapi: '3.1.0', info: undefined })).valid).toBe(false);
  });

  it('is published as docs/openapi.json, exactly as generated (npm run openapi)', async () => {
    const published = await readFile(OPENAPI_FILE, 'utf8');
    expect(published, 'docs/openapi.json is stale: run npm run openapi').toBe(await openApiText(document));
    expect(JSON.parse(published)).toEqual(document);
  });

  it('is deterministic', async () => {
    expect(await openApiText(openApiDocument())).toBe(await openApiText(openApiDocument()));
  });

  it('describes every endpoint once, with its signer, parameters and body', () => {
    const operations = Object.values(document.paths).flatMap((item) => Object.values(item));
    expect(operations).toHaveLength(API_CONTRACT.length);
    for (const endpoint of API_CONTRACT) {
      const operation = document.paths[openApiPath(endpoint)]![endpoint.method.toLowerCase()] as {
        parameters: { name: string; in: string; $ref?: string }[];
        security: unknown[];
        requestBody?: unknown;
        'x-cb-signer': string;
      };
      expect(operation['x-cb-signer']).toBe(endpoint.signer);
      expect(operation.security).toHaveLength(endpoint.signer === 'none' ? 0 : 1);
      const refs = operation.parameters.flatMap((p) => (p.$ref ? [p.$ref] : []));
      expect(refs).toHaveLength(endpoint.signer === 'none' ? 0 : 4);
      const pathNames = operation.parameters.filter((p) => p.in === 'path').map((p) => p.name);
      expect(pathNames.sort()).toEqual(Object.keys(endpoint.params ?? {}).sort());
      expect([...openApiPath(endpoint).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()).toEqual(pathNames);
      expect(operation.requestBody !== undefined).toBe(endpoint.body !== undefined);
    }
  });

  it('lists every error code an endpoint may answer, at its catalogue status, with an example', () => {
    for (const endpoint of API_CONTRACT) {
      const responses = operationOf(document, endpoint).responses as Record<
        string,
        { content: { 'application/json': { examples: Record<string, { value: unknown }> } } }
      >;
      for (const code of errorsOf(endpoint)) {
        const status = String(ERROR_CODES[code].status);
        const example = responses[status]?.content['application/json'].examples[code];
        expect(example, `${endpoint.operationId} ${code}`).toBeDefined();
        const answer = {
          method: endpoint.method,
          path: concretePath(endpoint),
          contentType: 'application/json',
        };
        expect(answerProblems(document, { ...answer, status: Number(status), body: example!.value })).toEqual(
          [],
        );
      }
    }
  });

  it('has examples that the handlers’ own schemas accept and the document describes', () => {
    for (const endpoint of API_CONTRACT) {
      for (const body of [
        endpoint.body,
        endpoint.success.kind === 'json' ? endpoint.success.body : undefined,
      ]) {
        if (!body) continue;
        expect(
          body.schema.safeParse(body.example).error,
          `${endpoint.operationId} ${body.name}`,
        ).toBeUndefined();
        const schema = (document.components.schemas as Record<string, object>)[body.name]!;
        expect(schemaErrors(schema as never, body.example, document)).toEqual([]);
      }
    }
  });

  it('describes the signing headers a real signature carries (the §8 worked example and a fresh one)', () => {
    const parameters = document.components.parameters as Record<
      string,
      { name: string; schema: object; example: string }
    >;
    for (const parameter of Object.values(parameters)) {
      expect(schemaErrors(parameter.schema as never, parameter.example, document), parameter.name).toEqual(
        [],
      );
    }
    const device = generateKeyPair();
    const headers = signRequest({
      audience: 'https://api.clinic-bridge.example',
      method: 'GET',
      target: '/records/v1/records',
      body: new Uint8Array(0),
      keyId: `device:${device.publicKey.fingerprint}`,
      privateKey: device.privateKey,
      now: new Date(),
    });
    for (const key of ['CbKeyIdDevice', 'CbTimestamp', 'CbNonce', 'CbSignature']) {
      const parameter = parameters[key]!;
      expect(schemaErrors(parameter.schema as never, headers[parameter.name], document), key).toEqual([]);
    }
    expect(
      schemaErrors(parameters.CbKeyIdHospital!.schema as never, headers['CB-Key-Id'], document),
    ).not.toEqual([]);
  });
});

function operationOf(doc: OpenApiDocument, endpoint: ApiEndpoint): Record<string, unknown> {
  return doc.paths[openApiPath(endpoint)]![endpoint.method.toLowerCase()] as Record<string, unknown>;
}

const PATH_EXAMPLES: Record<string, string> = {
  recordId: 'gIGCg4SFhoeIiYqLjI2Ojw',
  patientRef: 'EREREREREREREREREREREQ',
  deviceId: '56rf8cVN6JNYk--Rd2mpOWxvzkAua9hALBm3HHDM37U',
};

function concretePath(endpoint: ApiEndpoint): string {
  return openApiPath(endpoint).replace(/\{(\w+)\}/g, (_, name: string) => PATH_EXAMPLES[name]!);
}

describe('the contract against the functions’ routes', () => {
  it('every route each API function serves is documented, and every documented route is served', async () => {
    const functions = await apiFunctionRoutes();
    expect([...functions.keys()].sort()).toEqual([...new Set(API_CONTRACT.map((e) => e.function))].sort());
    for (const [name, routes] of functions) {
      expect(routes.length, name).toBeGreaterThan(0);
      expect(routeDrift(name, routes), name).toEqual([]);
    }
  });

  it('catches a route added, moved or dropped in a function', async () => {
    const file = join(REPO_ROOT, 'functions', 'records', 'function.ts');
    const source = await readFile(file, 'utf8');
    const moved = source.replace(/path: '\/v1\/devices',/, "path: '/v1/my-devices',");
    expect(moved).not.toBe(source);
    expect(routeDrift('records', routesInSource(moved))).toEqual([
      'served but not documented: GET /records/v1/my-devices',
      'documented but not served: GET /records/v1/devices',
    ]);
    const methodChanged = source.replace(
      /method: 'PUT',(\s*)path: '\/v1\/devices\/self\/push-token'/,
      "method: 'POST',$1path: '/v1/devices/self/push-token'",
    );
    expect(methodChanged).not.toBe(source);
    expect(routeDrift('records', routesInSource(methodChanged))).toContain(
      'served but not documented: POST /records/v1/devices/self/push-token',
    );
    const added = source.replace(
      'routes: [',
      "routes: [\n      { method: 'DELETE', path: '/v1/records/:recordId', handle: async () => ({ status: 204 }) },",
    );
    expect(routeDrift('records', routesInSource(added))).toEqual([
      'served but not documented: DELETE /records/v1/records/:recordId',
    ]);
    const contractWithout = API_CONTRACT.filter((e) => e.operationId !== 'erasePatient');
    expect(routeDrift('records', routesInSource(source), contractWithout)).toEqual([
      'served but not documented: POST /records/v1/patient/erase',
    ]);
  });

  it('exempts only HTTP functions phones and connectors do not call, each with a reason', () => {
    const catalog = loadCatalog();
    for (const [name, reason] of Object.entries(NOT_CLIENT_APIS)) {
      expect(catalog.functions[name]?.trigger.type, name).toBe('http');
      expect(API_CONTRACT.some((endpoint) => endpoint.function === name)).toBe(false);
      expect(reason.length).toBeGreaterThan(10);
    }
  });

  it('refuses a route it cannot read rather than skipping it', () => {
    expect(() => routesInSource("createApiFunction({ routes: [{ method: M, path: '/v1/x' }] })")).toThrow(
      /not a string literal/,
    );
    expect(() => routesInSource('createApiFunction({ routes: [...more] })')).toThrow(/not an object literal/);
  });
});

describe('requests against the document', () => {
  const device = generateKeyPair();
  const signed = (method: string, target: string, body?: unknown) =>
    signRequest({
      audience: 'https://api.clinic-bridge.example',
      method,
      target,
      body: new TextEncoder().encode(body === undefined ? '' : JSON.stringify(body)),
      keyId: `device:${device.publicKey.fingerprint}`,
      privateKey: device.privateKey,
      now: new Date(),
    });

  it('describes each endpoint’s example request', () => {
    for (const endpoint of API_CONTRACT) {
      const target = concretePath(endpoint);
      const body = endpoint.body?.example;
      const headers = endpoint.signer === 'none' ? {} : signed(endpoint.method, target, body);
      if (endpoint.signer === 'hospital')
        headers['CB-Key-Id'] = `hospital:st-example-zh:${device.publicKey.fingerprint}`;
      const problems = requestProblems(document, { method: endpoint.method, target, headers, body });
      expect(problems, endpoint.operationId).toEqual([]);
    }
  });

  it('catches a request the document does not describe', () => {
    const target = '/records/v1/records/gIGCg4SFhoeIiYqLjI2Ojw/ack';
    const body = { outcome: 'stored' };
    expect(
      requestProblems(document, { method: 'POST', target, headers: signed('POST', target, body), body }),
    ).toEqual([]);
    const problems = (request: { target?: string; body?: unknown; headers?: Record<string, string> }) =>
      requestProblems(document, {
        method: 'POST',
        target: request.target ?? target,
        headers: request.headers ?? signed('POST', target, body),
        body: 'body' in request ? request.body : body,
      });
    expect(problems({ body: { outcome: 'stored', note: 'x' } })).toEqual([
      `POST ${target}: body: must match exactly one schema in oneOf`,
    ]);
    expect(problems({ body: undefined })).toEqual([`POST ${target}: the required body is missing`]);
    expect(problems({ target: `${target}?debug=1` })).toEqual([
      `POST ${target}?debug=1: query parameter debug not described`,
    ]);
    expect(problems({ target: '/records/v1/records/not-an-id/ack' })[0]).toMatch(/path\.recordId/);
    expect(problems({ headers: {} })).toHaveLength(4);
    expect(
      requestProblems(document, {
        method: 'GET',
        target: '/records/v1/records?pageSize=1000',
        headers: {},
        body: undefined,
      }),
    ).toContain(
      'GET /records/v1/records?pageSize=1000: query.pageSize: must match pattern "^[1-9][0-9]{0,2}$"',
    );
  });
});

describe('answers against the document', () => {
  const list = { method: 'GET', path: '/records/v1/records', contentType: 'application/json; charset=utf-8' };

  it('accepts a documented answer', () => {
    expect(answerProblems(document, { ...list, status: 200, body: { records: [] } })).toEqual([]);
  });

  it('catches an undocumented status, code, message, field or content type', () => {
    expect(answerProblems(document, { ...list, status: 418, body: {} })[0]).toMatch(/status not documented/);
    const error = (code: string, message: string) => ({ error: { code, message, traceId: '0'.repeat(32) } });
    // CONFLICT is a 409 no listing answers; NOT_FOUND is a 404 the listing does not answer.
    expect(
      answerProblems(document, {
        ...list,
        status: 409,
        body: error('CONFLICT', ERROR_CODES.CONFLICT.message),
      }),
    ).not.toEqual([]);
    // A code the listing may answer, at a status it does answer, but not that code.
    expect(
      answerProblems(document, {
        ...list,
        status: 403,
        body: error('HOSPITAL_SUSPENDED', ERROR_CODES.HOSPITAL_SUSPENDED.message),
      }),
    ).not.toEqual([]);
    expect(
      answerProblems(document, { ...list, status: 403, body: error('DEVICE_REVOKED', 'something else') }),
    ).not.toEqual([]);
    expect(
      answerProblems(document, { ...list, status: 200, body: { records: [], leaked: 'patient number' } }),
    ).toEqual(['GET /records/v1/records → 200: $.leaked: is not allowed']);
    expect(
      answerProblems(document, { ...list, status: 200, contentType: 'text/html', body: undefined })[0],
    ).toMatch(/content type text\/html not documented/);
    expect(answerProblems(document, { ...list, method: 'DELETE', status: 200, body: {} })[0]).toMatch(
      /no operation/,
    );
  });

  it('checks values with a real JSON Schema validator, $refs into the document included', () => {
    expect(schemaErrors({ type: 'object', properties: { a: { type: 'integer' } } }, { a: 1.5 }, {})).toEqual([
      '$.a: must be integer',
    ]);
    const errorSchema = { $ref: '#/components/schemas/Error' };
    expect(schemaErrors(errorSchema, { nothing: 'here' }, document)).not.toEqual([]);
  });
});
