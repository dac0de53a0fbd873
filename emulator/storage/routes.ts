// The JSON API surface. Both path forms are served: with the /storage/v1 prefix (what
// `apiEndpoint` produces) and without it (what STORAGE_EMULATOR_HOST produces for JSON
// calls); uploads always come under /upload/storage/v1 and media downloads may also use
// /download/storage/v1.
//
//   GET|POST            /b                                  buckets.list | buckets.insert
//   GET|PATCH|PUT|DELETE /b/B                               buckets.get | patch | update | delete
//   GET                 /b/B/o                              objects.list
//   GET|PATCH|PUT|DELETE /b/B/o/O                           objects.get (alt=json|media) | patch | update | delete
//   POST                /b/B/o/O/copyTo/b/B2/o/O2           objects.copy
//   POST                /b/B/o/O/rewriteTo/b/B2/o/O2        objects.rewrite
//   POST                /b/B/o/O/compose                    objects.compose
//   POST                /upload/storage/v1/b/B/o            uploadType=media | multipart | resumable
//   PUT|POST|DELETE     /upload/storage/v1/b/B/o?upload_id= a resumable session
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import {
  header,
  positiveIntParam,
  publish,
  UPLOAD_PREFIX,
  type ApiRequest,
  type RouteContext,
} from './context.ts';
import { invalid, methodNotAllowed, required, routeNotFound } from './errors.ts';
import { readJson, sendEmpty, sendJson } from './http.ts';
import { download, upload } from './media.ts';
import { assertBucketName, assertObjectName, compareNames } from './names.ts';
import { int64Param, parsePreconditions } from './preconditions.ts';
import {
  bucketInputSchema,
  bucketResource,
  fieldsOf,
  objectInputSchema,
  objectResource,
  parseInput,
  patchFields,
  replaceFields,
} from './resources.ts';

export type { RouteContext } from './context.ts';

const DOWNLOAD_PREFIX = '/download/storage/v1';
const JSON_PREFIX = '/storage/v1';
const HOST = /^[A-Za-z0-9.:[\]-]{1,255}$/;

function segment(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw invalid(`Invalid ${what} in the request path.`);
  }
}

function boolParam(query: URLSearchParams, name: string): boolean {
  const raw = query.get(name);
  if (raw === null) return false;
  if (raw !== 'true' && raw !== 'false') throw invalid(`Invalid value for parameter '${name}': '${raw}'`);
  return raw === 'true';
}

function maxResultsParam(query: URLSearchParams): number {
  const value = positiveIntParam(query, 'maxResults');
  if (value === undefined || value === 0) return 1000;
  return Math.min(value, 1000);
}

