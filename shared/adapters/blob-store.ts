// BlobStore over the official @google-cloud/storage client (unchanged; only the endpoint
// differs locally, see google-clients.ts).
//
// createOnly streams through a chunked resumable upload with ifGenerationMatch=0. In that
// protocol an object is finalized only by the request that declares the total size, and the
// client sends that request only once the write stream has ended. So the source is written
// in full, `beforeCommit` runs, and only then is the stream ended. If the source or
// `beforeCommit` fails, the stream is destroyed instead and the session cancelled (DELETE on
// the session URI), so the object never exists. Memory stays near one chunk (the client keeps
// the chunk in flight for retries), whatever the object's size.
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { File, FileMetadata, Storage } from '@google-cloud/storage';
import { crc32c, crc32cBase64 } from '../core/checksums/crc32c.ts';
import {
  BlobStoreError,
  MAX_SMALL_BLOB_BYTES,
  type BlobInfo,
  type BlobPage,
  type BlobStore,
  type BlobStoreErrorCode,
  type CreateOnlyOptions,
  type ListOptions,
  type ReadOptions,
  type WriteSmallOptions,
} from '../ports/blob-store.ts';

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
/** Resumable chunks must be multiples of 256 KiB. */
const CHUNK_GRANULE = 256 * 1024;
const CANCEL_TIMEOUT_MS = 10_000;
const MAX_PAGE = 1000;

export interface GcsBlobStoreOptions {
  /**
   * Bytes per resumable upload request; a multiple of 256 KiB. Default: none, so the whole
   * object streams through one resumable request. The client's multi-request mode keeps part
   * of every chunk it sent referenced (measured here: about 40% of the bytes uploaded, still
   * held after a forced GC), which would grow a 1 GiB upload far past the clients' memory
   * budget; one request keeps memory flat, at the price of restarting a failed upload whole.
   */
  uploadChunkBytes?: number;
}

export function createBlobStore(storage: Storage, options: GcsBlobStoreOptions = {}): BlobStore {
  return new GcsBlobStore(storage, options);
}

export class GcsBlobStore implements BlobStore {
  readonly #storage: Storage;
  readonly #chunkBytes: number | undefined;

  constructor(storage: Storage, options: GcsBlobStoreOptions = {}) {
    const chunk = options.uploadChunkBytes;
    if (chunk !== undefined && (!Number.isSafeInteger(chunk) || chunk <= 0 || chunk % CHUNK_GRANULE !== 0)) {
      throw new RangeError('uploadChunkBytes must be a positive multiple of 256 KiB');
    }
    this.#storage = storage;
    this.#chunkBytes = chunk;
  }

  async stat(bucket: string, name: string): Promise<BlobInfo | undefined> {
    try {
      const [metadata] = await this.#file(bucket, name).getMetadata();
      return toInfo(bucket, name, metadata);
    } catch (error) {
      const mapped = toBlobStoreError(error, 'stat');
      if (mapped.code === 'NOT_FOUND') return undefined;
      throw mapped;
    }
  }

