// Buckets and live objects on disk, with an in-memory index rebuilt at start.
//
//   DATA/buckets/BUCKET/bucket.json                 the bucket resource
//   DATA/buckets/BUCKET/meta/KEY.json               one live object's metadata (KEY = sha256 of its name)
//   DATA/buckets/BUCKET/data/KEY-GENERATION         its bytes
//   DATA/tmp/                                       uploads in progress (emptied at start)
//
// A commit renames the finished temporary file to its generation's data file and then
// atomically replaces the metadata file: that rename is the commit point, so a crash
// leaves either the old object or the new one. Data files that no metadata refers to are
// swept at start. Every change to one object runs under that object's mutex.
import { open, mkdir, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { bucketNotFound, conditionNotMet, conflict, objectNotFound } from './errors.ts';
import { isNotFound, readJsonFile, writeJsonAtomic } from './files.ts';
import { listNames, type ListOptions } from './listing.ts';
import { KeyedMutex } from './locks.ts';
import { compareNames, lowerBound, objectKey } from './names.ts';
import { checkPreconditions, type Preconditions } from './preconditions.ts';
import {
  applyBucketInput,
  newBucketRecord,
  type BucketInput,
  type BucketRecord,
  type ObjectFields,
  type ObjectRecord,
} from './resources.ts';

interface BucketState {
  record: BucketRecord;
  objects: Map<string, ObjectRecord>;
  /** Live object names in UTF-8 byte order. */
  sorted: string[];
  /** Commits under way; a bucket with any is not empty. */
  pending: number;
}

export interface CommitRequest {
  bucket: string;
  name: string;
  /** A finished file that becomes the object's bytes (moved, not copied). */
  file: string;
  size: number;
  crc32c: string;
  md5Hash?: string;
  componentCount?: number;
  fields: ObjectFields;
  preconditions: Preconditions;
}

export interface ListResult {
  records: ObjectRecord[];
  prefixes: string[];
  nextPageToken?: string;
}

/** Where an object's bytes live; exported so tests can tamper with them. */
export function objectDataPath(dataDir: string, bucket: string, name: string, generation: number): string {
  return join(dataDir, 'buckets', bucket, 'data', `${objectKey(name)}-${generation}`);
}

export class ObjectStore {
  readonly dataDir: string;
  readonly tmpDir: string;
  readonly #buckets = new Map<string, BucketState>();
  readonly #locks = new KeyedMutex();
  readonly #log: (entry: Record<string, unknown>) => void;
  #lastGeneration = 0;

  private constructor(dataDir: string, log: (entry: Record<string, unknown>) => void) {
    this.dataDir = dataDir;
    this.tmpDir = join(dataDir, 'tmp');
    this.#log = log;
  }

  static async open(dataDir: string, log: (entry: Record<string, unknown>) => void): Promise<ObjectStore> {
    const store = new ObjectStore(dataDir, log);
    await rm(store.tmpDir, { recursive: true, force: true });
    await mkdir(store.tmpDir, { recursive: true });
    await mkdir(join(dataDir, 'buckets'), { recursive: true });
    await store.#load();
    return store;
  }

  #bucketDir(bucket: string): string {
    return join(this.dataDir, 'buckets', bucket);
  }

  #metaPath(bucket: string, name: string): string {
    return join(this.#bucketDir(bucket), 'meta', `${objectKey(name)}.json`);
  }

  dataPath(record: Pick<ObjectRecord, 'bucket' | 'name' | 'generation'>): string {
    return objectDataPath(this.dataDir, record.bucket, record.name, record.generation);
  }

  async #load(): Promise<void> {
    for (const bucket of await readdir(join(this.dataDir, 'buckets'))) {
      const dir = this.#bucketDir(bucket);
      const record = (await readJsonFile(join(dir, 'bucket.json'))) as BucketRecord | undefined;
      if (!record || record.name !== bucket) {
        // A bucket whose creation or deletion was cut short.
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      const state: BucketState = { record, objects: new Map(), sorted: [], pending: 0 };
      const live = new Set<string>();
      for (const file of await readdir(join(dir, 'meta'))) {
        const path = join(dir, 'meta', file);
        const object = file.endsWith('.json')
          ? ((await readJsonFile(path)) as ObjectRecord | undefined)
          : undefined;
        if (!object || typeof object.name !== 'string' || typeof object.generation !== 'number') {
          await rm(path, { force: true });
          continue;
        }
        state.objects.set(object.name, object);
        live.add(`${objectKey(object.name)}-${object.generation}`);
        this.#lastGeneration = Math.max(this.#lastGeneration, object.generation);
      }
      for (const file of await readdir(join(dir, 'data'))) {
        if (!live.has(file)) await rm(join(dir, 'data', file), { force: true });
      }
      state.sorted = [...state.objects.keys()].sort(compareNames);
      this.#buckets.set(bucket, state);
    }
  }

  /** Increasing, microsecond-like generation numbers, as Cloud Storage uses. */
  #nextGeneration(): number {
    this.#lastGeneration = Math.max(Date.now() * 1000, this.#lastGeneration + 1);
    return this.#lastGeneration;
  }

  #state(bucket: string): BucketState {
    const state = this.#buckets.get(bucket);
    if (!state) throw bucketNotFound();
    return state;
  }

  // ---- buckets ----

  bucket(name: string): BucketRecord {
    return this.#state(name).record;
  }

  listBuckets(projectId: string, prefix = ''): BucketRecord[] {
    return [...this.#buckets.values()]
      .map((state) => state.record)
      .filter((record) => record.projectId === projectId && record.name.startsWith(prefix))
      .sort((a, b) => compareNames(a.name, b.name));
  }

  async createBucket(name: string, projectId: string, input: BucketInput): Promise<BucketRecord> {
    return this.#locks.run(`bucket:${name}`, async () => {
      if (this.#buckets.has(name)) {
        throw conflict('Your previous request to create the named bucket succeeded and you already own it.');
      }
      const record = newBucketRecord(name, projectId, input, new Date().toISOString());
      const dir = this.#bucketDir(name);
      await mkdir(join(dir, 'meta'), { recursive: true });
      await mkdir(join(dir, 'data'), { recursive: true });
      await writeJsonAtomic(join(dir, 'bucket.json'), record);
      this.#buckets.set(name, { record, objects: new Map(), sorted: [], pending: 0 });
      return record;
    });
  }

  async patchBucket(name: string, input: BucketInput, preconditions: Preconditions): Promise<BucketRecord> {
    return this.#locks.run(`bucket:${name}`, async () => {
      const state = this.#state(name);
      checkMetageneration(preconditions, state.record.metageneration);
      const record: BucketRecord = {
        ...applyBucketInput(state.record, input),
        metageneration: state.record.metageneration + 1,
        updated: new Date().toISOString(),
      };
      await writeJsonAtomic(join(this.#bucketDir(name), 'bucket.json'), record);
      state.record = record;
      return record;
    });
  }

  async deleteBucket(name: string, preconditions: Preconditions): Promise<void> {
    return this.#locks.run(`bucket:${name}`, async () => {
      const state = this.#state(name);
      checkMetageneration(preconditions, state.record.metageneration);
      if (state.objects.size > 0 || state.pending > 0) {
        throw conflict('The bucket you tried to delete is not empty.');
      }
      this.#buckets.delete(name);
      const dir = this.#bucketDir(name);
      await rm(join(dir, 'bucket.json'), { force: true });
      await rm(dir, { recursive: true, force: true });
    });
  }

  // ---- objects ----

  /** The live object, or undefined; throws 404 for a missing bucket. */
  current(bucket: string, name: string): ObjectRecord | undefined {
    return this.#state(bucket).objects.get(name);
  }

  /** The live object (of `generation`, if given) after a read-mode precondition check. */
  get(
    bucket: string,
    name: string,
    generation: string | undefined,
    preconditions: Preconditions,
  ): ObjectRecord {
    const record = this.current(bucket, name);
    if (!record || (generation !== undefined && String(record.generation) !== generation)) {
      throw objectNotFound(bucket, name);
    }
    checkPreconditions(preconditions, record, 'read');
    return record;
  }

  /**
   * Opens the live object's bytes. The handle stays valid if the object is replaced or
   * deleted while the caller reads it.
   */
  async openObject(
    bucket: string,
    name: string,
    generation: string | undefined,
    preconditions: Preconditions,
  ): Promise<{ record: ObjectRecord; handle: FileHandle }> {
    return this.#locks.run(`${bucket}/${name}`, async () => {
      const record = this.get(bucket, name, generation, preconditions);
      return { record, handle: await open(this.dataPath(record), 'r') };
    });
  }

  /** Makes `request.file` the new live generation, if the preconditions hold. */
  async commit(request: CommitRequest): Promise<ObjectRecord> {
    let state: BucketState;
    try {
      state = this.#state(request.bucket);
    } catch (error) {
      await rm(request.file, { force: true });
      throw error;
    }
    state.pending++;
    try {
      return await this.#locks.run(`${request.bucket}/${request.name}`, async () => {
        const previous = state.objects.get(request.name);
        checkPreconditions(request.preconditions, previous, 'write');
        if (this.#buckets.get(request.bucket) !== state) throw bucketNotFound();
        const now = new Date().toISOString();
        const record: ObjectRecord = {
          ...request.fields,
          bucket: request.bucket,
          name: request.name,
          generation: this.#nextGeneration(),
          metageneration: 1,
          size: request.size,
          crc32c: request.crc32c,
          ...(request.md5Hash !== undefined ? { md5Hash: request.md5Hash } : {}),
          ...(request.componentCount !== undefined ? { componentCount: request.componentCount } : {}),
          timeCreated: now,
          updated: now,
        };
        await rename(request.file, this.dataPath(record));
        try {
          await writeJsonAtomic(this.#metaPath(request.bucket, request.name), record);
        } catch (error) {
          await rm(this.dataPath(record), { force: true });
          throw error;
        }
        state.objects.set(request.name, record);
        if (!previous) state.sorted.splice(lowerBound(state.sorted, request.name), 0, request.name);
        else await rm(this.dataPath(previous), { force: true });
        return record;
      });
    } catch (error) {
      await rm(request.file, { force: true });
      throw error;
    } finally {
      state.pending--;
    }
  }

  /** Changes the metadata of the live object; bumps metageneration. */
  async update(
    bucket: string,
    name: string,
    generation: string | undefined,
    preconditions: Preconditions,
    change: (record: ObjectRecord) => ObjectFields,
  ): Promise<ObjectRecord> {
    const state = this.#state(bucket);
    return this.#locks.run(`${bucket}/${name}`, async () => {
      const current = state.objects.get(name);
      if (!current || (generation !== undefined && String(current.generation) !== generation)) {
        throw objectNotFound(bucket, name);
      }
      checkPreconditions(preconditions, current, 'write');
      const fields = change(current);
      const record: ObjectRecord = {
        ...fields,
        bucket,
        name,
        generation: current.generation,
        metageneration: current.metageneration + 1,
        size: current.size,
        crc32c: current.crc32c,
        ...(current.md5Hash !== undefined ? { md5Hash: current.md5Hash } : {}),
        ...(current.componentCount !== undefined ? { componentCount: current.componentCount } : {}),
        timeCreated: current.timeCreated,
        updated: new Date().toISOString(),
      };
      await writeJsonAtomic(this.#metaPath(bucket, name), record);
      state.objects.set(name, record);
      return record;
    });
  }

  async delete(
    bucket: string,
    name: string,
    generation: string | undefined,
    preconditions: Preconditions,
  ): Promise<void> {
    const state = this.#state(bucket);
    await this.#locks.run(`${bucket}/${name}`, async () => {
      const current = state.objects.get(name);
      if (!current || (generation !== undefined && String(current.generation) !== generation)) {
        throw objectNotFound(bucket, name);
      }
      checkPreconditions(preconditions, current, 'write');
      try {
        await rm(this.#metaPath(bucket, name));
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      state.objects.delete(name);
      const at = lowerBound(state.sorted, name);
      if (state.sorted[at] === name) state.sorted.splice(at, 1);
      await rm(this.dataPath(current), { force: true }).catch((error: unknown) =>
        this.#log({ severity: 'WARNING', message: 'could not remove object data', error: String(error) }),
      );
    });
  }

  list(bucket: string, options: ListOptions): ListResult {
    const state = this.#state(bucket);
    const page = listNames(state.sorted, options);
    return {
      records: page.names.map((name) => state.objects.get(name)!),
      prefixes: page.prefixes,
      ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
    };
  }
}

function checkMetageneration(preconditions: Preconditions, metageneration: number): void {
  const { ifMetagenerationMatch, ifMetagenerationNotMatch } = preconditions;
  if (ifMetagenerationMatch !== undefined && BigInt(ifMetagenerationMatch) !== BigInt(metageneration)) {
    throw conditionNotMet();
  }
  if (ifMetagenerationNotMatch !== undefined && BigInt(ifMetagenerationNotMatch) === BigInt(metageneration)) {
    throw conditionNotMet();
  }
}
