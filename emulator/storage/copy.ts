// Server-side copies: objects.copy (copyTo), objects.rewrite (rewriteTo, in several calls
// when maxBytesRewrittenPerCall asks for it) and objects.compose. Bytes are streamed from
// the source file into a new temporary file and re-hashed on the way, so a damaged source
// is refused instead of copied. Each result is a new finalized object.
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { BlobWriter } from './blob-writer.ts';
import { ApiError, conditionNotMet, invalid, objectNotFound } from './errors.ts';
import { checkPreconditions, type Preconditions } from './preconditions.ts';
import {
  fieldsOf,
  OBJECT_FIELD_KEYS,
  replaceFields,
  type ObjectFields,
  type ObjectInput,
  type ObjectRecord,
} from './resources.ts';
import type { ObjectStore } from './store.ts';

export interface CopySource {
  bucket: string;
  name: string;
  generation?: string;
  preconditions: Preconditions;
}

export interface CopyDestination {
  bucket: string;
  name: string;
  preconditions: Preconditions;
  /** The request body: when it sets any metadata, it replaces the source's. */
  input: ObjectInput | undefined;
}

export interface RewriteProgress {
  done: boolean;
  copied: number;
  total: number;
  token?: string;
  record?: ObjectRecord;
}

export interface ComposeSource {
  name: string;
  generation?: string;
  ifGenerationMatch?: string;
}

interface RewriteState {
  source: ObjectRecord;
  destination: CopyDestination;
  writer: BlobWriter;
  created: number;
}

const MIB = 1024 * 1024;
const MAX_COMPONENTS = 1024;
const MAX_COMPOSE_SOURCES = 32;
const REWRITE_TTL_MS = 24 * 3600 * 1000;

const damaged = (): ApiError =>
  new ApiError(500, 'backendError', 'The source object failed its stored checksum.');

function destinationFields(source: ObjectRecord, input: ObjectInput | undefined): ObjectFields {
  if (input && OBJECT_FIELD_KEYS.some((key) => input[key] !== undefined)) return replaceFields(input);
  return fieldsOf(source);
}

async function pump(handle: FileHandle, writer: BlobWriter, start: number, end: number): Promise<void> {
  if (end < start) return;
  const stream = handle.createReadStream({ start, end, autoClose: false, highWaterMark: MIB });
  for await (const chunk of stream) await writer.write(chunk as Buffer);
}

export class Copier {
  readonly #store: ObjectStore;
  readonly #maxSize: number;
  readonly #rewrites = new Map<string, RewriteState>();

  constructor(store: ObjectStore, maxSize: number) {
    this.#store = store;
    this.#maxSize = maxSize;
  }

