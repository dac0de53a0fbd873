// A ChunkSpool (shared/core/protocol/upload.ts) on a temporary file: the connector seals a record
// into it (ciphertext only, never plaintext) and then streams the container from it, so memory
// stays about one chunk whatever the file size. Created with mode 0600 in the connector's own
// work directory and removed by dispose().
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkSpool } from '../../shared/core/protocol/index.ts';

export interface FileSpool extends ChunkSpool {
  /** Flushes and closes the file for writing; call before read(). */
  finish(): Promise<void>;
  dispose(): Promise<void>;
}

const READ_BYTES = 4 * 1024 * 1024;

export async function createFileSpool(workDir: string): Promise<FileSpool> {
  const dir = await mkdtemp(join(workDir, 'spool-'));
  const path = join(dir, 'chunks.bin');
  let handle: FileHandle | undefined = await open(path, 'w', 0o600);
  const finish = async () => {
    await handle?.close();
    handle = undefined;
  };
  return {
    async write(bytes) {
      if (!handle) throw new Error('the spool is finished');
      await handle.write(bytes);
    },
    finish,
    async *read() {
      await finish();
      for await (const chunk of createReadStream(path, { highWaterMark: READ_BYTES })) {
        yield new Uint8Array(chunk as Buffer);
      }
    },
    async dispose() {
      await handle?.close().catch(() => undefined);
      handle = undefined;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
