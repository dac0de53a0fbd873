// Holding the OpenAPI document (shared/core/protocol/openapi.ts) to the functions:
// - the routes each API function serves, read from its source (functions/<name>/function.ts),
//   against the contract table, both ways;
// - any answer a function gave, against the document: its status must be one the operation
//   lists, its content type the one listed, and its body valid for the listed schema;
// - the published copy (docs/openapi.json), formatted as prettier formats it.
// The JSON Schema check is a small validator for the keywords z.toJSONSchema emits. It fails
// closed: a keyword it does not know throws, so a document that grows a construct it cannot
// check stops the test instead of passing it.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import * as prettier from 'prettier';
import ts from 'typescript';
import { API_CONTRACT, type ApiEndpoint } from '../../shared/core/protocol/api-contract.ts';
import { loadCatalog, type Catalog } from '../../shared/runtime/catalog.ts';
import type { JsonSchema, OpenApiDocument } from '../../shared/core/protocol/openapi.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const OPENAPI_FILE = join(REPO_ROOT, 'docs', 'openapi.json');

/** The document as published: JSON, formatted by the repository's prettier settings. */
export async function openApiText(document: OpenApiDocument): Promise<string> {
  const config = (await prettier.resolveConfig(OPENAPI_FILE)) ?? {};
  return prettier.format(JSON.stringify(document), { ...config, filepath: OPENAPI_FILE });
}

// ---- Routes, as the functions declare them ----

export interface DeclaredRoute {
  readonly method: string;
  readonly path: string;
}

/**
 * The routes in a function's source: every object literal with string-literal `method` and
 * `path` inside a `routes: [...]` array (the createApiFunction options). A route whose method or
 * path is not a literal cannot be checked, so it is an error.
 */