  async *read(bucket: string, name: string, options: ReadOptions = {}): AsyncGenerator<Uint8Array> {
    const { start, end } = options;
    checkOffset(start, 'start');
    checkOffset(end, 'end');
    if (start !== undefined && end !== undefined && end < start) {
      throw new BlobStoreError('INVALID_ARGUMENT', 'read: end comes before start');
    }
    let generation = options.generation;
    if (generation === undefined) {
      const info = await this.stat(bucket, name);
      if (!info) throw new BlobStoreError('NOT_FOUND', 'read: no such object', { status: 404 });
      generation = info.generation;
    }
    checkGeneration(generation);
    const ranged = start !== undefined || end !== undefined;
    const stream = this.#file(bucket, name, generation).createReadStream({
      ...(start !== undefined ? { start } : {}),
      ...(end !== undefined ? { end } : {}),
      // The client can only check whole objects; a range has no stored checksum.
      validation: ranged ? false : 'crc32c',
      decompress: false,
    });
    try {
      for await (const chunk of stream) yield chunk as Uint8Array;
    } catch (error) {
      throw toBlobStoreError(error, 'read');
    } finally {
      stream.destroy();
    }
  }

  async createOnly(
    bucket: string,
    name: string,
    source: AsyncIterable<Uint8Array>,
    options: CreateOnlyOptions = {},
  ): Promise<BlobInfo> {
    const { maxBytes } = options;
    if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes < 0)) {
      throw new BlobStoreError('INVALID_ARGUMENT', 'createOnly: maxBytes must be a whole number');
    }
    const file = this.#file(bucket, name);
    const contentType = options.contentType ?? DEFAULT_CONTENT_TYPE;
    const metadata = objectMetadata(contentType, options);
    // The upload starts with the first byte; an empty source is written in one request below.
    let upload: Upload | undefined;
    let ended = false;

    try {
      let size = 0;
      for await (const chunk of source) {
        if (!(chunk instanceof Uint8Array))
          throw new TypeError('createOnly: the source must yield Uint8Array');
        size += chunk.byteLength;
        if (maxBytes !== undefined && size > maxBytes) {
          throw new BlobStoreError('TOO_LARGE', `createOnly: the source exceeds ${maxBytes} bytes`);
        }
        if (chunk.byteLength === 0) continue;
        upload ??= startUpload(file, this.#chunkBytes, contentType, metadata);
        upload.check();
        // A copy: the client keeps chunks until uploaded, and sources may reuse their buffers.
        if (!upload.stream.write(Buffer.from(chunk))) await drained(upload.stream);
      }
      upload?.check();
      await options.beforeCommit?.();
      ended = true;
      if (upload) {
        upload.stream.end();
        await upload.completed.catch((error: unknown) => {
          throw storageFailure(error);
        });
      } else {
        // Chunked resumable uploads cannot express an empty object; one create-only request can.
        await file
          .save(Buffer.alloc(0), {
            resumable: false,
            validation: 'crc32c',
            contentType,
            metadata,
            preconditionOpts: { ifGenerationMatch: 0 },
          })
          .catch((error: unknown) => {
            throw storageFailure(error);
          });
      }
    } catch (error) {
      if (upload && !ended) await upload.abort();
      throw error instanceof StorageFailure ? createOnlyError(error.cause) : error;
    }
    return toInfo(bucket, name, file.metadata);
  }

  async delete(bucket: string, name: string, options: { ifGenerationMatch?: string } = {}): Promise<boolean> {
    const { ifGenerationMatch } = options;
    if (ifGenerationMatch !== undefined) checkGeneration(ifGenerationMatch);
    try {
      await this.#file(bucket, name).delete(ifGenerationMatch !== undefined ? { ifGenerationMatch } : {});
      return true;
    } catch (error) {
      const mapped = toBlobStoreError(error, 'delete');
      if (mapped.code === 'NOT_FOUND') return false;
      throw mapped;
    }
  }

  async list(bucket: string, prefix: string, options: ListOptions = {}): Promise<BlobPage> {
    const maxResults = options.maxResults ?? MAX_PAGE;
    if (!Number.isSafeInteger(maxResults) || maxResults < 1) {
      throw new BlobStoreError('INVALID_ARGUMENT', 'list: maxResults must be a positive whole number');
    }
    try {
      const [files, next] = await this.#storage.bucket(bucket).getFiles({
        prefix,
        autoPaginate: false,
        maxResults: Math.min(maxResults, MAX_PAGE),
        ...(options.pageToken ? { pageToken: options.pageToken } : {}),
      });
      const nextPageToken = (next as { pageToken?: string } | null | undefined)?.pageToken;
      return {
        items: files.map((file) => toInfo(bucket, file.name, file.metadata)),
        ...(nextPageToken ? { nextPageToken } : {}),
      };
    } catch (error) {
      throw toBlobStoreError(error, 'list');
    }
  }

  async writeSmall(
    bucket: string,
    name: string,
    bytes: Uint8Array,
    options: WriteSmallOptions = {},
  ): Promise<BlobInfo> {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('writeSmall: bytes must be a Uint8Array');
    if (bytes.byteLength > MAX_SMALL_BLOB_BYTES) {
      throw new BlobStoreError('TOO_LARGE', `writeSmall takes at most ${MAX_SMALL_BLOB_BYTES} bytes`);
    }
    if (options.createOnly && options.ifGenerationMatch !== undefined) {
      throw new BlobStoreError(
        'INVALID_ARGUMENT',
        'writeSmall: createOnly and ifGenerationMatch exclude each other',
      );
    }
    if (
      options.ifGenerationMatch !== undefined &&
      !/^(0|[1-9][0-9]{0,18})$/.test(options.ifGenerationMatch)
    ) {
      throw new BlobStoreError('INVALID_ARGUMENT', 'writeSmall: ifGenerationMatch is not a generation');
    }
    const file = this.#file(bucket, name);
    const contentType = options.contentType ?? DEFAULT_CONTENT_TYPE;
    const ifGenerationMatch = options.createOnly ? 0 : options.ifGenerationMatch;
    try {
      await file.save(Buffer.from(bytes), {
        resumable: false,
        validation: 'crc32c',
        contentType,
        metadata: objectMetadata(contentType, options),
        ...(ifGenerationMatch !== undefined ? { preconditionOpts: { ifGenerationMatch } } : {}),
      });
      return toInfo(bucket, name, file.metadata);
    } catch (error) {
      const mapped = toBlobStoreError(error, 'writeSmall');
      if (!options.createOnly || mapped.code !== 'PRECONDITION_FAILED') throw mapped;
      // Taken. If it holds exactly these bytes (our own earlier write whose answer was lost,
      // or a retried event), the write is done; otherwise the caller must know.
      const existing = await this.#sameContent(bucket, name, bytes);
      if (existing) return existing;
      throw new BlobStoreError('ALREADY_EXISTS', 'writeSmall: the object already exists', {
        status: 412,
        cause: error,
      });
    }
  }

  async #sameContent(bucket: string, name: string, bytes: Uint8Array): Promise<BlobInfo | undefined> {
    const info = await this.stat(bucket, name);
    if (!info || info.size !== bytes.byteLength || info.crc32c !== crc32cBase64(crc32c(bytes)))
      return undefined;
    const stored = Buffer.alloc(info.size);
    let offset = 0;
    for await (const chunk of this.read(bucket, name, { generation: info.generation })) {
      if (offset + chunk.byteLength > stored.length) return undefined;
      stored.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return offset === bytes.byteLength && stored.equals(bytes) ? info : undefined;
  }

  #file(bucket: string, name: string, generation?: string): File {
    return this.#storage.bucket(bucket).file(name, generation === undefined ? {} : { generation });
  }
}

