// Large files of random bytes, written and hashed as a stream so that a test or a bench of a
// 1 GiB record never holds it in memory.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';

const MIB = 1024 * 1024;

/** Writes `mib` MiB of random bytes to `path`; returns their SHA-256 in hex. */
export async function writeRandomFile(path: string, mib: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  for (let i = 0; i < mib; i++) {
    const piece = randomBytes(MIB);
    hash.update(piece);
    if (!out.write(piece)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve) => out.end(() => resolve()));
  return hash.digest('hex');
}

/** The SHA-256 of a file's bytes in hex, read as a stream. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