export async function route(ctx: RouteContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const raw = (req.url ?? '/').replace(/^\/{2,}/, '/');
  const at = raw.indexOf('?');
  let path = at < 0 ? raw : raw.slice(0, at);
  const query = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
  const host = header(req, 'host');
  const r: ApiRequest = { req, res, query, base: host && HOST.test(host) ? `http://${host}` : ctx.url };
  const method = req.method ?? 'GET';

  let api: 'json' | 'upload' | 'download' = 'json';
  if (path.startsWith(`${UPLOAD_PREFIX}/`)) {
    api = 'upload';
    path = path.slice(UPLOAD_PREFIX.length);
  } else if (path.startsWith(`${DOWNLOAD_PREFIX}/`)) {
    api = 'download';
    path = path.slice(DOWNLOAD_PREFIX.length);
  } else if (path.startsWith(`${JSON_PREFIX}/`)) {
    path = path.slice(JSON_PREFIX.length);
  }

  if (api === 'upload') {
    const match = /^\/b\/([^/]+)\/o\/?$/.exec(path);
    if (!match) throw routeNotFound();
    return upload(ctx, r, method, segment(match[1]!, 'bucket name'));
  }

  let match: RegExpExecArray | null;
  if (/^\/b\/?$/.test(path)) {
    if (api !== 'json') throw routeNotFound();
    if (method === 'GET') return listBuckets(ctx, r);
    if (method === 'POST') return insertBucket(ctx, r);
    throw methodNotAllowed();
  }
  if ((match = /^\/b\/([^/]+)\/?$/.exec(path))) {
    if (api !== 'json') throw routeNotFound();
    const bucket = segment(match[1]!, 'bucket name');
    if (method === 'GET') return sendJson(res, 200, bucketResource(ctx.store.bucket(bucket), r.base));
    if (method === 'PATCH' || method === 'PUT') return patchBucket(ctx, r, bucket);
    if (method === 'DELETE') {
      await ctx.store.deleteBucket(bucket, parsePreconditions(query));
      return sendEmpty(res, 204);
    }
    throw methodNotAllowed();
  }
  if ((match = /^\/b\/([^/]+)\/o\/?$/.exec(path))) {
    if (api !== 'json') throw routeNotFound();
    const bucket = segment(match[1]!, 'bucket name');
    if (method === 'GET') return listObjects(ctx, r, bucket);
    if (method === 'POST') {
      throw invalid(
        'Upload requests must include an uploadType URL parameter and a URL path beginning with /upload/',
      );
    }
    throw methodNotAllowed();
  }
  if (method === 'POST' && api === 'json') {
    if ((match = /^\/b\/([^/]+)\/o\/([^/]+)\/(copyTo|rewriteTo)\/b\/([^/]+)\/o\/(.+)$/.exec(path))) {
      const [, sb, so, kind, db, dobj] = match;
      return copyOrRewrite(
        ctx,
        r,
        kind === 'rewriteTo',
        { bucket: segment(sb!, 'bucket name'), name: segment(so!, 'object name') },
        { bucket: segment(db!, 'bucket name'), name: segment(dobj!, 'object name') },
      );
    }
    if ((match = /^\/b\/([^/]+)\/o\/(.+)\/compose$/.exec(path))) {
      return compose(ctx, r, segment(match[1]!, 'bucket name'), segment(match[2]!, 'object name'));
    }
  }
  if ((match = /^\/b\/([^/]+)\/o\/(.+)$/.exec(path))) {
    const bucket = segment(match[1]!, 'bucket name');
    const name = segment(match[2]!, 'object name');
    if (api === 'download') {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed();
      return download(ctx, r, bucket, name);
    }
    if (method === 'GET' || method === 'HEAD') {
      const alt = query.get('alt') ?? 'json';
      if (alt === 'media') return download(ctx, r, bucket, name);
      if (alt !== 'json') throw invalid(`Invalid value for parameter 'alt': '${alt}'`);
      const record = ctx.store.get(bucket, name, int64Param(query, 'generation'), parsePreconditions(query));
      return sendJson(res, 200, objectResource(record, r.base));
    }
    if (method === 'PATCH' || method === 'PUT') return updateObject(ctx, r, bucket, name, method === 'PUT');
    if (method === 'DELETE') {
      await ctx.store.delete(bucket, name, int64Param(query, 'generation'), parsePreconditions(query));
      return sendEmpty(res, 204);
    }
    throw methodNotAllowed();
  }
  throw routeNotFound();
}

// ---- buckets ----

async function insertBucket(ctx: RouteContext, r: ApiRequest): Promise<void> {
  const input = parseInput(bucketInputSchema, await readJson(r.req));
  if (!input.name) throw required('name');
  assertBucketName(input.name);
  const project = r.query.get('project') || ctx.projectId;
  const record = await ctx.store.createBucket(input.name, project, input);
  sendJson(r.res, 200, bucketResource(record, r.base));
}

async function patchBucket(ctx: RouteContext, r: ApiRequest, bucket: string): Promise<void> {
  const input = parseInput(bucketInputSchema, await readJson(r.req));
  const record = await ctx.store.patchBucket(bucket, input, parsePreconditions(r.query));
  sendJson(r.res, 200, bucketResource(record, r.base));
}

function listBuckets(ctx: RouteContext, r: ApiRequest): void {
  const project = r.query.get('project') || ctx.projectId;
  const max = maxResultsParam(r.query);
  const token = r.query.get('pageToken');
  let after = '';
  if (token) {
    try {
      after = Buffer.from(token, 'base64url').toString('utf8');
    } catch {
      throw invalid('Invalid page token.');
    }
  }
  const all = ctx.store
    .listBuckets(project, r.query.get('prefix') ?? '')
    .filter((b) => !after || compareNames(b.name, after) > 0);
  const page = all.slice(0, max);
  const body: Record<string, unknown> = {
    kind: 'storage#buckets',
    items: page.map((b) => bucketResource(b, r.base)),
  };
  if (all.length > max) body.nextPageToken = Buffer.from(page[page.length - 1]!.name).toString('base64url');
  sendJson(r.res, 200, body);
}

// ---- objects ----

