// c2sp.org/tlog-tiles: how the Merkle tree is stored and served as immutable tiles.
//
// A tile at level L, index N holds up to 256 consecutive hashes of tree level 8L: hash i is
// MTH(D[(N*256 + i) * 256^L : (N*256 + i + 1) * 256^L]), i.e. the complete subtree of 256^L leaves.
// Full tiles hold 256 hashes; the rightmost tile of a level is partial (1..255 hashes, named with a
// `.p/<W>` suffix) and never feeds the level above. Every hash in any tile, full or partial, is
// therefore a COMPLETE subtree hash, which is exactly what the HashReader of tree.ts asks for.
import { HASH_SIZE } from './hash.ts';
import { TlogError } from './errors.ts';
import { type HashReader, rootFromLeafHashes } from './tree.ts';

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;
/** The spec bounds <L> to 0..63. */
export const MAX_TILE_LEVEL = 63;

/** A tile's coordinates. width is 256 for a full tile, 1..255 for a partial one. */
export interface TileCoord {
  readonly level: number;
  readonly index: number;
  readonly width: number;
}

/** A tile and its contents: `width` concatenated 32-byte hashes. */
export interface Tile extends TileCoord {
  readonly data: Uint8Array;
}

function checkCoord(coord: TileCoord): void {
  const { level, index, width } = coord;
  if (!Number.isSafeInteger(level) || level < 0 || level > MAX_TILE_LEVEL) {
    throw new TlogError('INVALID_ARGUMENT', 'tile level must be 0..63');
  }
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new TlogError('INVALID_ARGUMENT', 'tile index must be a non-negative safe integer');
  }
  if (!Number.isSafeInteger(width) || width < 1 || width > TILE_WIDTH) {
    throw new TlogError('INVALID_ARGUMENT', 'tile width must be 1..256');
  }
}

/** <N> as zero-padded 3-digit elements, all but the last prefixed with `x`: 1234067 → x001/x234/067. */
export function encodeTileIndex(index: number): string {
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new TlogError('INVALID_ARGUMENT', 'tile index must be a non-negative safe integer');
  }
  const groups: string[] = [];
  let rest = index;
  do {
    groups.unshift(String(rest % 1000).padStart(3, '0'));
    rest = Math.floor(rest / 1000);
  } while (rest > 0);
  return groups.map((group, i) => (i < groups.length - 1 ? `x${group}` : group)).join('/');
}

function widthSuffix(width: number): string {
  return width === TILE_WIDTH ? '' : `.p/${width}`;
}

/** `tile/<L>/<N>[.p/<W>]`, relative to the log's prefix. */
export function tilePath(coord: TileCoord): string {
  checkCoord(coord);
  return `tile/${coord.level}/${encodeTileIndex(coord.index)}${widthSuffix(coord.width)}`;
}

/** `tile/entries/<N>[.p/<W>]`: the entry bundle matching level-0 tile N. */
export function entriesPath(index: number, width: number): string {
  checkCoord({ level: 0, index, width });
  return `tile/entries/${encodeTileIndex(index)}${widthSuffix(width)}`;
}

