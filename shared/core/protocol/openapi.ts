// The OpenAPI 3.1 document of the HTTP API, generated from the contract table (api-contract.ts)
// with zod's own JSON Schema generator (z.toJSONSchema, draft 2020-12, which OpenAPI 3.1 uses
// as is): no schema is written by hand twice. Request schemas are converted as the handlers
// read them (io 'input': a page size is the text of a number), answers as they are sent (io
// 'output'). Deterministic: the same contract always gives the same document, so the copy in
// docs/openapi.json can be compared byte for byte (test/unit/openapi.test.ts).
import { z } from 'zod';
import {
  API_CONTRACT,
  errorsOf,
  openApiPath,
  type ApiEndpoint,
  type ApiJsonBody,
  type ApiSigner,
} from './api-contract.ts';
import { errorBodySchema } from './api.ts';
import { ERROR_CODES, type ErrorCode } from './error-codes.ts';
import { REQUEST_SIGNATURE_VERSION } from './request-signing.ts';

export type JsonSchema = Record<string, unknown>;
export type OpenApiDocument = Record<string, unknown> & {
  readonly paths: Record<string, Record<string, unknown>>;
  readonly components: Record<string, Record<string, unknown>>;
};

/** Where the document says the API lives; a deployment (or the local stack) names its own. */
export const EXAMPLE_API_BASE = 'https://api.clinic-bridge.example';

/** A zod schema as a JSON Schema object (without $schema: OpenAPI names the dialect once). */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const converted = z.toJSONSchema(schema, {
    io,
    target: 'draft-2020-12',
    // A schema the document could not describe is a bug here, not a silently looser document.
    unrepresentable: 'throw',
  }) as JsonSchema;
  delete converted.$schema;
  return converted;
}

// The request-signing headers (§8), with the forms verifyRequest accepts.
const BASE64URL_43 = '[A-Za-z0-9_-]{43}';
const SIGNATURE_HEADER_PARAMETERS = {
  CbKeyIdDevice: {
    name: 'CB-Key-Id',
    description: 'The signing key: `device:<deviceId>`.',
    schema: { type: 'string', pattern: `^device:${BASE64URL_43}$` },
    example: 'device:56rf8cVN6JNYk--Rd2mpOWxvzkAua9hALBm3HHDM37U',
  },
  CbKeyIdHospital: {
    name: 'CB-Key-Id',
    description: "The signing key: `hospital:<hospitalId>:<fingerprint of the hospital's public key>`.",
    schema: { type: 'string', pattern: `^hospital:[a-z0-9][a-z0-9-]{2,39}:${BASE64URL_43}$` },
    example: 'hospital:st-example-zh:56rf8cVN6JNYk--Rd2mpOWxvzkAua9hALBm3HHDM37U',
  },
  CbTimestamp: {
    name: 'CB-Timestamp',
    description: 'Unix time in seconds, decimal, no leading zeros; within ±300 s of the server clock.',
    schema: { type: 'string', pattern: '^(0|[1-9][0-9]{0,11})$' },
    example: '1767225600',
  },
  CbNonce: {
    name: 'CB-Nonce',
    description: 'base64url of 16 fresh random bytes; a nonce seen before for this key is REQUEST_REPLAYED.',
    schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' },
    example: 'oKGio6SlpqeoqaqrrK2urw',
  },
  CbSignature: {
    name: 'CB-Signature',
    description: 'base64url of the Themis signed form (§2.5) of the string to sign, at most 1024 characters.',
    schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,1024}$' },
    example:
      'ICYEJuQAAABHAAAAQ0ItUkVRVUVTVC1WMgpodHRwczovL2FwaS5jbGluaWMtYnJpZGdlLmV4YW1wbGUKUE9TVAovcmVjb3Jkcy92MS9yZWNvcmRzL2dJR0NnNFNGaG9lSWlZcUxqSTJPancvYWNrCk5oTGtlX2h5ZGZKTGVDQno0LXR6NmtFdW4yVXdwTy1LWUlCcm1EcEhWeFEKMTc2NzIyNTYwMApvS0dpbzZTbHBxZW9xYXFycksydXJ3CmRldmljZTo1NnJmOGNWTjZKTllrLS1SZDJtcE9XeHZ6a0F1YTloQUxCbTNISERNMzdVMEUCIQD1P_74ouqQaExqHAIEo3vi1WJPibEGBW_Altq7LOWodgIgVt8ENVkuntA6oO7CJhhj7q4m4sGi3gRj3b4uOgxjppo',
  },
} as const;

const SECURITY_SCHEMES = {
  CbKeyId: 'CB-Key-Id',
  CbTimestamp: 'CB-Timestamp',
  CbNonce: 'CB-Nonce',
  CbSignature: 'CB-Signature',
} as const;