// ---- Errors ----

/** Marks an error as the Storage client's (mapped), as opposed to the caller's (rethrown as is). */
class StorageFailure extends Error {
  constructor(cause: unknown) {
    super('storage failure', { cause });
  }
}

const storageFailure = (error: unknown) =>
  error instanceof StorageFailure ? error : new StorageFailure(error);

function createOnlyError(error: unknown): BlobStoreError {
  const mapped = toBlobStoreError(error, 'createOnly');
  // The only condition createOnly sets is "no object yet".
  if (mapped.code === 'PRECONDITION_FAILED') {
    return new BlobStoreError('ALREADY_EXISTS', 'createOnly: the object already exists', {
      status: 412,
      cause: error,
    });
  }
  return mapped;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);
const INTEGRITY_CODES = new Set(['CONTENT_DOWNLOAD_MISMATCH', 'FILE_NO_UPLOAD', 'FILE_NO_UPLOAD_DELETE']);

function httpStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  for (const candidate of [e.code, e.response?.status, e.status]) {
    const value = typeof candidate === 'string' && /^\d{3}$/.test(candidate) ? Number(candidate) : candidate;
    if (typeof value === 'number' && value >= 100 && value <= 599) return value;
  }
  return undefined;
}

function codeForStatus(status: number): BlobStoreErrorCode {
  if (status === 404) return 'NOT_FOUND';
  if (status === 409) return 'ALREADY_EXISTS';
  if (status === 412) return 'PRECONDITION_FAILED';
  if (status === 413) return 'TOO_LARGE';
  if (status === 416) return 'RANGE_NOT_SATISFIABLE';
  if (status === 401 || status === 403) return 'PERMISSION_DENIED';
  if (status === 408 || status === 429 || status >= 500) return 'UNAVAILABLE';
  if (status >= 400) return 'INVALID_ARGUMENT';
  return 'UNKNOWN';
}