const PATH_PATTERN = /^tile\/(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/;

/**
 * The inverse of tilePath/entriesPath. Strict: exactly one spelling is accepted for each tile
 * (no superfluous `x000/` groups, no leading zeroes in L or W, W below 256), so a cache or
 * storage key derived from a path can never alias another tile.
 */
export function parseTilePath(path: string): TileCoord & { readonly entries: boolean } {
  const match = PATH_PATTERN.exec(path);
  if (match === null) throw new TlogError('TILE_PATH_INVALID', 'not a tlog-tiles path');
  const [, levelText, indexText, widthText] = match as unknown as [
    string,
    string,
    string,
    string | undefined,
  ];
  const groups = indexText.split('/');
  if (groups.length > 1 && groups[0] === 'x000') {
    throw new TlogError('TILE_PATH_INVALID', 'tile index has a leading zero group');
  }
  const index = Number(groups.map((group) => group.replace('x', '')).join(''));
  const width = widthText === undefined ? TILE_WIDTH : Number(widthText);
  const entries = levelText === 'entries';
  const level = entries ? 0 : Number(levelText);
  if (
    !Number.isSafeInteger(index) ||
    level > MAX_TILE_LEVEL ||
    (widthText !== undefined && width >= TILE_WIDTH)
  ) {
    throw new TlogError('TILE_PATH_INVALID', 'tile level, index or width out of range');
  }
  return { level, index, width, entries };
}

function storedHashCount(size: number, level: number): number {
  // Number of complete-subtree hashes of tree level 8*level in a tree of `size` leaves.
  return Math.floor(size / TILE_WIDTH ** level);
}

/**
 * Every tile of a tree of `size` leaves: at each level, floor(s / 256^(L+1)) full tiles and, when
 * floor(s / 256^L) mod 256 > 0, one partial tile of that width. (Size 70,000 gives 273 full and a
 * 112-wide tile at level 0, one full and a 17-wide at level 1, a 1-wide at level 2.)
 */
export function tilesForSize(size: number): TileCoord[] {
  return newTilesBetween(0, size);
}

/**
 * The tiles a log must write when it grows from oldSize to newSize: the full tiles completed and
 * the new partial tiles. Tiles that exist at oldSize never change (they are immutable), and
 * partial tiles of oldSize that are superseded are not listed.
 */
export function newTilesBetween(oldSize: number, newSize: number): TileCoord[] {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 0 || oldSize > newSize) {
    throw new TlogError('INVALID_ARGUMENT', 'sizes must satisfy 0 <= oldSize <= newSize');
  }
  const tiles: TileCoord[] = [];
  for (let level = 0; storedHashCount(newSize, level) > 0; level++) {
    const oldCount = storedHashCount(oldSize, level);
    const newCount = storedHashCount(newSize, level);
    if (newCount === oldCount) continue;
    const firstFull = Math.floor(oldCount / TILE_WIDTH);
    const endFull = Math.floor(newCount / TILE_WIDTH);
    for (let index = firstFull; index < endFull; index++) tiles.push({ level, index, width: TILE_WIDTH });
    const width = newCount % TILE_WIDTH;
    if (width > 0) tiles.push({ level, index: endFull, width });
  }
  return tiles;
}

/** The partial tiles of a tree of `size`: its right edge, all appendTiles needs to grow it. */
export function partialTilesForSize(size: number): TileCoord[] {
  return tilesForSize(size).filter((tile) => tile.width < TILE_WIDTH);
}

/** The tile that holds stored hash `index` of tile level `level` in a tree of `size` leaves. */
export function tileForStoredHash(level: number, index: number, size: number): TileCoord {
  const count = storedHashCount(size, level);
  if (index >= count) throw new TlogError('INVALID_ARGUMENT', 'no such hash in a tree of this size');
  const tileIndex = Math.floor(index / TILE_WIDTH);
  const width = tileIndex < Math.floor(count / TILE_WIDTH) ? TILE_WIDTH : count % TILE_WIDTH;
  return { level, index: tileIndex, width };
}

function tileHashes(coord: TileCoord, data: Uint8Array | undefined): Uint8Array[] {
  if (data === undefined || data.length !== coord.width * HASH_SIZE) {
    throw new TlogError('TILE_INVALID', `tile ${tilePath(coord)} is missing or has the wrong length`);
  }
  const hashes: Uint8Array[] = [];
  for (let i = 0; i < coord.width; i++) hashes.push(data.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
  return hashes;
}

/**
 * A HashReader for a tree of `size` leaves backed by tiles. Tree level h lives in tile level
 * floor(h / 8); levels between tile levels are recomputed from the 2^(h mod 8) stored hashes
 * below them, which always sit in one tile. The tile names are those a checkpoint of `size`
 * commits to, so a reader can never mix in a partial tile of another size.
 */
export function tileHashReader(
  size: number,
  getTile: (coord: TileCoord) => Uint8Array | undefined,
): HashReader {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new TlogError('INVALID_ARGUMENT', 'size must be a non-negative safe integer');
  }
  return (level, index) => {
    const span = 2 ** level;
    if (!Number.isSafeInteger(index) || index < 0 || (index + 1) * span > size) {
      throw new TlogError('INVALID_ARGUMENT', `no complete subtree at level ${level} index ${index}`);
    }
    const tileLevel = Math.floor(level / TILE_HEIGHT);
    const count = 2 ** (level - tileLevel * TILE_HEIGHT);
    const first = index * count;
    const coord = tileForStoredHash(tileLevel, first, size);
    const hashes = tileHashes(coord, getTile(coord));
    const offset = first - coord.index * TILE_WIDTH;
    return rootFromLeafHashes(hashes.slice(offset, offset + count));
  };
}

