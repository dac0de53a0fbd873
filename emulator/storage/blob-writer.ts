// Streams object bytes to a file while computing MD5 and CRC32C, so no object is ever
// held in memory. Fresh uploads go to a temporary file that the store renames into
// place on finalize; resumable sessions append to their own part file across requests.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Crc32c } from '../../shared/core/checksums/crc32c.ts';
import { uploadTooLarge } from './errors.ts';

export interface Digests {
  size: number;
  crc32c: string;
  md5Hash: string;
}

/** Running checksums over a byte stream. */
export class HashState {
  size = 0;
  readonly #md5: Hash;
  readonly #crc: Crc32c;

  constructor(md5: Hash = createHash('md5'), crc: Crc32c = new Crc32c(), size = 0) {
    this.#md5 = md5;
    this.#crc = crc;
    this.size = size;
  }

  update(chunk: Uint8Array): void {
    this.#md5.update(chunk);
    this.#crc.update(chunk);
    this.size += chunk.byteLength;
  }

  /** The digests so far; the state stays usable. */
  digests(): Digests {
    return { size: this.size, crc32c: this.#crc.base64(), md5Hash: this.#md5.copy().digest('base64') };
  }

  /** Re-reads a file to rebuild the state (a resumable session after a restart). */
  static async ofFile(path: string): Promise<HashState> {
    const state = new HashState();
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
      state.update(chunk as Buffer);
    }
    return state;
  }
}

/** Writes in flight at once; hashing the next chunk overlaps the disk writes. */
const MAX_PENDING_WRITES = 4;

export class BlobWriter {
  readonly path: string;
  readonly hashes: HashState;
  readonly #limit: number;
  #fh: FileHandle | undefined;
  /** Where the next chunk goes; writes are positional so several may be in flight. */
  #position: number;
  readonly #pending: Promise<void>[] = [];
  #failure: unknown;

  private constructor(path: string, fh: FileHandle, limit: number, hashes: HashState) {
    this.path = path;
    this.#fh = fh;
    this.#limit = limit;
    this.hashes = hashes;
    this.#position = hashes.size;
  }

  /** A new temporary file in `dir`. */
  static async create(dir: string, limit: number): Promise<BlobWriter> {
    const path = join(dir, `${Date.now()}-${randomBytes(8).toString('hex')}.tmp`);
    return new BlobWriter(path, await open(path, 'wx'), limit, new HashState());
  }

  /** Continues `path` after its first `hashes.size` bytes, which `hashes` summarises. */
  static async append(path: string, limit: number, hashes: HashState): Promise<BlobWriter> {
    return new BlobWriter(path, await open(path, 'r+'), limit, hashes);
  }

  get size(): number {
    return this.hashes.size;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    if (chunk.byteLength === 0) return;
    if (this.hashes.size + chunk.byteLength > this.#limit) throw uploadTooLarge(this.#limit);
    const fh = this.#fh;
    if (!fh) throw new Error('BlobWriter is closed');
    this.hashes.update(chunk);
    const position = this.#position;
    this.#position += chunk.byteLength;
    const write = writeFully(fh, chunk, position).catch((error: unknown) => {
      this.#failure ??= error;
    });
    this.#pending.push(write);
    if (this.#pending.length >= MAX_PENDING_WRITES) await this.#pending.shift();
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Waits for the writes in flight; throws the first write error. */
  async flush(): Promise<void> {
    await Promise.all(this.#pending.splice(0));
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Flushes, closes the file and returns its digests. */
  async finish(): Promise<Digests> {
    await this.close();
    return this.hashes.digests();
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      const fh = this.#fh;
      this.#fh = undefined;
      await fh?.close();
    }
  }

  /** Closes and deletes the file. */
  async abort(): Promise<void> {
    await this.close().catch(() => {});
    await rm(this.path, { force: true });
  }
}

async function writeFully(fh: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, offset, chunk.byteLength - offset, position + offset);
    offset += bytesWritten;
  }
}
