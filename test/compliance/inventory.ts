// The data inventory (infra/data-inventory.json) as code: its entries, the pattern each path
// declares, and the classification of what is actually stored against it. The tests that keep the
// inventory true (test/unit/data-inventory.test.ts, test/integration/data-inventory.test.ts) and
// the record of processing (./record-of-processing.ts) all read it through here.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const retentionSchema = z.strictObject({
  /** A setting of the hospital's retention policy (shared/retention/policy.ts). */
  setting: z.string().optional(),
  /** A second setting that shortens the first (acknowledged records). */
  also: z.string().optional(),
  /** A constant of the code, by name (see RETENTION_CONSTANTS in ./record-of-processing.ts). */
  constant: z.string().optional(),
  /** A Firestore TTL field: firestore.indexes.json must declare it. */
  ttl: z.string().optional(),
  words: z.string().optional(),
});

const entryFields = {
  id: z.string().regex(/^[a-zA-Z]+(\.[a-zA-Z]+)?$/),
  path: z.string().min(1),
  holds: z.string().min(1),
  personalData: z.string().min(1),
  writers: z.array(z.string().min(1)).min(1),
  retention: retentionSchema,
  legalBasis: z.string().min(1),
  /** "removed", or "kept: <why>". */
  afterErasure: z.string().regex(/^(removed|kept: .+)$/),
};

const inventorySchema = z.object({
  firestore: z.array(z.strictObject(entryFields)),
  storage: z.array(z.strictObject({ ...entryFields, bucket: z.string().min(1) })),
});

export type Inventory = z.output<typeof inventorySchema>;
export type FirestoreEntry = Inventory['firestore'][number];
export type StorageEntry = Inventory['storage'][number];
export type InventoryEntry = FirestoreEntry | StorageEntry;

export const INVENTORY_FILE = fileURLToPath(new URL('../../infra/data-inventory.json', import.meta.url));

export function loadInventory(text = readFileSync(INVENTORY_FILE, 'utf8')): Inventory {
  return inventorySchema.parse(JSON.parse(text));
}

/** `{name}` matches one path segment, `{name...}` the rest of the path (one or more segments). */
export function pathPattern(path: string): RegExp {
  const source = path
    .split(/(\{[a-zA-Z]+(?:\.\.\.)?\})/)
    .map((part) => {
      if (/^\{[a-zA-Z]+\.\.\.\}$/.test(part)) return '.+';
      if (/^\{[a-zA-Z]+\}$/.test(part)) return '[^/]+';
      return part.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
    })
    .join('');
  return new RegExp(`^${source}$`);
}

/** The collection ids a Firestore entry's path names: "purgeJobs/{id}/ledger/{e}" → purgeJobs, ledger. */
export function collectionIds(entry: FirestoreEntry): string[] {
  return entry.path.split('/').filter((_, index) => index % 2 === 0);
}

export interface Classified<E> {
  /** Each stored path with the entry that declares it. */
  readonly declared: { path: string; entry: E }[];
  /** Stored paths no entry declares: each one fails the inventory test. */
  readonly undeclared: string[];
}

function classify<E extends { path: string }>(
  paths: readonly string[],
  entries: readonly E[],
): Classified<E> {
  const patterns = entries.map((entry) => ({ entry, pattern: pathPattern(entry.path) }));
  const declared: { path: string; entry: E }[] = [];
  const undeclared: string[] = [];
  for (const path of paths) {
    const match = patterns.find(({ pattern }) => pattern.test(path));
    if (match) declared.push({ path, entry: match.entry });
    else undeclared.push(path);
  }
  return { declared, undeclared };
}

/** Firestore document paths ("records/abc", "purgeJobs/j/ledger/e") against the inventory. */
export function classifyDocuments(
  inventory: Inventory,
  paths: readonly string[],
): Classified<FirestoreEntry> {
  return classify(paths, inventory.firestore);
}

/** Object names in the bucket of role `bucket` (the catalog's name: records, outbox …). */
export function classifyObjects(
  inventory: Inventory,
  bucket: string,
  names: readonly string[],
): Classified<StorageEntry> {
  return classify(
    names,
    inventory.storage.filter((entry) => entry.bucket === bucket),
  );
}
