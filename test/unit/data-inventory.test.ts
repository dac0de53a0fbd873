// The data inventory (infra/data-inventory.json) must name every place the code stores data:
// every collection name the adapters use, every collection firestore.indexes.json indexes or
// expires, every bucket of the catalog, and every retention setting or constant it cites must
// exist. What the running product actually stores is checked on the local stack by
// test/integration/data-inventory.test.ts, with the classifier tested here.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUDIT_COLLECTIONS, WITNESSED_COLLECTION } from '../../shared/adapters/firestore-audit.ts';
import { PAIRING_COLLECTIONS } from '../../shared/adapters/firestore-pairing.ts';
import { PURGE_COLLECTIONS } from '../../shared/adapters/firestore-purge.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { RETENTION_POLICIES_COLLECTION } from '../../shared/adapters/firestore-retention.ts';
import { FUNCTION_KEYS_COLLECTION } from '../../shared/adapters/function-keys.ts';
import { RETENTION_BOUNDS } from '../../shared/retention/policy.ts';
import {
  classifyDocuments,
  classifyObjects,
  collectionIds,
  loadInventory,
  pathPattern,
} from '../compliance/inventory.ts';
import { RETENTION_CONSTANTS } from '../compliance/record-of-processing.ts';

const inventory = loadInventory();
const declaredCollections = new Set(inventory.firestore.flatMap(collectionIds));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe('infra/data-inventory.json', () => {
  it('declares every collection the adapters name, and the code names collections only through them', () => {
    const named = [
      ...Object.values(AUDIT_COLLECTIONS),
      WITNESSED_COLLECTION,
      ...Object.values(PAIRING_COLLECTIONS),
      ...Object.values(PURGE_COLLECTIONS),
      RECORDS_COLLECTION,
      RETENTION_POLICIES_COLLECTION,
      FUNCTION_KEYS_COLLECTION,
    ];
    for (const name of named) expect(declaredCollections, name).toContain(name);
    // A collection named by a literal would escape the list above.
    for (const file of [...sourceFiles('shared'), ...sourceFiles('functions'), ...sourceFiles('clients')]) {
      const text = readFileSync(file, 'utf8');
      expect(text.match(/\.(collection|collectionGroup)\(\s*['"`]/g), file).toBeNull();
    }
  });

  it('declares every collection firestore.indexes.json indexes, and exactly the TTL fields it expires', () => {
    const indexes = JSON.parse(readFileSync('firestore.indexes.json', 'utf8')) as {
      indexes: { collectionGroup: string }[];
      fieldOverrides: { collectionGroup: string; fieldPath: string; ttl?: boolean }[];
    };
    for (const { collectionGroup } of [...indexes.indexes, ...indexes.fieldOverrides]) {
      expect(declaredCollections, collectionGroup).toContain(collectionGroup);
    }
    const ttlInIndexes = indexes.fieldOverrides
      .filter((field) => field.ttl)
      .map((field) => `${field.collectionGroup}.${field.fieldPath}`)
      .sort();
    const ttlInInventory = inventory.firestore
      .filter((entry) => entry.retention.ttl)
      .map((entry) => `${collectionIds(entry).at(-1)}.${entry.retention.ttl}`)
      .sort();
    expect(ttlInInventory).toEqual(ttlInIndexes);
  });

  it("covers exactly the catalog's buckets, and cites only retention settings and constants that exist", () => {
    const catalog = JSON.parse(readFileSync('infra/catalog.json', 'utf8')) as {
      buckets: Record<string, unknown>;
      functions: Record<string, unknown>;
    };
    expect([...new Set(inventory.storage.map((entry) => entry.bucket))].sort()).toEqual(
      Object.keys(catalog.buckets).sort(),
    );
    for (const entry of [...inventory.firestore, ...inventory.storage]) {
      const { setting, also, constant, words } = entry.retention;
      for (const name of [setting, also].filter((name) => name !== undefined)) {
        expect(Object.keys(RETENTION_BOUNDS), `${entry.id}: ${name}`).toContain(name);
      }
      if (constant !== undefined) expect(Object.keys(RETENTION_CONSTANTS), entry.id).toContain(constant);
      expect(
        setting ?? constant ?? words ?? entry.retention.ttl,
        `${entry.id} states no retention`,
      ).toBeDefined();
      for (const writer of entry.writers.filter((name) => !/ /.test(name))) {
        expect(Object.keys(catalog.functions), `${entry.id}: writer ${writer}`).toContain(writer);
      }
    }
    expect(new Set([...inventory.firestore, ...inventory.storage].map((entry) => entry.id)).size).toBe(
      inventory.firestore.length + inventory.storage.length,
    );
  });

  it('classifies stored paths by their declared patterns, and reports a deliberately undeclared collection', () => {
    expect(
      pathPattern('purgeJobs/{jobId}/ledger/{entryId}').test('purgeJobs/recall-x/ledger/records-y'),
    ).toBe(true);
    expect(pathPattern('{logId}/tile/{tilePath...}').test('h1/tile/0/x001/002.p/5')).toBe(true);
    expect(pathPattern('records/{recordId}').test('records/a/b')).toBe(false);

    const documents = classifyDocuments(inventory, [
      'records/abc',
      'purgeJobs/recall-abc/ledger/records-1',
      'patientNotes/abc', // the collection nobody declared
      'records/abc/comments/1', // an undeclared subcollection of a declared one
    ]);
    expect(documents.undeclared).toEqual(['patientNotes/abc', 'records/abc/comments/1']);
    expect(documents.declared.map(({ entry }) => entry.id)).toEqual(['records', 'purgeJobs.ledger']);

    const objects = classifyObjects(inventory, 'outbox', [
      'hospitals/h-1/receipts/u.cbreceipt',
      'hospitals/h-1/exports/all.csv',
    ]);
    expect(objects.undeclared).toEqual(['hospitals/h-1/exports/all.csv']);
  });
});