export function routesInSource(source: string, fileName = 'function.ts'): DeclaredRoute[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  const routes: DeclaredRoute[] = [];
  const literal = (object: ts.ObjectLiteralExpression, name: string): string => {
    const property = object.properties.find(
      (p): p is ts.PropertyAssignment => ts.isPropertyAssignment(p) && p.name.getText(file) === name,
    );
    if (!property || !ts.isStringLiteralLike(property.initializer)) {
      throw new Error(
        `${fileName}: a route's ${name} is not a string literal (${object.getText(file).slice(0, 80)})`,
      );
    }
    return property.initializer.text;
  };
  const visit = (node: ts.Node): void => {
    if (
      ts.isPropertyAssignment(node) &&
      node.name.getText(file) === 'routes' &&
      ts.isArrayLiteralExpression(node.initializer)
    ) {
      for (const element of node.initializer.elements) {
        if (!ts.isObjectLiteralExpression(element))
          throw new Error(
            `${fileName}: a route is not an object literal (${element.getText(file).slice(0, 80)})`,
          );
        routes.push({ method: literal(element, 'method'), path: literal(element, 'path') });
      }
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return routes;
}

/**
 * Functions with an HTTP trigger (infra/catalog.json) that phones and connectors do not call,
 * and why: the contract must cover every other HTTP function.
 */
export const NOT_CLIENT_APIS: Readonly<Record<string, string>> = {
  health: "the operators' readiness probe (GET, no body); not part of the protocol",
};

/**
 * The routes of every HTTP-triggered function in functions/ (scheduled and event functions are
 * called by Cloud Scheduler and Eventarc, never by a phone or a connector), except NOT_CLIENT_APIS.
 */
export async function apiFunctionRoutes(
  functionsDir = join(REPO_ROOT, 'functions'),
  catalog: Catalog = loadCatalog(),
): Promise<Map<string, DeclaredRoute[]>> {
  const found = new Map<string, DeclaredRoute[]>();
  for (const entry of (await readdir(functionsDir, { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    if (!entry.isDirectory() || Object.hasOwn(NOT_CLIENT_APIS, entry.name)) continue;
    const file = join(functionsDir, entry.name, 'function.ts');
    const source = await readFile(file, 'utf8').catch(() => undefined);
    if (source === undefined) continue;
    const trigger = catalog.functions[entry.name]?.trigger.type;
    if (trigger === undefined) throw new Error(`${entry.name} has no entry in infra/catalog.json`);
    if (trigger !== 'http') continue;
    if (!source.includes('createApiFunction('))
      throw new Error(`${file} is an HTTP function that does not route through createApiFunction`);
    found.set(entry.name, routesInSource(source, file));
  }
  return found;
}

/** What differs between a function's routes and the contract's entries for it (empty: none). */
export function routeDrift(
  functionName: string,
  routes: readonly DeclaredRoute[],
  contract: readonly ApiEndpoint[] = API_CONTRACT,
): string[] {
  const key = (method: string, path: string) => `${method} /${functionName}${path}`;
  const served = routes.map((route) => key(route.method, route.path));
  const documented = contract
    .filter((endpoint) => endpoint.function === functionName)
    .map((endpoint) => key(endpoint.method, endpoint.route));
  return [
    ...served
      .filter((route) => !documented.includes(route))
      .map((route) => `served but not documented: ${route}`),
    ...documented
      .filter((route) => !served.includes(route))
      .map((route) => `documented but not served: ${route}`),
    ...served.filter((route, i) => served.indexOf(route) !== i).map((route) => `served twice: ${route}`),
  ];
}

// ---- JSON Schema: Ajv, in the 2020-12 dialect OpenAPI 3.1 uses ----

// One validator per document: the document is registered whole, so a schema's local $refs
// ("#/components/schemas/…") resolve against it. Strict mode is off only for OpenAPI's own
// annotation keywords (example, contentMediaType) that JSON Schema does not define.
const validators = new WeakMap<object, Ajv2020>();
const DOCUMENT_ID = 'urn:clinic-bridge:openapi';

function validatorFor(root: unknown): Ajv2020 {
  const key = (root ?? {}) as object;
  let ajv = validators.get(key);
  if (!ajv) {
    ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });
    ajv.addSchema({ ...(key as Record<string, unknown>), $id: DOCUMENT_ID });
    validators.set(key, ajv);
  }
  return ajv;
}

/** The object a local $ref ("#/components/parameters/X") names in `root`. */
function resolve(root: unknown, ref: string): JsonSchema {
  if (!ref.startsWith('#/')) throw new Error(`only local $ref is supported: ${ref}`);
  let node: unknown = root;
  for (const part of ref.slice(2).split('/')) {
    node = (node as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  if (node === undefined) throw new Error(`unresolved $ref ${ref}`);
  return node as JsonSchema;
}

/**
 * Where `value` breaks `schema` (empty: valid), each as "<at>.<path>: <message>". `root`, the
 * whole document, resolves $refs.
 */
export function schemaErrors(
  schema: JsonSchema | boolean,
  value: unknown,
  root: unknown,
  at = '$',
): string[] {
  const ajv = validatorFor(root);
  // A schema taken out of the document still refers into it: point its local refs there.
  const anchored =
    typeof schema === 'boolean'
      ? schema
      : (JSON.parse(JSON.stringify(schema).replaceAll('"$ref":"#/', `"$ref":"${DOCUMENT_ID}#/`)) as object);
  const validate = ajv.compile(anchored);
  if (validate(value)) return [];
  // Ajv reports a oneOf's every branch; its own verdict on the oneOf says enough on its own.
  const errors = validate.errors ?? [];
  const top = errors.filter((error) => error.keyword === 'oneOf' || error.keyword === 'anyOf');
  return (top.length > 0 ? top : errors).map((error) => {
    const extra = (error.params as { additionalProperty?: string }).additionalProperty;
    const path = `${at}${error.instancePath.replaceAll('/', '.')}${extra ? `.${extra}` : ''}`;
    return `${path}: ${extra ? 'is not allowed' : error.message}`;
  });
}

// ---- Answers against the document ----

export interface ObservedAnswer {
  readonly method: string;
  /** The full path as called, without the query: /records/v1/records/abc/content. */
  readonly path: string;
  readonly status: number;
  readonly contentType: string | null;
  /** Parsed JSON, or undefined for no body / a byte stream. */
  readonly body: unknown;
  readonly headers?: Headers;
}

/** The operation of the document that answers `method path`, and its path template. */
export function operationFor(
  document: OpenApiDocument,
  method: string,
  path: string,
): { template: string; operation: Record<string, unknown> } | undefined {
  const segments = path.split('/').filter(Boolean);
  for (const [template, item] of Object.entries(document.paths)) {
    const parts = template.split('/').filter(Boolean);
    if (parts.length !== segments.length) continue;
    if (!parts.every((part, i) => /^\{.+\}$/.test(part) || part === segments[i])) continue;
    const operation = item[method.toLowerCase()] as Record<string, unknown> | undefined;
    if (operation) return { template, operation };
  }
  return undefined;
}

/** Where an answer departs from the document (empty: it is described). */
export function answerProblems(document: OpenApiDocument, answer: ObservedAnswer): string[] {
  const found = operationFor(document, answer.method, answer.path);
  const where = `${answer.method} ${answer.path} → ${answer.status}`;
  if (!found) return [`${where}: no operation in the document`];
  const responses = found.operation.responses as Record<string, Record<string, unknown>>;
  const response = responses[String(answer.status)];
  if (!response)
    return [`${where}: status not documented (documented: ${Object.keys(responses).join(', ')})`];
  const problems: string[] = [];
  for (const name of Object.keys((response.headers ?? {}) as object)) {
    if (answer.headers && answer.headers.get(name) === null)
      problems.push(`${where}: header ${name} missing`);
  }
  const content = response.content as Record<string, { schema?: JsonSchema }> | undefined;
  if (!content) {
    if (answer.body !== undefined) problems.push(`${where}: a body where the document has none`);
    return problems;
  }
  const mediaType = (answer.contentType ?? '').split(';')[0]!.trim();
  const entry = content[mediaType];
  if (!entry) return [...problems, `${where}: content type ${mediaType || '(none)'} not documented`];
  if (mediaType === 'application/json' && entry.schema) {
    problems.push(...schemaErrors(entry.schema, answer.body, document).map((error) => `${where}: ${error}`));
  }
  return problems;
}

export interface SentRequest {
  readonly method: string;
  /** As sent: path and query, e.g. /records/v1/records?pageSize=10. */
  readonly target: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The JSON body sent, or undefined for none. */
  readonly body: unknown;
}

interface ParameterObject {
  readonly name: string;
  readonly in: string;
  readonly required?: boolean;
  readonly schema: JsonSchema;
}

/**
 * Where a request departs from the document: a path parameter, query parameter, signature
 * header or body it does not describe. A handler that answers such a request with success
 * accepts something the document does not describe.
 */
export function requestProblems(document: OpenApiDocument, request: SentRequest): string[] {
  const url = new URL(request.target, 'http://host');
  const where = `${request.method} ${request.target}`;
  const found = operationFor(document, request.method, url.pathname);
  if (!found) return [`${where}: no operation in the document`];
  const problems: string[] = [];
  const parameters = ((found.operation.parameters ?? []) as (ParameterObject | { $ref: string })[]).map(
    (parameter) =>
      ('$ref' in parameter ? resolve(document, parameter.$ref) : parameter) as unknown as ParameterObject,
  );
  const segments = url.pathname.split('/').filter(Boolean);
  found.template
    .split('/')
    .filter(Boolean)
    .forEach((part, i) => {
      const name = /^\{(.+)\}$/.exec(part)?.[1];
      const parameter = parameters.find((p) => p.in === 'path' && p.name === name);
      if (name === undefined) return;
      if (!parameter) problems.push(`${where}: path parameter ${name} not described`);
      else
        problems.push(
          ...schemaErrors(parameter.schema, decodeURIComponent(segments[i]!), document, `path.${name}`).map(
            (error) => `${where}: ${error}`,
          ),
        );
    });
  const query = [...url.searchParams.entries()];
  for (const [name, value] of query) {
    const parameter = parameters.find((p) => p.in === 'query' && p.name === name);
    if (!parameter) problems.push(`${where}: query parameter ${name} not described`);
    else
      problems.push(
        ...schemaErrors(parameter.schema, value, document, `query.${name}`).map((e) => `${where}: ${e}`),
      );
  }
  if (new Set(query.map(([name]) => name)).size !== query.length)
    problems.push(`${where}: a repeated query parameter`);
  const headers = new Map(
    Object.entries(request.headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
  for (const parameter of parameters) {
    if (parameter.in === 'query' && parameter.required && !url.searchParams.has(parameter.name))
      problems.push(`${where}: required query parameter ${parameter.name} missing`);
    if (parameter.in !== 'header') continue;
    const value = headers.get(parameter.name.toLowerCase());
    if (value === undefined) {
      if (parameter.required) problems.push(`${where}: header ${parameter.name} missing`);
    } else {
      problems.push(
        ...schemaErrors(parameter.schema, value, document, `header.${parameter.name}`).map(
          (e) => `${where}: ${e}`,
        ),
      );
    }
  }
  const requestBody = found.operation.requestBody as
    { required?: boolean; content: Record<string, { schema: JsonSchema }> } | undefined;
  if (!requestBody) {
    if (request.body !== undefined) problems.push(`${where}: a body where the document has none`);
  } else if (request.body === undefined) {
    if (requestBody.required) problems.push(`${where}: the required body is missing`);
  } else {
    const schema = requestBody.content['application/json']?.schema;
    if (!schema) problems.push(`${where}: no JSON body described`);
    else problems.push(...schemaErrors(schema, request.body, document, 'body').map((e) => `${where}: ${e}`));
  }
  return problems;
}

/** Reads a fetch Response into an ObservedAnswer (JSON parsed, bytes drained). */
export async function observe(method: string, url: string, response: Response): Promise<ObservedAnswer> {
  const contentType = response.headers.get('content-type');
  const text = (contentType ?? '').startsWith('application/json') ? await response.text() : undefined;
  if (text === undefined) await response.arrayBuffer();
  return {
    method,
    path: new URL(url).pathname,
    status: response.status,
    contentType,
    body: text === undefined || text === '' ? undefined : JSON.parse(text),
    headers: response.headers,
  };
}
