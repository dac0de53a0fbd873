// The device SDK on Node: a DeviceStore in owner-only files and a RecordSink that writes each
// record to a folder. Kept out of index.ts, so a browser or React Native bundle never reaches
// node:fs (test/integration/device-sdk-browser.test.ts builds one and checks).
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { DeviceStore } from './store.ts';
import type { RecordSink } from './sync.ts';

/**
 * Entries as `<dir>/<name>.json`, written atomically (temp file and rename) and owner-only: the
 * reference device's stand-in for a phone's keystore.
 */
export class FileDeviceStore implements DeviceStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  /** The file an entry lives in. */
  pathOf(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  async get(name: string): Promise<string | undefined> {
    return readFile(this.pathOf(name), 'utf8').catch(() => undefined);
  }

  async set(name: string, value: string): Promise<void> {
    const path = this.pathOf(name);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const temp = `${path}.${process.pid}.tmp`;
    await writeFile(temp, value.endsWith('\n') ? value : `${value}\n`, { mode: 0o600 });
    await rename(temp, path);
  }

  async delete(name: string): Promise<void> {
    await rm(this.pathOf(name), { force: true });
  }

  async list(folder: string): Promise<string[]> {
    const names = await readdir(join(this.dir, folder)).catch(() => []);
    return names.filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -'.json'.length));
  }
}

/** A file name safe to create in the output folder: no directories, nothing odd, no overwrite. */
export async function safeFileName(dir: string, proposed: string): Promise<string> {
  const cleaned =
    basename(proposed)
      .replace(/[\p{Cc}\p{Cf}/\\:*?"<>|]/gu, '_')
      .replace(/^\.+/, '_')
      .trim()
      .slice(0, 200) || 'record';
  const dot = cleaned.lastIndexOf('.');
  const [stem, extension] = dot > 0 ? [cleaned.slice(0, dot), cleaned.slice(dot)] : [cleaned, ''];
  for (let n = 0; ; n++) {
    const name = n === 0 ? cleaned : `${stem} (${n})${extension}`;
    const taken = await stat(join(dir, name)).then(
      () => true,
      () => false,
    );
    if (!taken) return name;
  }
}

/** ArrayBuffer memory a sync may leave uncollected (see keepGarbageUnderBudget). */
const GARBAGE_BUDGET_BYTES = 16 * 1024 * 1024;

/**
 * Each chunk opened leaves about three megabytes of ArrayBuffers behind (network pieces, the
 * frame, the plaintext), and V8 collects them on its own only once tens of megabytes have piled
 * up outside its heap: the device's peak RSS on a 1 GiB record grew by 40-50 MiB that way. So
 * after each write the sink checks what ArrayBuffers hold, and over budget runs a minor
 * collection, then a full one only if the minor one did not bring it under (a full one costs
 * about 10 ms, a minor one 0.1 ms). Measured side by side on 1 GiB: peak 121 MiB instead of
 * 154 (medians of 3), and the sync takes 1.36 times as long (docs/PERFORMANCE.md). It needs the
 * process to expose gc (cb-device runs with --expose-gc); without it nothing changes.
 */
function keepGarbageUnderBudget(): void {
  const gc = (globalThis as { gc?: (options?: { type: 'minor' | 'major' }) => void }).gc;
  if (gc === undefined || process.memoryUsage().arrayBuffers < GARBAGE_BUDGET_BYTES) return;
  gc({ type: 'minor' });
  if (process.memoryUsage().arrayBuffers >= GARBAGE_BUDGET_BYTES) gc({ type: 'major' });
}

/**
 * Writes each record to `outDir` under its own (cleaned, never overwriting) file name, with its
 * signed metadata beside it as `<name>.json`. The plaintext goes to an owner-only temporary
 * file first and gets its name only once the whole record checked out.
 */
export function fileRecordSink(outDir: string): RecordSink {
  return {
    async open(recordId) {
      await mkdir(outDir, { recursive: true, mode: 0o700 });
      const temp = join(outDir, `.${recordId}.partial`);
      const out = createWriteStream(temp, { mode: 0o600 });
      let closed = false;
      const close = async () => {
        if (closed) return;
        closed = true;
        out.end();
        await once(out, 'close');
      };
      return {
        async write(piece) {
          if (!out.write(piece)) await once(out, 'drain');
          keepGarbageUnderBudget();
        },
        async commit(header) {
          await close();
          const name = await safeFileName(outDir, header.filename);
          await rename(temp, join(outDir, name));
          const { filename: _filename, size: _size, ...about } = header;
          await writeFile(
            join(outDir, `${name}.json`),
            `${JSON.stringify({ recordId, ...about }, null, 2)}\n`,
            {
              mode: 0o600,
            },
          );
          return name;
        },
        async abort() {
          await close().catch(() => undefined);
          await rm(temp, { force: true });
        },
      };
    },
  };
}