  #precheck(destination: CopyDestination): void {
    this.#store.bucket(destination.bucket);
    checkPreconditions(
      destination.preconditions,
      this.#store.current(destination.bucket, destination.name),
      'write',
    );
  }

  /** objects.copy: one call, the whole object. */
  async copy(source: CopySource, destination: CopyDestination): Promise<ObjectRecord> {
    const progress = await this.rewrite(source, destination, undefined, undefined);
    return progress.record!;
  }

  /** objects.rewrite: copies up to `maxBytesPerCall` (a multiple of 1 MiB) per call. */
  async rewrite(
    source: CopySource,
    destination: CopyDestination,
    token: string | undefined,
    maxBytesPerCall: number | undefined,
  ): Promise<RewriteProgress> {
    if (maxBytesPerCall !== undefined && (maxBytesPerCall <= 0 || maxBytesPerCall % MIB !== 0)) {
      throw invalid('maxBytesRewrittenPerCall must be a positive multiple of 1048576.');
    }
    this.#sweep();
    let state: RewriteState;
    if (token !== undefined) {
      const found = this.#rewrites.get(token);
      if (
        !found ||
        found.source.bucket !== source.bucket ||
        found.source.name !== source.name ||
        found.destination.bucket !== destination.bucket ||
        found.destination.name !== destination.name
      ) {
        throw invalid('Invalid rewrite token.');
      }
      this.#rewrites.delete(token);
      state = found;
    } else {
      this.#precheck(destination);
      const current = this.#store.get(source.bucket, source.name, source.generation, {});
      checkPreconditions(source.preconditions, current, 'write');
      state = {
        source: current,
        destination,
        writer: await BlobWriter.create(this.#store.tmpDir, this.#maxSize),
        created: Date.now(),
      };
    }

    const { source: record, writer } = state;
    let handle: FileHandle;
    try {
      ({ handle } = await this.#store.openObject(record.bucket, record.name, String(record.generation), {}));
    } catch (error) {
      await writer.abort();
      throw error;
    }
    try {
      const from = writer.size;
      const to = Math.min(record.size, maxBytesPerCall === undefined ? record.size : from + maxBytesPerCall);
      await pump(handle, writer, from, to - 1);
      if (writer.size < record.size) {
        const next = randomBytes(24).toString('base64url');
        this.#rewrites.set(next, state);
        return { done: false, copied: writer.size, total: record.size, token: next };
      }
      const digests = await writer.finish();
      if (
        digests.crc32c !== record.crc32c ||
        (record.md5Hash !== undefined && digests.md5Hash !== record.md5Hash)
      ) {
        throw damaged();
      }
      const committed = await this.#store.commit({
        bucket: destination.bucket,
        name: destination.name,
        file: writer.path,
        size: digests.size,
        crc32c: digests.crc32c,
        ...(record.md5Hash !== undefined ? { md5Hash: record.md5Hash } : {}),
        ...(record.componentCount !== undefined ? { componentCount: record.componentCount } : {}),
        fields: destinationFields(record, state.destination.input),
        preconditions: destination.preconditions,
      });
      return { done: true, copied: committed.size, total: committed.size, record: committed };
    } catch (error) {
      await writer.abort();
      throw error;
    } finally {
      await handle.close().catch(() => {});
    }
  }

  /** objects.compose: concatenates up to 32 objects of one bucket; the result has no MD5. */
  async compose(
    bucket: string,
    name: string,
    sources: ComposeSource[],
    input: ObjectInput | undefined,
    preconditions: Preconditions,
  ): Promise<ObjectRecord> {
    if (sources.length === 0) throw invalid('You must provide at least one source component.');
    if (sources.length > MAX_COMPOSE_SOURCES) {
      throw invalid(`The number of source components provided (${sources.length}) exceeds the maximum (32).`);
    }
    const destination: CopyDestination = { bucket, name, preconditions, input };
    this.#precheck(destination);
    let components = 0;
    for (const source of sources) {
      const record = this.#store.current(bucket, source.name);
      if (!record || (source.generation !== undefined && String(record.generation) !== source.generation)) {
        throw objectNotFound(bucket, source.name);
      }
      if (
        source.ifGenerationMatch !== undefined &&
        BigInt(source.ifGenerationMatch) !== BigInt(record.generation)
      ) {
        throw conditionNotMet();
      }
      components += record.componentCount ?? 1;
    }
    if (components > MAX_COMPONENTS) {
      throw invalid(
        `The composite object would have ${components} components, more than the maximum (1024).`,
      );
    }
    const writer = await BlobWriter.create(this.#store.tmpDir, this.#maxSize);
    try {
      for (const source of sources) {
        const { record, handle } = await this.#store.openObject(bucket, source.name, source.generation, {
          ...(source.ifGenerationMatch !== undefined ? { ifGenerationMatch: source.ifGenerationMatch } : {}),
        });
        try {
          const before = writer.size;
          await pump(handle, writer, 0, record.size - 1);
          if (writer.size - before !== record.size) throw damaged();
        } finally {
          await handle.close().catch(() => {});
        }
      }
      const digests = await writer.finish();
      return await this.#store.commit({
        bucket,
        name,
        file: writer.path,
        size: digests.size,
        crc32c: digests.crc32c,
        componentCount: components,
        fields: input ? replaceFields(input) : {},
        preconditions,
      });
    } catch (error) {
      await writer.abort();
      throw error;
    }
  }

  #sweep(): void {
    const now = Date.now();
    for (const [token, state] of this.#rewrites) {
      if (now - state.created > REWRITE_TTL_MS) {
        this.#rewrites.delete(token);
        void state.writer.abort();
      }
    }
  }

  async close(): Promise<void> {
    const states = [...this.#rewrites.values()];
    this.#rewrites.clear();
    await Promise.all(states.map((state) => state.writer.abort()));
  }
}
