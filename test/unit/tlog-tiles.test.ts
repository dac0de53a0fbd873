// c2sp.org/tlog-tiles: the path encoding and tile counts the spec spells out, and tiles built
// incrementally from the right edge agreeing with the tree computed directly.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeEntryBundle, encodeEntryBundle } from '../../shared/core/tlog/entries.ts';
import { leafHash } from '../../shared/core/tlog/hash.ts';
import {
  appendTiles,
  entriesPath,
  encodeTileIndex,
  newTilesBetween,
  parseTilePath,
  partialTilesForSize,
  type Tile,
  tileHashReader,
  tilePath,
  tilesForSize,
  tilesFromLeafHashes,
} from '../../shared/core/tlog/tiles.ts';
import {
  consistencyProof,
  inclusionProof,
  memoryHashReader,
  rootFromLeafHashes,
  treeHash,
} from '../../shared/core/tlog/tree.ts';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function leavesOf(n: number, salt = 0): Uint8Array[] {
  return Array.from({ length: n }, (_, i) =>
    leafHash(new Uint8Array([i & 0xff, (i >> 8) & 0xff, i >> 16, salt])),
  );
}

describe('tile paths', () => {
  it('encode <N> in x-prefixed 3-digit groups, as the spec example does', () => {
    expect(encodeTileIndex(1234067)).toBe('x001/x234/067');
    expect(encodeTileIndex(0)).toBe('000');
    expect(encodeTileIndex(999)).toBe('999');
    expect(encodeTileIndex(1000)).toBe('x001/000');
    expect(tilePath({ level: 0, index: 1234067, width: 256 })).toBe('tile/0/x001/x234/067');
    expect(tilePath({ level: 2, index: 5, width: 17 })).toBe('tile/2/005.p/17');
    expect(entriesPath(1234067, 3)).toBe('tile/entries/x001/x234/067.p/3');
    expect(() => tilePath({ level: 64, index: 0, width: 256 })).toThrow();
    expect(() => tilePath({ level: 0, index: 0, width: 0 })).toThrow();
  });

  it('parse back exactly one spelling of each tile', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 63 }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 1, max: 256 }),
        (level, index, width) => {
          expect(parseTilePath(tilePath({ level, index, width }))).toEqual({
            level,
            index,
            width,
            entries: false,
          });
          expect(parseTilePath(entriesPath(index, width))).toEqual({ level: 0, index, width, entries: true });
        },
      ),
      { numRuns: 200 },
    );
    for (const bad of [
      'tile/0/1',
      'tile/00/000',
      'tile/64/000',
      'tile/0/x000/001',
      'tile/0/001.p/256',
      'tile/0/001.p/0',
      'tile/0/001.p/012',
      'tile/0/001/',
      '/tile/0/001',
      'tile/0/x001',
      'tile/0/001 ',
    ]) {
      expect(() => parseTilePath(bad), bad).toThrow(/tlog-tiles path|out of range|leading zero/);
    }
  });
});

