// Key rings, keys, versions and their key material, kept in memory and written to
// <dataDir>/state.json after every change (atomically: temp file, then rename), so a
// restart on the same directory keeps every key. Local key material is stored in the
// clear with mode 0600: this is a development emulator, never a place for real secrets.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { isAlgorithm, PURPOSES, type Algorithm, type Purpose } from './crypto/algorithms.ts';

export const VERSION_STATES = ['ENABLED', 'DISABLED', 'DESTROY_SCHEDULED', 'DESTROYED'] as const;
export type VersionState = (typeof VERSION_STATES)[number];
export const PROTECTION_LEVELS = ['SOFTWARE', 'HSM'] as const;
export type ProtectionLevel = (typeof PROTECTION_LEVELS)[number];

const algorithmSchema = z.string().refine(isAlgorithm) as unknown as z.ZodType<Algorithm>;

const versionSchema = z.object({
  id: z.number().int().positive(),
  state: z.enum(VERSION_STATES),
  algorithm: algorithmSchema,
  protectionLevel: z.enum(PROTECTION_LEVELS),
  createTime: z.number(),
  destroyTime: z.number().nullable(),
  destroyEventTime: z.number().nullable(),
  /** base64: the AES or HMAC key, or the EC private key as PKCS#8 DER; null once destroyed. */
  material: z.string().nullable(),
});

const cryptoKeySchema = z.object({
  name: z.string(),
  purpose: z.enum(PURPOSES),
  algorithm: algorithmSchema,
  protectionLevel: z.enum(PROTECTION_LEVELS),
  createTime: z.number(),
  labels: z.record(z.string(), z.string()),
  primaryId: z.number().int().positive().nullable(),
  destroyScheduledSeconds: z.number().nonnegative(),
  rotationPeriodSeconds: z.number().nullable(),
  nextRotationTime: z.number().nullable(),
  versions: z.array(versionSchema),
});

const keyRingSchema = z.object({ name: z.string(), createTime: z.number() });

const stateSchema = z.object({
  format: z.literal(1),
  keyRings: z.array(keyRingSchema),
  cryptoKeys: z.array(cryptoKeySchema),
});

export type KeyRingRecord = z.infer<typeof keyRingSchema>;
export type CryptoKeyRecord = z.infer<typeof cryptoKeySchema> & { purpose: Purpose };
export type VersionRecord = z.infer<typeof versionSchema>;

export const STATE_FILE = 'state.json';

export class KmsStore {
  readonly #file: string;
  readonly #keyRings = new Map<string, KeyRingRecord>();
  readonly #cryptoKeys = new Map<string, CryptoKeyRecord>();
  readonly #onSaveError: (error: unknown) => void;
  #writing: Promise<void> = Promise.resolve();

  private constructor(file: string, onSaveError: (error: unknown) => void) {
    this.#file = file;
    this.#onSaveError = onSaveError;
  }

  static async open(dataDir: string, onSaveError: (error: unknown) => void): Promise<KmsStore> {
    await mkdir(dataDir, { recursive: true });
    const store = new KmsStore(join(dataDir, STATE_FILE), onSaveError);
    let text: string | undefined;
    try {
      text = await readFile(store.#file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (text !== undefined) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (error) {
        throw new Error(`The KMS emulator state ${store.#file} is not JSON: ${(error as Error).message}`, {
          cause: error,
        });
      }
      const parsed = stateSchema.safeParse(json);
      if (!parsed.success) {
        throw new Error(
          `The KMS emulator state ${store.#file} is unreadable:\n${z.prettifyError(parsed.error)}`,
        );
      }
      for (const ring of parsed.data.keyRings) store.#keyRings.set(ring.name, ring);
      for (const key of parsed.data.cryptoKeys) store.#cryptoKeys.set(key.name, key);
    }
    return store;
  }

  keyRing(name: string): KeyRingRecord | undefined {
    return this.#keyRings.get(name);
  }

  keyRings(location: string): KeyRingRecord[] {
    return sortByName(
      [...this.#keyRings.values()].filter((ring) => ring.name.startsWith(`${location}/keyRings/`)),
    );
  }

  addKeyRing(ring: KeyRingRecord): void {
    this.#keyRings.set(ring.name, ring);
  }

  cryptoKey(name: string): CryptoKeyRecord | undefined {
    const key = this.#cryptoKeys.get(name);
    if (key) this.#settle(key);
    return key;
  }

  cryptoKeys(keyRing: string): CryptoKeyRecord[] {
    const keys = [...this.#cryptoKeys.values()].filter((key) =>
      key.name.startsWith(`${keyRing}/cryptoKeys/`),
    );
    for (const key of keys) this.#settle(key);
    return sortByName(keys);
  }

  addCryptoKey(key: CryptoKeyRecord): void {
    this.#cryptoKeys.set(key.name, key);
  }

  /** Persists the current state; resolves once it is on disk. Writes never overlap. */
  save(): Promise<void> {
    const snapshot = `${JSON.stringify({
      format: 1,
      keyRings: [...this.#keyRings.values()],
      cryptoKeys: [...this.#cryptoKeys.values()],
    })}\n`;
    const write = this.#writing.then(async () => {
      const temporary = `${this.#file}.tmp`;
      await writeFile(temporary, snapshot, { mode: 0o600 });
      await rename(temporary, this.#file);
    });
    this.#writing = write.catch(this.#onSaveError);
    return write;
  }

  /** Waits for pending writes (close()). */
  async flush(): Promise<void> {
    await this.#writing;
  }

  /** A version scheduled for destruction is destroyed, material and all, once its time comes. */
  #settle(key: CryptoKeyRecord): void {
    const now = Date.now();
    let changed = false;
    for (const version of key.versions) {
      if (
        version.state === 'DESTROY_SCHEDULED' &&
        version.destroyTime !== null &&
        version.destroyTime <= now
      ) {
        version.state = 'DESTROYED';
        version.destroyEventTime = version.destroyTime;
        version.material = null;
        changed = true;
      }
    }
    if (changed) void this.save().catch(() => {});
  }
}

function sortByName<T extends { name: string }>(records: T[]): T[] {
  return records.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
