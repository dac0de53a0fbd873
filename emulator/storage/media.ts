// Object bytes in and out: media downloads (with Range and gzip transcoding) and the three
// upload types. Bytes are streamed between the socket and a file, hashed on the way.
import type { IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { BlobWriter } from './blob-writer.ts';
import { expectedHashes, googHash, parseGoogHash, verifyHashes } from './checksums.ts';
import { header, publish, UPLOAD_PREFIX, type ApiRequest, type RouteContext } from './context.ts';
import { invalid, methodNotAllowed, required, uploadTooLarge } from './errors.ts';
import { bodyOf, parseJson, parseRange, readJson, sendEmpty, sendJson, MAX_JSON_BYTES } from './http.ts';
import { boundaryOf, readMultipart } from './multipart.ts';
import { assertObjectName, encodeName } from './names.ts';
import { checkPreconditions, int64Param, parsePreconditions, type Preconditions } from './preconditions.ts';
import {
  objectInputSchema,
  objectResource,
  parseInput,
  replaceFields,
  type ObjectInput,
  type ObjectRecord,
} from './resources.ts';

function objectHeaders(record: ObjectRecord): Record<string, string> {
  const headers: Record<string, string> = {
    'Content-Type': record.contentType ?? 'application/octet-stream',
    'x-goog-hash': googHash(record.crc32c, record.md5Hash),
    'x-goog-generation': String(record.generation),
    'x-goog-metageneration': String(record.metageneration),
    'x-goog-stored-content-encoding': record.contentEncoding ?? 'identity',
    'x-goog-stored-content-length': String(record.size),
    'x-goog-storage-class': record.storageClass ?? 'STANDARD',
    ETag: `"${record.md5Hash ? Buffer.from(record.md5Hash, 'base64').toString('hex') : record.crc32c}"`,
    'Last-Modified': new Date(record.updated).toUTCString(),
    'Accept-Ranges': 'bytes',
    'Cache-Control': record.cacheControl ?? 'no-cache, no-store, max-age=0, must-revalidate',
  };
  if (record.contentDisposition) headers['Content-Disposition'] = record.contentDisposition;
  if (record.contentLanguage) headers['Content-Language'] = record.contentLanguage;
  if (record.componentCount !== undefined) headers['x-goog-component-count'] = String(record.componentCount);
  return headers;
}

/**
 * Streams an object. Objects stored gzip-encoded are served as stored to clients that
 * accept gzip and decompressed on the fly for the others (decompressive transcoding,
 * where Range is ignored, as in Cloud Storage).
 */
export async function download(
  ctx: RouteContext,
  r: ApiRequest,
  bucket: string,
  name: string,
): Promise<void> {
  const { record, handle } = await ctx.store.openObject(
    bucket,
    name,
    int64Param(r.query, 'generation'),
    parsePreconditions(r.query),
  );
  try {
    const headers = objectHeaders(record);
    const acceptsGzip = /\bgzip\b/i.test(header(r.req, 'accept-encoding') ?? '');
    const transcode = record.contentEncoding === 'gzip' && !acceptsGzip;
    if (record.contentEncoding && !transcode) headers['Content-Encoding'] = record.contentEncoding;
    const range = transcode ? undefined : parseRange(header(r.req, 'range'), record.size);
    let status = 200;
    if (range) {
      status = 206;
      headers['Content-Range'] = `bytes ${range.start}-${range.end}/${record.size}`;
    }
    if (!transcode) headers['Content-Length'] = String(range ? range.end - range.start + 1 : record.size);
    r.res.writeHead(status, headers);
    if (r.req.method === 'HEAD' || record.size === 0) {
      r.res.end();
      return;
    }
    const stream = handle.createReadStream({
      start: range?.start ?? 0,
      end: range?.end ?? record.size - 1,
      highWaterMark: 256 * 1024,
      autoClose: false,
    });
    try {
      if (transcode) await pipeline(stream, createGunzip(), r.res);
      else await pipeline(stream, r.res);
    } catch {
      // The client went away, or (transcoding) the stored bytes are not gzip: cut the response.
      r.res.destroy();
    }
  } finally {
    await handle.close().catch(() => {});
  }
}

export async function upload(
  ctx: RouteContext,
  r: ApiRequest,
  method: string,
  bucket: string,
): Promise<void> {
  const uploadId = r.query.get('upload_id');
  if (uploadId !== null) {
    if (method === 'PUT' || method === 'POST') return resumablePut(ctx, r, uploadId);
    if (method === 'DELETE') {
      await ctx.uploads.cancel(uploadId);
      return sendEmpty(r.res, 499);
    }
    throw methodNotAllowed();
  }
  if (method !== 'POST') throw methodNotAllowed();
  const uploadType = r.query.get('uploadType');
  if (!uploadType) {
    throw invalid(
      'Upload requests must include an uploadType URL parameter and a URL path beginning with /upload/',
    );
  }
  if (uploadType === 'media') return mediaUpload(ctx, r, bucket);
  if (uploadType === 'multipart') return multipartUpload(ctx, r, bucket);
  if (uploadType === 'resumable') return startResumable(ctx, r, bucket);
  throw invalid(`Invalid value for parameter 'uploadType': '${uploadType}'`);
}

/** Checks what can be checked before any byte is read; the commit checks again. */
function precheck(ctx: RouteContext, bucket: string, name: string, query: URLSearchParams) {
  assertObjectName(name);
  const preconditions = parsePreconditions(query);
  checkPreconditions(preconditions, ctx.store.current(bucket, name), 'write');
  return preconditions;
}

function checkDeclaredLength(ctx: RouteContext, req: IncomingMessage): void {
  const declared = Number(header(req, 'content-length') ?? 0);
  if (declared > ctx.maxObjectSize + MAX_JSON_BYTES) throw uploadTooLarge(ctx.maxObjectSize);
}

async function finishUpload(
  ctx: RouteContext,
  r: ApiRequest,
  writer: BlobWriter,
  bucket: string,
  name: string,
  input: ObjectInput,
  contentType: string | undefined,
  preconditions: Preconditions,
): Promise<void> {
  const digests = await writer.finish();
  verifyHashes(expectedHashes(input, parseGoogHash(r.req.headers['x-goog-hash'])), digests);
  const fields = replaceFields(input);
  if (!fields.contentType && contentType) fields.contentType = contentType;
  const record = await ctx.store.commit({
    bucket,
    name,
    file: writer.path,
    size: digests.size,
    crc32c: digests.crc32c,
    md5Hash: digests.md5Hash,
    fields,
    preconditions,
  });
  await publish(ctx, record);
  sendJson(r.res, 200, objectResource(record, r.base));
}

async function mediaUpload(ctx: RouteContext, r: ApiRequest, bucket: string): Promise<void> {
  ctx.store.bucket(bucket);
  const name = r.query.get('name');
  if (!name) throw required('name');
  const preconditions = precheck(ctx, bucket, name, r.query);
  checkDeclaredLength(ctx, r.req);
  const writer = await BlobWriter.create(ctx.store.tmpDir, ctx.maxObjectSize);
  try {
    for await (const chunk of bodyOf(r.req)) await writer.write(chunk);
    await finishUpload(ctx, r, writer, bucket, name, {}, header(r.req, 'content-type'), preconditions);
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

async function multipartUpload(ctx: RouteContext, r: ApiRequest, bucket: string): Promise<void> {
  ctx.store.bucket(bucket);
  const boundary = boundaryOf(header(r.req, 'content-type'));
  checkDeclaredLength(ctx, r.req);
  let writer: BlobWriter | undefined;
  let target:
    | {
        name: string;
        input: ObjectInput;
        mediaType?: string;
        preconditions: Preconditions;
      }
    | undefined;
  try {
    await readMultipart(bodyOf(r.req), boundary, MAX_JSON_BYTES, async ({ metadata, mediaType }) => {
      const input = parseInput(objectInputSchema, parseJson(metadata));
      const name = r.query.get('name') || input.name;
      if (!name) throw required('name');
      const preconditions = precheck(ctx, bucket, name, r.query);
      target = { name, input, preconditions, ...(mediaType ? { mediaType } : {}) };
      const created = await BlobWriter.create(ctx.store.tmpDir, ctx.maxObjectSize);
      writer = created;
      return (chunk) => created.write(chunk);
    });
    if (!writer || !target) throw invalid('A multipart upload needs a media part.');
    await finishUpload(
      ctx,
      r,
      writer,
      bucket,
      target.name,
      target.input,
      target.mediaType,
      target.preconditions,
    );
  } catch (error) {
    await writer?.abort();
    throw error;
  }
}

async function startResumable(ctx: RouteContext, r: ApiRequest, bucket: string): Promise<void> {
  ctx.store.bucket(bucket);
  const input = parseInput(objectInputSchema, await readJson(r.req));
  const name = r.query.get('name') || input.name;
  if (!name) throw required('name');
  const preconditions = precheck(ctx, bucket, name, r.query);
  const declaredRaw = header(r.req, 'x-upload-content-length');
  let declaredSize: number | undefined;
  if (declaredRaw !== undefined) {
    if (!/^\d{1,16}$/.test(declaredRaw.trim()))
      throw invalid(`Invalid X-Upload-Content-Length: '${declaredRaw}'`);
    declaredSize = Number(declaredRaw.trim());
  }
  const fields = replaceFields(input);
  const declaredType = header(r.req, 'x-upload-content-type');
  if (!fields.contentType && declaredType) fields.contentType = declaredType;
  const id = await ctx.uploads.create({
    bucket,
    name,
    fields,
    preconditions,
    expected: expectedHashes(input),
    ...(declaredSize !== undefined ? { declaredSize } : {}),
  });
  const location = `${r.base}${UPLOAD_PREFIX}/b/${bucket}/o?uploadType=resumable&name=${encodeName(name)}&upload_id=${id}`;
  sendEmpty(r.res, 200, { Location: location, 'X-GUploader-UploadID': id });
}

async function resumablePut(ctx: RouteContext, r: ApiRequest, id: string): Promise<void> {
  const result = await ctx.uploads.put(
    id,
    bodyOf(r.req),
    header(r.req, 'content-range'),
    parseGoogHash(r.req.headers['x-goog-hash']),
  );
  if (result.status === 308) {
    const headers: Record<string, string> = { 'X-GUploader-UploadID': id };
    if (result.size > 0) headers.Range = `bytes=0-${result.size - 1}`;
    return sendEmpty(r.res, 308, headers);
  }
  if (result.fresh) await publish(ctx, result.record);
  sendJson(r.res, 200, objectResource(result.record, r.base));
}