describe('tiles of a tree', () => {
  it('follow the spec examples for sizes 70,000 and 256', () => {
    const tiles = tilesForSize(70_000);
    expect(tiles.filter((t) => t.level === 0 && t.width === 256)).toHaveLength(273);
    expect(tiles.filter((t) => t.width < 256).map(tilePath)).toEqual([
      'tile/0/273.p/112',
      'tile/1/001.p/17',
      'tile/2/000.p/1',
    ]);
    expect(tiles.filter((t) => t.level === 1 && t.width === 256)).toHaveLength(1);
    expect(tilesForSize(256).map(tilePath)).toEqual(['tile/0/000', 'tile/1/000.p/1']);
    expect(tilesForSize(0)).toEqual([]);
  });

  it('are built incrementally with the same hashes as the direct tree', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 6 }), (batches) => {
        const total = batches.reduce((a, b) => a + b, 0);
        const leaves = leavesOf(total);
        const store = new Map<string, Uint8Array>();
        let size = 0;
        const checkpoints: number[] = [];
        for (const batch of batches) {
          const written = appendTiles(size, (c) => store.get(tilePath(c)), leaves.slice(size, size + batch));
          expect(written.map(tilePath)).toEqual(newTilesBetween(size, size + batch).map(tilePath));
          for (const tile of written) store.set(tilePath(tile), tile.data);
          size += batch;
          checkpoints.push(size);
        }
        for (const coord of tilesForSize(size)) expect(store.has(tilePath(coord))).toBe(true);
        const direct = memoryHashReader(leaves);
        const tiled = tileHashReader(size, (c) => store.get(tilePath(c)));
        expect(hex(treeHash(size, tiled))).toBe(hex(rootFromLeafHashes(leaves)));
        if (size > 0) {
          const index = (size * 7919) % size;
          expect(inclusionProof(index, size, tiled).map(hex)).toEqual(
            inclusionProof(index, size, direct).map(hex),
          );
          const old = checkpoints[0] as number;
          expect(consistencyProof(old, size, tiled).map(hex)).toEqual(
            consistencyProof(old, size, direct).map(hex),
          );
          // An earlier checkpoint's root is still readable: its partial tiles were written then.
          expect(
            hex(
              treeHash(
                old,
                tileHashReader(old, (c) => store.get(tilePath(c))),
              ),
            ),
          ).toBe(hex(rootFromLeafHashes(leaves.slice(0, old))));
        }
      }),
      { numRuns: 60 },
    );
  });

  it('read every complete subtree of a 70,000-leaf tree like the direct tree', () => {
    const leaves = leavesOf(70_000, 1);
    const tiles = new Map(tilesFromLeafHashes(leaves).map((t: Tile) => [tilePath(t), t.data]));
    expect([...tiles.keys()].sort()).toEqual(tilesForSize(70_000).map(tilePath).sort());
    const direct = memoryHashReader(leaves);
    const tiled = tileHashReader(70_000, (c) => tiles.get(tilePath(c)));
    for (const [level, index] of [
      [0, 0],
      [0, 69_999],
      [3, 8_749],
      [8, 272],
      [9, 135],
      [16, 0],
    ] as const) {
      expect(hex(tiled(level, index)), `${level}/${index}`).toBe(hex(direct(level, index)));
    }
    expect(() => tiled(16, 1)).toThrow(/no complete subtree/);
    expect(hex(treeHash(70_000, tiled))).toBe(hex(rootFromLeafHashes(leaves)));
  });

  it('refuse a missing or short edge tile instead of building a wrong tree', () => {
    const leaves = leavesOf(300);
    expect(partialTilesForSize(300).map(tilePath)).toEqual(['tile/0/001.p/44', 'tile/1/000.p/1']);
    expect(() => appendTiles(300, () => undefined, leavesOf(1))).toThrow(/missing or has the wrong length/);
    expect(() => appendTiles(300, () => new Uint8Array(32), leavesOf(1))).toThrow(/wrong length/);
    const tiles = new Map(tilesFromLeafHashes(leaves).map((t) => [tilePath(t), t.data]));
    const reader = tileHashReader(300, (c) => (c.width === 256 ? undefined : tiles.get(tilePath(c))));
    expect(() => reader(0, 0)).toThrow(/tile\/0\/000 is missing/);
  });
});

describe('entry bundles', () => {
  it('round-trip uint16-length-prefixed entries and reject malformed bundles', () => {
    const entries = [new Uint8Array(0), new Uint8Array([1, 2, 3]), new Uint8Array(0xffff).fill(9)];
    const bundle = encodeEntryBundle(entries);
    expect(bundle.subarray(0, 7)).toEqual(new Uint8Array([0, 0, 0, 3, 1, 2, 3]));
    expect(decodeEntryBundle(bundle, 3)).toEqual(entries);
    expect(() => decodeEntryBundle(bundle, 2)).toThrow(/expected 2 entries/);
    expect(() => decodeEntryBundle(bundle.subarray(0, bundle.length - 1), 3)).toThrow(/truncated/);
    expect(() => decodeEntryBundle(new Uint8Array([0]), 1)).toThrow(/truncated/);
    expect(() => encodeEntryBundle([new Uint8Array(0x10000)])).toThrow(/65535/);
  });
});