const SIGNING_DESCRIPTION = [
  'Request signing (docs/PROTOCOL.md §8). Devices sign every records call with their device key; the',
  'connector signs every pairing call with the hospital key. The string to sign is eight lines joined',
  'by LF, no trailing LF:',
  '',
  '```',
  REQUEST_SIGNATURE_VERSION,
  '<audience: the apiBase of this deployment>',
  '<METHOD>',
  '<target: path from /pairing/v1 or /records/v1 on, plus ?query exactly as sent>',
  '<base64url SHA-256 of the exact body bytes>',
  '<CB-Timestamp>',
  '<CB-Nonce>',
  '<CB-Key-Id>',
  '```',
  '',
  'Verification order: headers present (SIGNATURE_MISSING) and well-formed (SIGNATURE_MALFORMED), key kind',
  'accepted (UNKNOWN_KEY), timestamp within 300 s (REQUEST_EXPIRED), string to sign (SIGNATURE_INVALID), key',
  'registered (UNKNOWN_KEY, DEVICE_REVOKED, HOSPITAL_SUSPENDED), signature (SIGNATURE_INVALID), nonce',
  '(REQUEST_REPLAYED).',
].join('\n');

const API_DESCRIPTION = [
  "Clinic Bridge's HTTP API, protocol v2: what phones and hospital connectors call. Generated from",
  'shared/core/protocol/api-contract.ts; the prose specification is docs/PROTOCOL.md §8, §9, §12 and §16.8.',
  '',
  'Errors are `{"error":{"code","message","field"?,"traceId"}}` with a stable code and the status the',
  'catalogue gives it (`x-error-codes`); `field` names the first failing field or header, never its value.',
  'Every answer carries `x-trace-id`. Endpoints without query parameters refuse any query (INVALID_REQUEST).',
  'A path no function serves is NOT_FOUND, and a known path with another method METHOD_NOT_ALLOWED',
  '(with an Allow header).',
  '',
  SIGNING_DESCRIPTION,
].join('\n');

function signatureParameters(signer: ApiSigner): { $ref: string }[] {
  if (signer === 'none') return [];
  const keyId = signer === 'device' ? 'CbKeyIdDevice' : 'CbKeyIdHospital';
  return [keyId, 'CbTimestamp', 'CbNonce', 'CbSignature'].map((name) => ({
    $ref: `#/components/parameters/${name}`,
  }));
}

function queryParameters(endpoint: ApiEndpoint): Record<string, unknown>[] {
  if (!endpoint.query) return [];
  const schema = jsonSchemaOf(endpoint.query, 'input');
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: 'query',
    required: required.has(name),
    schema: property,
  }));
}

function pathParameters(endpoint: ApiEndpoint): Record<string, unknown>[] {
  return Object.entries(endpoint.params ?? {}).map(([name, schema]) => ({
    name,
    in: 'path',
    required: true,
    schema: jsonSchemaOf(schema, 'input'),
  }));
}

const TRACE_HEADER = { $ref: '#/components/headers/TraceId' };

function errorBody(code: ErrorCode): unknown {
  return { error: { code, message: ERROR_CODES[code].message, traceId: '4bf92f3577b34da6a3ce929d0e0e4736' } };
}

/** One response per status, each allowing exactly this endpoint's codes of that status. */
function errorResponses(endpoint: ApiEndpoint): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of errorsOf(endpoint)) {
    const status = ERROR_CODES[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, unknown> = {};
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = {
      description: codes.map((code) => `${code}: ${ERROR_CODES[code].message}`).join('\n'),
      headers: { 'x-trace-id': TRACE_HEADER },
      content: {
        'application/json': {
          schema: {
            allOf: [
              { $ref: '#/components/schemas/Error' },
              {
                properties: {
                  error: {
                    anyOf: codes.map((code) => ({
                      properties: {
                        code: { const: code },
                        message: { const: ERROR_CODES[code].message },
                      },
                    })),
                  },
                },
              },
            ],
          },
          examples: Object.fromEntries(codes.map((code) => [code, { value: errorBody(code) }])),
        },
      },
    };
  }
  return responses;
}

function successResponse(endpoint: ApiEndpoint, ref: (body: ApiJsonBody, io: 'input' | 'output') => string) {
  const success = endpoint.success;
  const headers: Record<string, unknown> = { 'x-trace-id': TRACE_HEADER };
  if (success.kind === 'empty') return { description: 'Done; no body.', headers };
  if (success.kind === 'stream') {
    return {
      description: 'The bytes, streamed; exactly content-length of them.',
      headers: { ...headers, 'content-length': { $ref: '#/components/headers/ContentLength' } },
      content: { [success.mediaType]: { schema: { type: 'string', contentMediaType: success.mediaType } } },
    };
  }
  return {
    description: 'OK',
    headers,
    content: {
      'application/json': { schema: { $ref: ref(success.body, 'output') }, example: success.body.example },
    },
  };
}

const RANGE_PARAMETER = {
  name: 'range',
  in: 'header',
  required: false,
  description: 'bytes=<first>- resumes a download at byte <first>; any other form is ignored.',
  schema: { type: 'string', pattern: '^bytes=(0|[1-9][0-9]{0,15})-$' },
  example: 'bytes=1048576-',
};