/** Maps what the Storage client throws to a BlobStoreError with a stable code. */
export function toBlobStoreError(error: unknown, action: string): BlobStoreError {
  if (error instanceof BlobStoreError) return error;
  const status = httpStatus(error);
  let code: BlobStoreErrorCode;
  if (status !== undefined) {
    code = codeForStatus(status);
  } else {
    const raw = (error as { code?: unknown } | null)?.code;
    if (typeof raw === 'string' && INTEGRITY_CODES.has(raw)) code = 'INTEGRITY';
    else if (typeof raw === 'string' && NETWORK_CODES.has(raw)) code = 'UNAVAILABLE';
    else code = 'UNKNOWN';
  }
  const suffix = status === undefined ? '' : ` (HTTP ${status})`;
  return new BlobStoreError(code, `Cloud Storage ${action} failed: ${code}${suffix}`, {
    ...(status !== undefined ? { status } : {}),
    cause: error,
  });
}

// ---- Helpers ----

interface Upload {
  readonly stream: Writable;
  /** Settles when the object is finalized (or the upload failed). */
  readonly completed: Promise<void>;
  /** Throws (as a StorageFailure) if the upload has already failed. */
  check(): void;
  /** Destroys the stream and cancels the session: the object is never finalized. */
  abort(): Promise<void>;
}

/** The object resource fields a write sets: type, custom metadata and, if given, customTime. */
function objectMetadata(
  contentType: string,
  options: { readonly metadata?: Readonly<Record<string, string>>; readonly expiresAt?: Date },
): FileMetadata {
  return {
    contentType,
    metadata: { ...options.metadata },
    ...(options.expiresAt ? { customTime: options.expiresAt.toISOString() } : {}),
  };
}

function startUpload(
  file: File,
  chunkSize: number | undefined,
  contentType: string,
  metadata: FileMetadata,
): Upload {
  const stream = file.createWriteStream({
    resumable: true,
    ...(chunkSize === undefined ? {} : { chunkSize }),
    validation: 'crc32c',
    contentType,
    metadata,
    preconditionOpts: { ifGenerationMatch: 0 },
  });
  let sessionUri: string | undefined;
  let failed: unknown;
  stream.on('uri', (uri: string) => (sessionUri = uri));
  stream.on('error', (error) => (failed ??= error));
  const completed = finished(stream);
  completed.catch(() => {}); // observed by the caller; never an unhandled rejection
  return {
    stream,
    completed,
    check() {
      if (failed !== undefined) throw storageFailure(failed);
    },
    async abort() {
      stream.destroy();
      if (sessionUri) await cancelSession(sessionUri);
    },
  };
}

function drained(stream: Writable): Promise<void> {
  if (stream.errored) return Promise.reject(storageFailure(stream.errored));
  if (stream.destroyed) return Promise.reject(storageFailure(new Error('the upload stream closed early')));
  // once() rejects if 'error' comes first; 'close' without 'drain' would otherwise hang.
  return new Promise<void>((resolve, reject) => {
    const onClose = () =>
      reject(storageFailure(stream.errored ?? new Error('the upload stream closed early')));
    stream.once('close', onClose);
    once(stream, 'drain').then(
      () => {
        stream.off('close', onClose);
        resolve();
      },
      (error: unknown) => {
        stream.off('close', onClose);
        reject(storageFailure(error));
      },
    );
  });
}

/**
 * Cancels a resumable session so nothing of it remains (Cloud Storage answers 499). The
 * session URI is its own credential, so no auth header is needed. Best effort: an
 * unfinalized session never becomes an object, and Cloud Storage drops it after a week.
 */
async function cancelSession(uri: string): Promise<void> {
  try {
    const res = await fetch(uri, {
      method: 'DELETE',
      headers: { 'content-length': '0' },
      signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS),
    });
    await res.body?.cancel();
  } catch {
    // best effort (see above)
  }
}

function toInfo(bucket: string, name: string, metadata: FileMetadata): BlobInfo {
  const custom: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.metadata ?? {})) {
    if (typeof value === 'string') custom[key] = value;
  }
  return {
    bucket,
    name,
    size: Number(metadata.size ?? 0),
    generation: String(metadata.generation ?? ''),
    crc32c: metadata.crc32c ?? '',
    contentType: metadata.contentType,
    metadata: custom,
    ...(metadata.timeCreated ? { createdAt: new Date(metadata.timeCreated) } : {}),
  };
}

function checkOffset(value: number | undefined, what: string): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw new BlobStoreError('INVALID_ARGUMENT', `read: ${what} must be a whole number of bytes`);
  }
}

function checkGeneration(value: string): void {
  if (!/^[1-9]\d{0,18}$/.test(value)) {
    throw new BlobStoreError('INVALID_ARGUMENT', 'generation must be a positive decimal integer');
  }
}
