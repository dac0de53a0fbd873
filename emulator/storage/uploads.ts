// Resumable upload sessions (uploadType=resumable). A session is a JSON file plus a part
// file under DATA/uploads/, so an upload survives an emulator restart the way a session
// URI survives a dropped connection. Bytes are appended and hashed as they arrive; the
// running hashes live in memory and are rebuilt from the part file after a restart.
//
// PUT to the session URI with Content-Range:
//   bytes A-B/T, bytes A-B/*   a chunk; 308 + Range until the object is complete
//   bytes A-*/T, bytes A-*/*   the rest of the object in one request
//   bytes */T, bytes */*       status query (or finalize, when T bytes are already there)
//   (none)                     the whole object in one request
// Bytes the server already has (A below the persisted size) are skipped, as in Cloud Storage.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobWriter, HashState } from './blob-writer.ts';
import { expectedHashes, verifyHashes, type ExpectedHashes } from './checksums.ts';
import { ApiError, invalid } from './errors.ts';
import { readJsonFile, writeJsonAtomic } from './files.ts';
import { KeyedMutex } from './locks.ts';
import type { Preconditions } from './preconditions.ts';
import type { ObjectFields, ObjectRecord } from './resources.ts';
import type { ObjectStore } from './store.ts';

const SESSION_ID = /^[A-Za-z0-9_-]{16,128}$/;
/** Cloud Storage keeps a session for a week. */
const SESSION_TTL_MS = 7 * 24 * 3600 * 1000;
const CONTENT_RANGE = /^bytes\s+(?:\*|(\d{1,16})-(\d{1,16}|\*))\/(\*|\d{1,16})$/i;

interface SessionFile {
  id: string;
  bucket: string;
  name: string;
  fields: ObjectFields;
  preconditions: Preconditions;
  expected: ExpectedHashes;
  declaredSize?: number;
  created: number;
  /** Set once the object is committed; a repeated final PUT answers with it. */
  result?: ObjectRecord;
}

interface Session {
  file: SessionFile;
  hashes?: HashState;
}

export interface NewSession {
  bucket: string;
  name: string;
  fields: ObjectFields;
  preconditions: Preconditions;
  expected: ExpectedHashes;
  declaredSize?: number;
}

export type PutResult = { status: 308; size: number } | { status: 200; record: ObjectRecord; fresh: boolean };

interface ContentRange {
  start?: number;
  end?: number | '*';
  total?: number;
}

export function parseContentRange(header: string | undefined): ContentRange | undefined {
  if (header === undefined) return undefined;
  const match = CONTENT_RANGE.exec(header.trim());
  if (!match) throw invalid(`Invalid Content-Range header: '${header}'`);
  const [, start, end, total] = match;
  const range: ContentRange = {};
  if (start !== undefined) range.start = Number(start);
  if (end !== undefined) range.end = end === '*' ? '*' : Number(end);
  if (total !== '*') range.total = Number(total);
  if (typeof range.end === 'number' && range.start !== undefined && range.end < range.start) {
    throw invalid(`Invalid Content-Range header: '${header}'`);
  }
  if (typeof range.end === 'number' && range.total !== undefined && range.end >= range.total) {
    throw invalid(`Invalid Content-Range header: '${header}'`);
  }
  return range;
}

export const noSuchUpload = (): ApiError => new ApiError(404, 'notFound', 'No such upload session.');

export class ResumableUploads {
  readonly #dir: string;
  readonly #store: ObjectStore;
  readonly #maxSize: number;
  readonly #sessions = new Map<string, Session>();
  readonly #locks = new KeyedMutex();

  private constructor(dir: string, store: ObjectStore, maxSize: number) {
    this.#dir = dir;
    this.#store = store;
    this.#maxSize = maxSize;
  }

  static async open(dir: string, store: ObjectStore, maxSize: number): Promise<ResumableUploads> {
    await mkdir(dir, { recursive: true });
    const uploads = new ResumableUploads(dir, store, maxSize);
    const now = Date.now();
    for (const entry of await readdir(dir)) {
      if (entry.endsWith('.tmp')) {
        await rm(join(dir, entry), { force: true });
        continue;
      }
      if (!entry.endsWith('.json')) continue;
      const file = (await readJsonFile(join(dir, entry))) as SessionFile | undefined;
      if (!file || typeof file.created !== 'number' || now - file.created > SESSION_TTL_MS) {
        await uploads.#remove(entry.slice(0, -'.json'.length));
      }
    }
    return uploads;
  }

  #jsonPath(id: string): string {
    return join(this.#dir, `${id}.json`);
  }

  #partPath(id: string): string {
    return join(this.#dir, `${id}.part`);
  }