/** A resumed download: the bytes from the requested one to the end. */
function partialResponse(mediaType: string) {
  return {
    description: 'The bytes from the requested first byte to the end, streamed.',
    headers: {
      'x-trace-id': TRACE_HEADER,
      'content-length': { $ref: '#/components/headers/ContentLength' },
      'content-range': {
        description: 'bytes <first>-<last>/<size>',
        schema: { type: 'string', pattern: '^bytes [0-9]+-[0-9]+/[0-9]+$' },
      },
    },
    content: { [mediaType]: { schema: { type: 'string', contentMediaType: mediaType } } },
  };
}

/** The whole document. `serverUrl` names the deployment (default: the example apiBase). */
export function openApiDocument(options: { serverUrl?: string } = {}): OpenApiDocument {
  const schemas: Record<string, JsonSchema> = {};
  const owners = new Map<string, z.ZodType>();
  const ref = (body: ApiJsonBody, io: 'input' | 'output'): string => {
    const owner = owners.get(body.name);
    if (owner !== undefined && owner !== body.schema)
      throw new Error(`two schemas are named ${body.name} in the API contract`);
    owners.set(body.name, body.schema);
    schemas[body.name] = jsonSchemaOf(body.schema, io);
    return `#/components/schemas/${body.name}`;
  };

  const paths: Record<string, Record<string, unknown>> = {};
  const operationIds = new Set<string>();
  for (const endpoint of API_CONTRACT) {
    if (operationIds.has(endpoint.operationId))
      throw new Error(`operationId ${endpoint.operationId} is used twice`);
    operationIds.add(endpoint.operationId);
    const operation: Record<string, unknown> = {
      operationId: endpoint.operationId,
      tags: [endpoint.function],
      summary: endpoint.summary,
      description: endpoint.description,
      'x-cb-signer': endpoint.signer,
      security:
        endpoint.signer === 'none'
          ? []
          : [Object.fromEntries(Object.keys(SECURITY_SCHEMES).map((k) => [k, []]))],
      parameters: [
        ...pathParameters(endpoint),
        ...queryParameters(endpoint),
        ...signatureParameters(endpoint.signer),
      ],
    };
    if (endpoint.body) {
      operation.requestBody = {
        required: true,
        content: {
          'application/json': {
            schema: { $ref: ref(endpoint.body, 'input') },
            example: endpoint.body.example,
          },
        },
      };
    }
    operation.responses = {
      [String(endpoint.success.status)]: successResponse(endpoint, ref),
      ...(endpoint.success.kind === 'stream' && endpoint.success.resumable
        ? { '206': partialResponse(endpoint.success.mediaType) }
        : {}),
      ...errorResponses(endpoint),
    };
    if (endpoint.success.kind === 'stream' && endpoint.success.resumable) {
      (operation.parameters as unknown[]).push(RANGE_PARAMETER);
    }
    const path = openApiPath(endpoint);
    const item = (paths[path] ??= {});
    const method = endpoint.method.toLowerCase();
    if (item[method]) throw new Error(`${endpoint.method} ${path} is in the API contract twice`);
    item[method] = operation;
  }

  const answered = [...new Set(API_CONTRACT.flatMap(errorsOf))];
  const catalogue = Object.fromEntries(
    (Object.keys(ERROR_CODES) as ErrorCode[])
      .filter((code) => answered.includes(code))
      .map((code) => [code, { status: ERROR_CODES[code].status, message: ERROR_CODES[code].message }]),
  );
  const errorSchema = jsonSchemaOf(errorBodySchema, 'output');

  return {
    openapi: '3.1.0',
    info: {
      title: 'Clinic Bridge API',
      version: '2',
      description: API_DESCRIPTION,
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [
      {
        url: options.serverUrl ?? EXAMPLE_API_BASE,
        description: "The deployment's apiBase (from the QR code, or the connector's onboarding).",
      },
    ],
    tags: [
      { name: 'pairing', description: 'Pairing function (§9.1): invitations, pairing, the witness (§16.8).' },
      { name: 'records', description: 'Records function (§9.2): device-signed, except the signing key.' },
    ],
    'x-error-codes': catalogue,
    paths,
    components: {
      schemas: {
        Error: errorSchema,
        ...Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => (a < b ? -1 : 1))),
      },
      parameters: Object.fromEntries(
        Object.entries(SIGNATURE_HEADER_PARAMETERS).map(([key, header]) => [
          key,
          { in: 'header', required: true, ...header },
        ]),
      ),
      headers: {
        TraceId: {
          description:
            'The request’s trace id (32 hex), also in error bodies: quote it when reporting a problem.',
          schema: { type: 'string', pattern: '^[0-9a-f]{32}$' },
        },
        ContentLength: { description: 'Bytes in the body.', schema: { type: 'string', pattern: '^[0-9]+$' } },
      },
      securitySchemes: Object.fromEntries(
        Object.entries(SECURITY_SCHEMES).map(([key, name]) => [
          key,
          {
            type: 'apiKey',
            in: 'header',
            name,
            description: `One of the four request-signing headers; all four are required together (§8).`,
          },
        ]),
      ),
    },
  };
}
