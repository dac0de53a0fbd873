// Proofs over a log whose tiles live in a bucket, fetching exactly the tiles a proof touches
// (shared/core/tlog/tiles.ts withFetchedTiles); a tile the log never wrote is a typed log error.
import {
  consistencyProof,
  inclusionProof,
  withFetchedTiles,
  tilePath,
  treeHash,
  type HashReader,
  TlogError,
} from '../core/tlog/index.ts';
import type { LogObjects } from '../ports/log-objects.ts';

/** Tiles already fetched (or just written), by path. */
export type TileCache = Map<string, Uint8Array>;

export function withTiles<T>(
  objects: LogObjects,
  logId: string,
  size: number,
  compute: (read: HashReader) => T,
  cache: TileCache = new Map(),
): Promise<T> {
  return withFetchedTiles(
    size,
    async (coord) => {
      const tile = await objects.tile(logId, coord);
      // A tile never written: the log never published a tree of this size (or lost a tile).
      if (tile === undefined) throw new TlogError('TILE_INVALID', `the log lacks tile ${tilePath(coord)}`);
      return tile;
    },
    compute,
    cache,
  );
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
