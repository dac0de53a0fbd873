// Uploads the connector has sealed but not yet seen committed, kept in the connector's home so
// that a crash or a restart resumes them instead of sealing (and sending) the file again:
//   <home>/uploads/<uploadId>/chunks.bin   the sealed chunk section (ciphertext only), fsynced
//   <home>/uploads/<uploadId>/state.json   what the upload is and, once started, its session URI
//   <home>/uploads/<uploadId>/lock         the pid of the process sending it
// The state is written only after the chunks are on disk, so a state file always names a
// complete container. The session URI is a credential (whoever holds it can write to the
// session), so the folder is owner-only and the file 0600, like the hospital keys. The
// encryption is randomised, so the container cannot be made again byte for byte: the sealed
// bytes themselves are what survives.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { uploadIdSchema } from '../../shared/core/protocol/index.ts';
import { journalEntrySchema, type ConnectorHome } from './home.ts';
import type { UploadSource } from './resumable-upload.ts';

export const PENDING_UPLOAD_FORMAT = 'clinic-bridge/pending-upload/v1';
const READ_BYTES = 256 * 1024;

export const pendingUploadSchema = z.strictObject({
  format: z.literal(PENDING_UPLOAD_FORMAT),
  uploadId: uploadIdSchema,
  bucket: z.string().min(1),
  objectName: z.string().min(1),
  contentType: z.string().min(1),
  /** Container bytes: the header and signed manifest (`prefix`, base64), then chunks.bin. */
  size: z.int().positive(),
  prefix: z.string().min(1),
  /** base64 MD5 of the whole container, which Cloud Storage checks before it creates the object. */
  md5: z.string().regex(/^[A-Za-z0-9+/]{22}==$/),
  /** The file it was sealed from, as it was then: a send of the same file resumes this one. */
  source: z.strictObject({ file: z.string().min(1), size: z.int().min(0), mtimeMs: z.number() }),
  /** The devices it was sealed for. */
  recipients: z.array(z.string().min(1)).min(1),
  /** The journal line to write once the object exists. */
  entry: journalEntrySchema,
  /** Set once the session is started; until then there is nothing to resume on the server. */
  sessionUri: z.string().url().optional(),
});
export type PendingUpload = z.output<typeof pendingUploadSchema>;

export function uploadsDir(home: ConnectorHome): string {
  return join(home.dir, 'uploads');
}

export function pendingDir(home: ConnectorHome, uploadId: string): string {
  return join(uploadsDir(home), uploadId);
}

const chunksPath = (dir: string) => join(dir, 'chunks.bin');
const statePath = (dir: string) => join(dir, 'state.json');
const lockPath = (dir: string) => join(dir, 'lock');