  async #remove(id: string): Promise<void> {
    this.#sessions.delete(id);
    await rm(this.#jsonPath(id), { force: true });
    await rm(this.#partPath(id), { force: true });
  }

  async create(request: NewSession): Promise<string> {
    if (request.declaredSize !== undefined && request.declaredSize > this.#maxSize) {
      throw new ApiError(
        413,
        'uploadTooLarge',
        `Upload exceeds the maximum object size of ${this.#maxSize} bytes.`,
      );
    }
    const id = randomBytes(24).toString('base64url');
    const file: SessionFile = { id, ...request, created: Date.now() };
    await (await open(this.#partPath(id), 'wx')).close();
    await writeJsonAtomic(this.#jsonPath(id), file);
    this.#sessions.set(id, { file, hashes: new HashState() });
    return id;
  }

  async #session(id: string): Promise<Session> {
    if (!SESSION_ID.test(id)) throw noSuchUpload();
    const cached = this.#sessions.get(id);
    if (cached) return cached;
    const file = (await readJsonFile(this.#jsonPath(id))) as SessionFile | undefined;
    if (!file || file.id !== id) throw noSuchUpload();
    const session: Session = { file };
    this.#sessions.set(id, session);
    return session;
  }

  async #hashes(id: string, session: Session): Promise<HashState> {
    session.hashes ??= await HashState.ofFile(this.#partPath(id));
    return session.hashes;
  }

  /** Bytes persisted so far. */
  async #size(id: string, session: Session): Promise<number> {
    if (session.hashes) return session.hashes.size;
    return (await stat(this.#partPath(id))).size;
  }

  /** Handles one PUT to the session URI. `body` is drained in every case. */
  async put(
    id: string,
    body: AsyncIterable<Buffer>,
    contentRange: string | undefined,
    googHash: ExpectedHashes | undefined,
  ): Promise<PutResult> {
    return this.#locks.run(id, async () => {
      const session = await this.#session(id);
      if (session.file.result) {
        await drain(body);
        return { status: 200, record: session.file.result, fresh: false };
      }
      const range = parseContentRange(contentRange) ?? { start: 0, end: '*' };
      if (range.total !== undefined && range.total > this.#maxSize) {
        await this.#remove(id);
        throw new ApiError(
          413,
          'uploadTooLarge',
          `Upload exceeds the maximum object size of ${this.#maxSize} bytes.`,
        );
      }
      const persisted = await this.#size(id, session);

      if (range.start === undefined) {
        // Status query, or the final (empty) request of an upload whose bytes are all here.
        await drain(body);
        if (range.total !== undefined && persisted > range.total) {
          throw invalid(`The upload already holds ${persisted} bytes, more than the total ${range.total}.`);
        }
        if (range.total !== undefined && persisted === range.total) {
          return this.#finalize(id, session, googHash);
        }
        return { status: 308, size: persisted };
      }

      if (range.start > persisted) {
        await drain(body);
        throw invalid(
          `Invalid request. According to the Content-Range header, the upload offset is ${range.start} byte(s), which exceeds already uploaded size of ${persisted} byte(s).`,
        );
      }
      const expected = typeof range.end === 'number' ? range.end - range.start + 1 : undefined;
      let skip = persisted - range.start;
      let received = 0;
      const hashes = await this.#hashes(id, session);
      const writer = await BlobWriter.append(this.#partPath(id), this.#maxSize, hashes);
      try {
        for await (const chunk of body) {
          received += chunk.byteLength;
          if (expected !== undefined && received > expected) {
            throw invalid('The request body is longer than its Content-Range says.');
          }
          let data = chunk;
          if (skip > 0) {
            const dropped = Math.min(skip, data.byteLength);
            data = data.subarray(dropped);
            skip -= dropped;
          }
          await writer.write(data);
        }
        await writer.close();
      } catch (error) {
        // What did arrive is kept (the client may resume), unless the object is too big.
        const flushed = await writer.close().then(
          () => true,
          () => false,
        );
        if (error instanceof ApiError && error.status === 413) await this.#remove(id);
        else if (!flushed) session.hashes = undefined; // rebuilt from the file on the next request
        throw error;
      }
      const size = hashes.size;
      if (range.total !== undefined) {
        if (size > range.total) {
          await this.#remove(id);
          throw invalid(`The upload holds ${size} bytes, more than the declared total of ${range.total}.`);
        }
        if (size === range.total) return this.#finalize(id, session, googHash);
        return { status: 308, size };
      }
      if (range.end === '*') return this.#finalize(id, session, googHash);
      return { status: 308, size };
    });
  }

  async #finalize(id: string, session: Session, googHash: ExpectedHashes | undefined): Promise<PutResult> {
    const digests = (await this.#hashes(id, session)).digests();
    const { file } = session;
    try {
      if (file.declaredSize !== undefined && file.declaredSize !== digests.size) {
        throw invalid(
          `The upload holds ${digests.size} bytes but X-Upload-Content-Length declared ${file.declaredSize}.`,
        );
      }
      verifyHashes(expectedHashes(file.expected, googHash), digests);
    } catch (error) {
      await this.#remove(id);
      throw error;
    }
    let record: ObjectRecord;
    try {
      record = await this.#store.commit({
        bucket: file.bucket,
        name: file.name,
        file: this.#partPath(id),
        size: digests.size,
        crc32c: digests.crc32c,
        md5Hash: digests.md5Hash,
        fields: file.fields,
        preconditions: file.preconditions,
      });
    } catch (error) {
      await this.#remove(id);
      throw error;
    }
    file.result = record;
    session.hashes = undefined;
    await writeJsonAtomic(this.#jsonPath(id), file);
    return { status: 200, record, fresh: true };
  }

  /** DELETE on the session URI: Cloud Storage answers 499 and forgets the session. */
  async cancel(id: string): Promise<void> {
    await this.#locks.run(id, async () => {
      await this.#session(id);
      await this.#remove(id);
    });
  }
}

async function drain(body: AsyncIterable<Buffer>): Promise<void> {
  for await (const _chunk of body) {
    // discard
  }
}
