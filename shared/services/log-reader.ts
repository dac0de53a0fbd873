// Proofs over a log whose tiles live in a bucket. The core's proof functions read hashes
// synchronously; this runs them, fetches whichever tile they stopped at, and runs them again,
// so a proof costs exactly the tiles it touches (a handful, whatever the log's size).
import {
  consistencyProof,
  inclusionProof,
  tileHashReader,
  tilePath,
  treeHash,
  type HashReader,
  TlogError,
  type TileCoord,
} from '../core/tlog/index.ts';
import type { LogObjects } from '../ports/log-objects.ts';

class TileNeeded extends Error {
  readonly coord: TileCoord;
  constructor(coord: TileCoord) {
    super('tile needed');
    this.coord = coord;
  }
}

/** Tiles already fetched (or just written), by path. */
export type TileCache = Map<string, Uint8Array>;

export async function withTiles<T>(
  objects: LogObjects,
  logId: string,
  size: number,
  compute: (read: HashReader) => T,
  cache: TileCache = new Map(),
): Promise<T> {
  const read = tileHashReader(size, (coord) => {
    const tile = cache.get(tilePath(coord));
    if (tile === undefined) throw new TileNeeded(coord);
    return tile;
  });
  for (;;) {
    try {
      return compute(read);
    } catch (error) {
      if (!(error instanceof TileNeeded)) throw error;
      const tile = await objects.tile(logId, error.coord);
      // A tile never written: the log never published a tree of this size (or lost a tile).
      if (tile === undefined)
        throw new TlogError('TILE_INVALID', `the log lacks tile ${tilePath(error.coord)}`);
      cache.set(tilePath(error.coord), tile);
    }
  }
}

export function logProofs(objects: LogObjects, logId: string) {
  return {
    root: (size: number, cache?: TileCache) =>
      withTiles(objects, logId, size, (read) => treeHash(size, read), cache),
    inclusion: (index: number, size: number) =>
      withTiles(objects, logId, size, (read) => inclusionProof(index, size, read)),
    consistency: (oldSize: number, newSize: number) =>
      withTiles(objects, logId, newSize, (read) => consistencyProof(oldSize, newSize, read)),
  };
}
