// Where a device keeps its enrolments: an interface the app implements over the platform's
// secure storage (iOS Keychain, Android Keystore-wrapped preferences, IndexedDB with a
// non-extractable wrapping key), because only the app knows which it has. Entries are small
// JSON texts under names like `enrolments/<hospitalId>`; one holds the device's private key, so
// an implementation must keep them where other apps and backups cannot read them.
import type { z } from 'zod';
export interface DeviceStore {
  get(name: string): Promise<string | undefined>;
  set(name: string, value: string): Promise<void>;
  delete(name: string): Promise<void>;
  /** The names directly under `folder` (`enrolments`), without the folder, in any order. */
  list(folder: string): Promise<string[]>;
}

/** Keeps everything in memory: for tests, and for an app that pairs for one session only. */
export class MemoryDeviceStore implements DeviceStore {
  readonly #entries = new Map<string, string>();

  async get(name: string): Promise<string | undefined> {
    return this.#entries.get(name);
  }

  async set(name: string, value: string): Promise<void> {
    this.#entries.set(name, value);
  }

  async delete(name: string): Promise<void> {
    this.#entries.delete(name);
  }

  async list(folder: string): Promise<string[]> {
    const prefix = `${folder}/`;
    return [...this.#entries.keys()]
      .filter((name) => name.startsWith(prefix) && !name.slice(prefix.length).includes('/'))
      .map((name) => name.slice(prefix.length));
  }
}

/** A stored entry's JSON read through its schema; undefined if it is not JSON or not that shape. */
export function parseStoredJson<S extends z.ZodType>(text: string, schema: S): z.output<S> | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}
