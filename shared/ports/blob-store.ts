// Object storage as the services need it: streamed, create-only writes that finalize only
// after the caller has checked what it streamed, generation-pinned reads, idempotent
// deletes. The Cloud Storage adapter lives in shared/adapters/blob-store.ts.

/** What is known about one stored object. */
export interface BlobInfo {
  readonly bucket: string;
  readonly name: string;
  readonly size: number;
  /** Cloud Storage's int64 generation as decimal text; pin reads and deletes with it. */
  readonly generation: string;
  /** Big-endian CRC32C in base64, as Cloud Storage reports it. */
  readonly crc32c: string;
  readonly contentType: string | undefined;
  /** Custom metadata (string values only). */
  readonly metadata: Readonly<Record<string, string>>;
  /** When this generation was written (retention ages leftovers and orphans by it). */
  readonly createdAt?: Date;
}

export interface ReadOptions {
  /** First byte to read (default 0). */
  readonly start?: number;
  /** Last byte to read, INCLUSIVE as in HTTP Range and the Storage client (default: the end). */
  readonly end?: number;
  /**
   * Read exactly this generation. Without it the store pins the generation it finds first,
   * so a concurrent overwrite makes the read fail (NOT_FOUND) instead of mixing versions.
   */
  readonly generation?: string;
}

export interface CreateOnlyOptions {
  /** Default application/octet-stream. */
  readonly contentType?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * Runs after the last byte of `source` has been read and before the object is finalized
   * (for example, to compare a digest computed while streaming). If it throws, the object is
   * never finalized, createOnly rethrows that same error, and no object exists afterwards.
   */
  readonly beforeCommit?: () => void | Promise<void>;
  /** Refuse (TOO_LARGE, no object) once the source yields more than this many bytes. */
  readonly maxBytes?: number;
  /** When the object expires: Cloud Storage's customTime, which the buckets' lifecycle rules act on. */
  readonly expiresAt?: Date;
}

export interface ListOptions {
  readonly pageToken?: string;
  /** At most 1000 per page. */
  readonly maxResults?: number;
}

export interface BlobPage {
  readonly items: readonly BlobInfo[];
  /** Present when more objects follow; pass it back as `pageToken`. */
  readonly nextPageToken?: string;
}

export interface WriteSmallOptions {
  /**
   * Only create: fail with ALREADY_EXISTS if an object of that name exists, unless it holds
   * exactly these bytes (then the write counts as done, so a retried write is idempotent).
   */
  readonly createOnly?: boolean;
  /**
   * Compare-and-swap: replace the object only if `generation` is current ("0": only if there
   * is none), else PRECONDITION_FAILED. Not with `createOnly`.
   */
  readonly ifGenerationMatch?: string;
  readonly contentType?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** When the object expires (customTime), as for createOnly. */
  readonly expiresAt?: Date;
}

/** The most `writeSmall` takes; stream anything bigger through `createOnly`. */
export const MAX_SMALL_BLOB_BYTES = 8 * 1024 * 1024;

export interface BlobStore {
  /** The object's current generation, or undefined if there is none. */
  stat(bucket: string, name: string): Promise<BlobInfo | undefined>;
  /**
   * Streams the object (or a byte range) in constant memory. Errors, NOT_FOUND included,
   * surface while iterating. Full reads are checked against the stored CRC32C.
   */
  read(bucket: string, name: string, options?: ReadOptions): AsyncIterable<Uint8Array>;
  /**
   * Streams `source` into a new object that exists only if this call succeeds: ALREADY_EXISTS
   * if the name is taken, and a failing source or `beforeCommit` leaves nothing behind.
   * The store may hold on to chunks until they are uploaded: do not reuse yielded buffers.
   */
  createOnly(
    bucket: string,
    name: string,
    source: AsyncIterable<Uint8Array>,
    options?: CreateOnlyOptions,
  ): Promise<BlobInfo>;
  /**
   * Deletes the object; true if this call deleted it, false if there was nothing to delete.
   * With `ifGenerationMatch`, PRECONDITION_FAILED if another generation is current.
   */
  delete(bucket: string, name: string, options?: { readonly ifGenerationMatch?: string }): Promise<boolean>;
  /** One page of the objects whose names start with `prefix`, in name order. */
  list(bucket: string, prefix: string, options?: ListOptions): Promise<BlobPage>;
  /** Writes a small object in one request (receipts, markers). */
  writeSmall(bucket: string, name: string, bytes: Uint8Array, options?: WriteSmallOptions): Promise<BlobInfo>;
}

export type BlobStoreErrorCode =
  /** No such object (or generation), or no such bucket. */
  | 'NOT_FOUND'
  /** createOnly / writeSmall({createOnly}) found the name taken. */
  | 'ALREADY_EXISTS'
  /** A generation condition did not hold (another generation is current). */
  | 'PRECONDITION_FAILED'
  /** The object is bigger than the store or the caller allows. */
  | 'TOO_LARGE'
  /** The requested byte range lies outside the object. */
  | 'RANGE_NOT_SATISFIABLE'
  /** The bytes stored or read do not match their checksum. */
  | 'INTEGRITY'
  /** The caller's identity may not do this. */
  | 'PERMISSION_DENIED'
  /** The request was malformed (bad name, bad option). */
  | 'INVALID_ARGUMENT'
  /** The service could not be reached or failed transiently; retrying later may work. */
  | 'UNAVAILABLE'
  | 'UNKNOWN';

/** Errors from a BlobStore. Branch on `code`; the message holds no object content. */
export class BlobStoreError extends Error {
  readonly code: BlobStoreErrorCode;
  /** The HTTP status, when the service answered. */
  readonly status: number | undefined;

  constructor(code: BlobStoreErrorCode, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BlobStoreError';
    this.code = code;
    this.status = options.status;
  }

  get retryable(): boolean {
    return this.code === 'UNAVAILABLE';
  }
}

export function isBlobStoreError(error: unknown, code?: BlobStoreErrorCode): error is BlobStoreError {
  return error instanceof BlobStoreError && (code === undefined || error.code === code);
}