/** A new, empty folder for one upload (owner-only). */
export async function createPendingDir(home: ConnectorHome, uploadId: string): Promise<string> {
  await mkdir(uploadsDir(home), { recursive: true, mode: 0o700 });
  const dir = pendingDir(home, uploadId);
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

/** Where sealUpload writes the chunk section: flushed to the disk before the state names it. */
export interface ChunkFile {
  write(bytes: Uint8Array): Promise<void>;
  /** Writes the pieces one after the other, in one system call where it can. */
  writev(pieces: readonly Uint8Array[]): Promise<void>;
  /** fsyncs and closes; the chunks are durable afterwards. */
  finish(): Promise<void>;
  read(): AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

export async function createChunkFile(dir: string): Promise<ChunkFile> {
  const path = chunksPath(dir);
  let handle: FileHandle | undefined = await open(path, 'wx', 0o600);
  return {
    async write(bytes) {
      if (!handle) throw new Error('the chunk file is finished');
      await handle.write(bytes);
    },
    async writev(pieces) {
      if (!handle) throw new Error('the chunk file is finished');
      await handle.writev(pieces as Uint8Array[]);
    },
    async finish() {
      if (!handle) return;
      await handle.sync();
      await handle.close();
      handle = undefined;
    },
    async *read() {
      for await (const piece of createReadStream(path, { highWaterMark: READ_BYTES })) yield piece as Buffer;
    },
    async close() {
      await handle?.close().catch(() => undefined);
      handle = undefined;
    },
  };
}

/** The base64 MD5 of the container: `prefix`, then the chunk file. */
export async function containerMd5(dir: string, prefix: Uint8Array): Promise<string> {
  const hash = createHash('md5').update(prefix);
  const buffer = Buffer.allocUnsafeSlow(READ_BYTES);
  const handle = await open(chunksPath(dir), 'r');
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, READ_BYTES, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest('base64');
}

/** Replaces the state atomically (a crash leaves the old state or the new, never half). */
export async function writePendingState(dir: string, state: PendingUpload): Promise<void> {
  const text = `${JSON.stringify(pendingUploadSchema.parse(state))}\n`;
  const temporary = `${statePath(dir)}.tmp`;
  const handle = await open(temporary, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, statePath(dir));
  // The rename itself must survive a power cut too.
  const folder = await open(dir, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

export async function readPendingState(dir: string): Promise<PendingUpload | undefined> {
  let text: string;
  try {
    text = await readFile(statePath(dir), 'utf8');
  } catch {
    return undefined;
  }
  let parsed;
  try {
    parsed = pendingUploadSchema.safeParse(JSON.parse(text));
  } catch {
    return undefined;
  }
  return parsed.success ? parsed.data : undefined;
}

/** Every upload with a complete state, oldest folder first; folders without one are skipped. */
export async function listPendingUploads(
  home: ConnectorHome,
): Promise<{ readonly dir: string; readonly state: PendingUpload }[]> {
  let names: string[];
  try {
    names = await readdir(uploadsDir(home));
  } catch {
    return [];
  }
  const found: { dir: string; state: PendingUpload; mtimeMs: number }[] = [];
  for (const name of names) {
    const dir = join(uploadsDir(home), name);
    const state = await readPendingState(dir);
    if (!state || state.uploadId !== name) continue;
    found.push({ dir, state, mtimeMs: (await stat(dir)).mtimeMs });
  }
  return found.sort((a, b) => a.mtimeMs - b.mtimeMs).map(({ dir, state }) => ({ dir, state }));
}

/**
 * Removes folders of seals that never finished (no state file: the connector died while
 * encrypting) and have not been written to for `idleMs`, so no live seal is touched. Nothing of
 * them reached the cloud. Returns how many it removed.
 */
export async function sweepAbandonedSeals(
  home: ConnectorHome,
  idleMs: number,
  now = Date.now(),
): Promise<number> {
  let names: string[];
  try {
    names = await readdir(uploadsDir(home));
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const dir = join(uploadsDir(home), name);
    if (await readPendingState(dir)) continue;
    const written = await stat(chunksPath(dir)).then(
      (info) => info.mtimeMs,
      () => undefined,
    );
    const touched = written ?? (await stat(dir)).mtimeMs;
    if (now - touched < idleMs) continue;
    await removePending(dir);
    removed++;
  }
  return removed;
}

export async function removePending(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * The container: the prefix from the state, then the chunk file, any byte range of it. Reads go
 * through one buffer that each piece reuses (the uploader is done with a piece before it asks
 * for the next), so a 1 GiB upload makes no garbage for the collector to fall behind on.
 */
export async function containerSource(dir: string, state: PendingUpload): Promise<UploadSource> {
  const prefix = Buffer.from(state.prefix, 'base64');
  const path = chunksPath(dir);
  const chunks = (await stat(path)).size;
  if (prefix.length + chunks !== state.size) {
    throw new Error(`the sealed upload ${state.uploadId} is incomplete on disk`);
  }
  const buffer = Buffer.allocUnsafeSlow(READ_BYTES);
  return {
    size: state.size,
    md5: state.md5,
    async *range(start, end) {
      if (start < prefix.length) yield prefix.subarray(start, Math.min(end, prefix.length));
      let position = Math.max(start, prefix.length) - prefix.length;
      const stop = end - prefix.length; // exclusive
      if (stop <= position) return;
      const handle = await open(path, 'r');
      try {
        while (position < stop) {
          const { bytesRead } = await handle.read(buffer, 0, Math.min(READ_BYTES, stop - position), position);
          if (bytesRead === 0)
            throw new Error(`the sealed upload ${state.uploadId} is shorter on disk than it was`);
          position += bytesRead;
          yield buffer.subarray(0, bytesRead);
        }
      } finally {
        await handle.close();
      }
    },
  };
}

/**
 * Takes the upload for this process (an exclusive lock file holding the pid), or returns
 * undefined while another live process holds it. A lock left by a process that died is taken
 * over: that is exactly the crash this folder exists for.
 */
export async function lockPending(dir: string): Promise<(() => Promise<void>) | undefined> {
  const path = lockPath(dir);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
    }
    const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) return undefined;
    await rm(path, { force: true });
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === 'EPERM';
  }
}
