// Looks for a plaintext canary everywhere the platform keeps bytes: every file under a
// directory (the stack's Storage objects, Firestore export, KMS state, FCM recorder) and any
// captured text (logs, push payloads). The canary is searched as UTF-8, UTF-16LE, hex, and
// base64/base64url at each of the three alignments, so an encoded copy is caught too.
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** The byte patterns a stored copy of `canary` could take. */
export function canaryPatterns(canary: string): Buffer[] {
  const utf8 = Buffer.from(canary, 'utf8');
  const patterns = [utf8, Buffer.from(canary, 'utf16le'), Buffer.from(utf8.toString('hex'), 'latin1')];
  for (let shift = 0; shift < 3; shift++) {
    // A run of base64 characters that does not depend on the bytes around the canary.
    const padded = Buffer.concat([Buffer.alloc(shift), utf8]);
    for (const alphabet of ['base64', 'base64url'] as const) {
      const text = padded.toString(alphabet).replace(/=+$/, '');
      const stable = text.slice(shift === 0 ? 0 : Math.ceil((shift * 4) / 3) + 1, text.length - 2);
      if (stable.length >= 8) patterns.push(Buffer.from(stable, 'latin1'));
    }
  }
  return patterns;
}

function contains(haystack: Buffer, patterns: readonly Buffer[]): boolean {
  return patterns.some((pattern) => haystack.includes(pattern));
}

async function* filesUnder(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* filesUnder(path);
    else if (entry.isFile()) yield path;
  }
}

/** Files under `dir` holding the canary in any encoding; read in overlapping windows. */
export async function filesContainingCanary(dir: string, canary: string): Promise<string[]> {
  const patterns = canaryPatterns(canary);
  const overlap = Math.max(...patterns.map((pattern) => pattern.length));
  const hits: string[] = [];
  for await (const path of filesUnder(dir)) {
    const handle = await open(path, 'r');
    try {
      const window = Buffer.alloc(1024 * 1024 + overlap);
      let carried = 0;
      for (;;) {
        const { bytesRead } = await handle.read(window, carried, window.length - carried);
        if (bytesRead === 0) break;
        const filled = carried + bytesRead;
        if (contains(window.subarray(0, filled), patterns)) {
          hits.push(path);
          break;
        }
        carried = Math.min(overlap, filled);
        window.copy(window, 0, filled - carried, filled);
      }
    } finally {
      await handle.close();
    }
  }
  return hits;
}

/** Whether captured text (log lines, push payloads) holds the canary in any encoding. */
export function textContainsCanary(text: string, canary: string): boolean {
  return contains(Buffer.from(text, 'utf8'), canaryPatterns(canary));
}
