// A transparency log's objects in its bucket (c2sp.org/tlog-tiles under one prefix per log):
//   {logId}/checkpoint             the platform-signed checkpoint; replaced only by compare-and-swap
//                                  on its generation, so two sequencers can never fork the log
//   {logId}/tile/{L}/{N}[.p/{W}]   hash tiles, created once (ifGenerationMatch=0), never changed
//   {logId}/tile/entries/{N}[...]  entry bundles: each leaf's 32-byte commitment, nothing else
//   {logId}/staging/{size}         the batch a sequencer committed to appending after `size`,
//                                  written before any tile so that a crashed run is finished with
//                                  exactly the same entries in exactly the same order
import type { Checkpoint, Tile, TileCoord } from '../core/tlog/index.ts';

export interface StoredCheckpoint {
  readonly note: string;
  readonly checkpoint: Checkpoint;
  readonly generation: string;
}

export interface StagedBatch {
  /** The tree size the batch is appended after. */
  readonly size: number;
  readonly ids: readonly string[];
  /** Each entry's leaf data (audit-leaf.ts), in order. */
  readonly leaves: readonly Uint8Array[];
}

export interface LogObjects {
  checkpoint(logId: string): Promise<StoredCheckpoint | undefined>;
  /** Replaces the checkpoint if `generation` is still current ("0": none yet); false if another won. */
  advanceCheckpoint(logId: string, note: string, generation: string): Promise<boolean>;
  /** A tile, or undefined if it was never written. */
  tile(logId: string, coord: TileCoord): Promise<Uint8Array | undefined>;
  entryBundle(logId: string, index: number, width: number): Promise<Uint8Array | undefined>;
  /** Writes a tile once; the same bytes again count as done, other bytes are an error (a fork). */
  putTile(logId: string, tile: Tile): Promise<void>;
  putEntryBundle(logId: string, index: number, width: number, bytes: Uint8Array): Promise<void>;
  staged(logId: string, size: number): Promise<StagedBatch | undefined>;
  /** Stages `batch` unless another sequencer staged one at that size first; returns the one that counts. */
  stage(logId: string, batch: StagedBatch): Promise<StagedBatch>;
}