function listObjects(ctx: RouteContext, r: ApiRequest, bucket: string): void {
  const q = r.query;
  if (q.get('matchGlob') !== null) throw invalid('matchGlob is not supported by the local emulator.');
  const delimiter = q.get('delimiter');
  const startOffset = q.get('startOffset');
  const endOffset = q.get('endOffset');
  const pageToken = q.get('pageToken');
  const result = ctx.store.list(bucket, {
    prefix: q.get('prefix') ?? '',
    maxResults: maxResultsParam(q),
    includeTrailingDelimiter: boolParam(q, 'includeTrailingDelimiter'),
    ...(delimiter ? { delimiter } : {}),
    ...(startOffset ? { startOffset } : {}),
    ...(endOffset ? { endOffset } : {}),
    ...(pageToken ? { pageToken } : {}),
  });
  const body: Record<string, unknown> = { kind: 'storage#objects' };
  if (result.records.length > 0) body.items = result.records.map((o) => objectResource(o, r.base));
  if (result.prefixes.length > 0) body.prefixes = result.prefixes;
  if (result.nextPageToken) body.nextPageToken = result.nextPageToken;
  sendJson(r.res, 200, body);
}

async function updateObject(
  ctx: RouteContext,
  r: ApiRequest,
  bucket: string,
  name: string,
  replace: boolean,
) {
  const input = parseInput(objectInputSchema, await readJson(r.req));
  const record = await ctx.store.update(
    bucket,
    name,
    int64Param(r.query, 'generation'),
    parsePreconditions(r.query),
    (current) => (replace ? replaceFields(input) : patchFields(fieldsOf(current), input)),
  );
  sendJson(r.res, 200, objectResource(record, r.base));
}
// ---- copy, rewrite, compose ----

async function copyOrRewrite(
  ctx: RouteContext,
  r: ApiRequest,
  rewrite: boolean,
  source: { bucket: string; name: string },
  destination: { bucket: string; name: string },
): Promise<void> {
  const body = await readJson(r.req);
  const input = body === undefined ? undefined : parseInput(objectInputSchema, body);
  assertObjectName(destination.name);
  const sourceGeneration = int64Param(r.query, 'sourceGeneration');
  const from = {
    ...source,
    ...(sourceGeneration !== undefined ? { generation: sourceGeneration } : {}),
    preconditions: parsePreconditions(r.query, true),
  };
  const to = { ...destination, preconditions: parsePreconditions(r.query), input };
  if (!rewrite) {
    const record = await ctx.copier.copy(from, to);
    await publish(ctx, record);
    return sendJson(r.res, 200, objectResource(record, r.base));
  }
  const token = r.query.get('rewriteToken') || undefined;
  const progress = await ctx.copier.rewrite(
    from,
    to,
    token,
    positiveIntParam(r.query, 'maxBytesRewrittenPerCall'),
  );
  const response: Record<string, unknown> = {
    kind: 'storage#rewriteResponse',
    totalBytesRewritten: String(progress.copied),
    objectSize: String(progress.total),
    done: progress.done,
  };
  if (progress.token) response.rewriteToken = progress.token;
  if (progress.record) {
    await publish(ctx, progress.record);
    response.resource = objectResource(progress.record, r.base);
  }
  sendJson(r.res, 200, response);
}

const composeSchema = z.object({
  destination: z.unknown().optional(),
  sourceObjects: z
    .array(
      z.object({
        name: z.string().min(1),
        generation: z.union([z.string().regex(/^\d{1,19}$/), z.number().int().nonnegative()]).optional(),
        objectPreconditions: z
          .object({
            ifGenerationMatch: z
              .union([z.string().regex(/^\d{1,19}$/), z.number().int().nonnegative()])
              .optional(),
          })
          .optional(),
      }),
    )
    .optional(),
});

async function compose(ctx: RouteContext, r: ApiRequest, bucket: string, name: string): Promise<void> {
  assertObjectName(name);
  const body = parseInput(composeSchema, await readJson(r.req));
  if (!body.sourceObjects) throw required('sourceObjects');
  const input =
    body.destination === undefined || body.destination === null
      ? undefined
      : parseInput(objectInputSchema, body.destination);
  const record = await ctx.copier.compose(
    bucket,
    name,
    body.sourceObjects.map((s) => ({
      name: s.name,
      ...(s.generation !== undefined ? { generation: String(s.generation) } : {}),
      ...(s.objectPreconditions?.ifGenerationMatch !== undefined
        ? { ifGenerationMatch: String(s.objectPreconditions.ifGenerationMatch) }
        : {}),
    })),
    input,
    parsePreconditions(r.query),
  );
  await publish(ctx, record);
  sendJson(r.res, 200, objectResource(record, r.base));
}
