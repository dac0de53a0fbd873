// The sequencer: integrates pending audit entries, in batches, into one Merkle tree per log
// (docs/ARCHITECTURE.md, "The audit transparency log"). Per log and batch:
//   1. read the checkpoint (size N, generation g);
//   2. stage the batch at N, create-only: a crashed or racing sequencer at N finds it and
//      finishes exactly that batch, so every sequencer at N appends the same entries in the same
//      order and writes the same bytes;
//   3. write the new tiles and entry bundles, create-only (the same bytes again are fine);
//   4. write each entry's index (before the checkpoint: an index below the checkpoint's size is
//      then always written, which is how a later batch knows an entry is taken);
//   5. sign the new checkpoint and replace the old only if its generation is still g.
// A crash anywhere loses nothing (entries stay until step 5 covers them) and forks nothing
// (steps 2 and 5 are compare-and-swaps); the registry's in-flight mark brings a crashed log
// back even when no new entry arrives for it.
import {
  appendTiles,
  auditLeafData,
  auditLogOrigin,
  decodeEntryBundle,
  encodeEntryBundle,
  leafHash,
  partialTilesForSize,
  signCheckpoint,
  TILE_WIDTH,
  tilePath,
  type NoteSigner,
} from '../core/tlog/index.ts';
import type { AuditEntryStore, RecordedAuditEntry } from '../audit/log.ts';
import type { LogRegistry } from '../ports/log-registry.ts';
import type { Logger } from '../ports/logger.ts';
import type { LogObjects } from '../ports/log-objects.ts';
import { logProofs, type TileCache } from './log-reader.ts';

/** Entries read per round; each log's share of them becomes one batch. */
export const SEQUENCER_BATCH = 1000;

export interface SequencerOptions {
  readonly entries: AuditEntryStore;
  readonly objects: LogObjects;
  readonly registry: LogRegistry;
  /** The platform's log key (Cloud KMS): signs every log's checkpoints. */
  readonly signer: () => Promise<NoteSigner & { readonly verifierKey: string }>;
  /** The API base phones use: origins are derived from it. */
  readonly apiBase: string;
  readonly logger: Logger;
}

export interface SequencerRun {
  /** Entries integrated by this run. */
  readonly sequenced: number;
  readonly logs: readonly string[];
}

export interface Sequencer {
  run(): Promise<SequencerRun>;
}

function groupByLog(entries: readonly RecordedAuditEntry[]): Map<string, RecordedAuditEntry[]> {
  const byLog = new Map<string, RecordedAuditEntry[]>();
  for (const entry of entries) {
    const list = byLog.get(entry.logId);
    if (list) list.push(entry);
    else byLog.set(entry.logId, [entry]);
  }
  return byLog;
}

export function createSequencer(options: SequencerOptions): Sequencer {
  const { entries, objects, registry, apiBase, logger } = options;

  /** Writes the tiles and entry bundles of `leaves` appended after `size`; returns the new root. */
  async function writeTiles(logId: string, size: number, leaves: readonly Uint8Array[]): Promise<Uint8Array> {
    const cache: TileCache = new Map();
    await Promise.all(
      partialTilesForSize(size).map(async (coord) => {
        const tile = await objects.tile(logId, coord);
        if (tile === undefined) throw new Error(`the log ${logId} lacks its edge tile ${tilePath(coord)}`);
        cache.set(tilePath(coord), tile);
      }),
    );
    const tiles = appendTiles(size, (coord) => cache.get(tilePath(coord)), leaves.map(leafHash));
    const edgeWidth = size % TILE_WIDTH;
    const edgeLeaves =
      edgeWidth === 0
        ? []
        : decodeEntryBundle(
            (await objects.entryBundle(logId, Math.floor(size / TILE_WIDTH), edgeWidth)) ?? new Uint8Array(0),
            edgeWidth,
          );
    const all = [...edgeLeaves, ...leaves];
    const firstLeaf = size - edgeWidth;
    await Promise.all([
      ...tiles.map((tile) => objects.putTile(logId, tile)),
      ...tiles
        .filter((tile) => tile.level === 0)
        .map((tile) => {
          const from = tile.index * TILE_WIDTH - firstLeaf;
          return objects.putEntryBundle(
            logId,
            tile.index,
            tile.width,
            encodeEntryBundle(all.slice(from, from + tile.width)),
          );
        }),
    ]);
    for (const tile of tiles) cache.set(tilePath(tile), tile.data);
    return logProofs(objects, logId).root(size + leaves.length, cache);
  }

  /** Appends one batch to one log; how many entries this call integrated (0 if another did). */
  async function sequenceLog(logId: string, candidateIds: readonly string[]): Promise<number> {
    await registry.markStaging(logId);
    const current = await objects.checkpoint(logId);
    const size = current?.checkpoint.size ?? 0;
    let batch = await objects.staged(logId, size);
    if (!batch) {
      // Read after the checkpoint: anything it covers has its index written by now.
      const fresh = (await entries.get(candidateIds)).filter(
        (entry): entry is RecordedAuditEntry => entry !== undefined && entry.index === undefined,
      );
      if (fresh.length === 0) {
        await registry.markCommitted(logId);
        return 0;
      }
      batch = await objects.stage(logId, {
        size,
        ids: fresh.map((entry) => entry.id),
        leaves: fresh.map((entry) => auditLeafData(entry.salt, entry.event)),
      });
    }
    const rootHash = await writeTiles(logId, size, batch.leaves);
    await entries.assignIndexes(batch.ids.map((id, k) => ({ id, index: size + k })));
    const newSize = size + batch.ids.length;
    const signer = await options.signer();
    const note = await signCheckpoint(
      { origin: auditLogOrigin(apiBase, logId), size: newSize, rootHash, extensions: [] },
      [signer],
    );
    if (!(await objects.advanceCheckpoint(logId, note, current?.generation ?? '0'))) return 0;
    await registry.markCommitted(logId, signer.verifierKey);
    logger.info('audit log advanced', { operation: 'sequencer.advanced', hospitalId: logId, count: newSize });
    return batch.ids.length;
  }

  return Object.freeze({
    async run() {
      let sequenced = 0;
      const logs = new Set<string>();
      // Batches a crashed run left staged, finished first and with exactly their entries.
      for (const logId of await registry.inFlight()) {
        sequenced += await sequenceLog(logId, []);
        logs.add(logId);
      }
      for (;;) {
        const pending = await entries.pending(SEQUENCER_BATCH);
        let progressed = 0;
        for (const [logId, list] of groupByLog(pending)) {
          progressed += await sequenceLog(
            logId,
            list.map((entry) => entry.id),
          );
          logs.add(logId);
        }
        sequenced += progressed;
        if (pending.length < SEQUENCER_BATCH || progressed === 0) break;
      }
      return { sequenced, logs: [...logs].sort() };
    },
  });
}