function concatHashes(hashes: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(hashes.length * HASH_SIZE);
  hashes.forEach((hash, i) => out.set(hash, i * HASH_SIZE));
  return out;
}

/**
 * The tiles to write after appending `newLeafHashes` to a tree of `oldSize` leaves, given only
 * that tree's right edge (its partial tiles, see partialTilesForSize). Each level's partial tile is
 * topped up with the new hashes; every tile that fills up contributes its MTH to the level above.
 * The result lists exactly newTilesBetween(oldSize, oldSize + newLeafHashes.length), in order.
 */
export function appendTiles(
  oldSize: number,
  getEdgeTile: (coord: TileCoord) => Uint8Array | undefined,
  newLeafHashes: readonly Uint8Array[],
): Tile[] {
  if (!Number.isSafeInteger(oldSize) || oldSize < 0) {
    throw new TlogError('INVALID_ARGUMENT', 'oldSize must be a non-negative safe integer');
  }
  if (!newLeafHashes.every((hash) => hash.length === HASH_SIZE)) {
    throw new TlogError('INVALID_ARGUMENT', 'leaf hashes must be 32 bytes');
  }
  const out: Tile[] = [];
  let pending: readonly Uint8Array[] = newLeafHashes;
  for (let level = 0; pending.length > 0; level++) {
    if (level > MAX_TILE_LEVEL) throw new TlogError('INVALID_ARGUMENT', 'the tree is too large');
    const before = storedHashCount(oldSize, level);
    const edgeWidth = before % TILE_WIDTH;
    const firstTile = Math.floor(before / TILE_WIDTH);
    const buffer: Uint8Array[] = [];
    if (edgeWidth > 0) {
      const coord = { level, index: firstTile, width: edgeWidth };
      buffer.push(...tileHashes(coord, getEdgeTile(coord)));
    }
    buffer.push(...pending);
    const completed: Uint8Array[] = [];
    for (let offset = 0; offset < buffer.length; offset += TILE_WIDTH) {
      const hashes = buffer.slice(offset, offset + TILE_WIDTH);
      out.push({
        level,
        index: firstTile + offset / TILE_WIDTH,
        width: hashes.length,
        data: concatHashes(hashes),
      });
      if (hashes.length === TILE_WIDTH) completed.push(rootFromLeafHashes(hashes));
    }
    pending = completed;
  }
  return out;
}

/** All tiles of a tree built from scratch (tests, and rebuilding a log's tiles from its leaves). */
export function tilesFromLeafHashes(leafHashes: readonly Uint8Array[]): Tile[] {
  return appendTiles(0, () => undefined, leafHashes);
}

/**
 * Runs `compute` (a proof or root over a tree of `size`) with tiles fetched on demand: the core's
 * proof functions read hashes synchronously, so each run stops at the first tile not yet in
 * `cache`, which is fetched before running again. A proof costs exactly the tiles it touches.
 */
export async function withFetchedTiles<T>(
  size: number,
  fetchTile: (coord: TileCoord) => Promise<Uint8Array>,
  compute: (read: HashReader) => T,
  cache: Map<string, Uint8Array> = new Map(),
): Promise<T> {
  let needed: TileCoord | undefined;
  const read = tileHashReader(size, (coord) => {
    const tile = cache.get(tilePath(coord));
    if (tile === undefined) {
      needed = coord;
      throw new TlogError('TILE_INVALID', 'tile not fetched yet');
    }
    return tile;
  });
  for (;;) {
    needed = undefined;
    try {
      return compute(read);
    } catch (error) {
      if (needed === undefined) throw error;
      cache.set(tilePath(needed), await fetchTile(needed));
    }
  }
}
