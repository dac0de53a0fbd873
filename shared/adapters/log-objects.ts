// LogObjects (shared/ports/log-objects.ts) over a BlobStore: one prefix per log in the log's
// bucket, tiles and staged batches created once, the checkpoint replaced by compare-and-swap.
import { z } from 'zod';
import {
  entriesPath,
  parseCheckpoint,
  parseNote,
  tilePath,
  type Tile,
  type TileCoord,
} from '../core/tlog/index.ts';
import { fromBase64Url, toBase64Url } from '../core/protocol/encoding.ts';
import { isBlobStoreError, type BlobStore } from '../ports/blob-store.ts';
import type { LogObjects, StagedBatch } from '../ports/log-objects.ts';

const stagingSchema = z.strictObject({
  size: z.int().min(0),
  ids: z.array(z.string().min(1).max(200)).min(1),
  leaves: z.array(z.string().regex(/^[A-Za-z0-9_-]{43}$/)).min(1),
});

const decoder = new TextDecoder();

export function createLogObjects(blobs: BlobStore, bucket: string): LogObjects {
  async function readSmall(name: string, generation?: string): Promise<Uint8Array | undefined> {
    const chunks: Uint8Array[] = [];
    try {
      for await (const chunk of blobs.read(bucket, name, generation ? { generation } : {}))
        chunks.push(chunk);
    } catch (error) {
      if (isBlobStoreError(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
    return new Uint8Array(Buffer.concat(chunks));
  }

  async function createOnce(name: string, bytes: Uint8Array): Promise<void> {
    await blobs.writeSmall(bucket, name, bytes, { createOnly: true });
  }

  function parseStaged(bytes: Uint8Array): StagedBatch {
    const parsed = stagingSchema.parse(JSON.parse(decoder.decode(bytes)));
    if (parsed.ids.length !== parsed.leaves.length) throw new Error('a staged batch is malformed');
    return { size: parsed.size, ids: parsed.ids, leaves: parsed.leaves.map((leaf) => fromBase64Url(leaf)!) };
  }

  return Object.freeze({
    async checkpoint(logId: string) {
      const info = await blobs.stat(bucket, `${logId}/checkpoint`);
      if (!info) return undefined;
      const bytes = await readSmall(`${logId}/checkpoint`, info.generation);
      if (!bytes) return undefined;
      const note = decoder.decode(bytes);
      return { note, checkpoint: parseCheckpoint(parseNote(note).text), generation: info.generation };
    },

    async advanceCheckpoint(logId: string, note: string, generation: string) {
      try {
        await blobs.writeSmall(bucket, `${logId}/checkpoint`, new TextEncoder().encode(note), {
          ifGenerationMatch: generation,
          contentType: 'text/plain; charset=utf-8',
        });
        return true;
      } catch (error) {
        if (isBlobStoreError(error, 'PRECONDITION_FAILED')) return false;
        throw error;
      }
    },

    tile: (logId: string, coord: TileCoord) => readSmall(`${logId}/${tilePath(coord)}`),
    entryBundle: (logId: string, index: number, width: number) =>
      readSmall(`${logId}/${entriesPath(index, width)}`),
    putTile: (logId: string, tile: Tile) => createOnce(`${logId}/${tilePath(tile)}`, tile.data),
    putEntryBundle: (logId: string, index: number, width: number, bytes: Uint8Array) =>
      createOnce(`${logId}/${entriesPath(index, width)}`, bytes),

    async staged(logId: string, size: number) {
      const bytes = await readSmall(`${logId}/staging/${size}`);
      return bytes && parseStaged(bytes);
    },

    async stage(logId: string, batch: StagedBatch) {
      const text = JSON.stringify({
        size: batch.size,
        ids: batch.ids,
        leaves: batch.leaves.map((leaf) => toBase64Url(leaf)),
      });
      try {
        await createOnce(`${logId}/staging/${batch.size}`, new TextEncoder().encode(text));
        return batch;
      } catch (error) {
        if (!isBlobStoreError(error, 'ALREADY_EXISTS')) throw error;
        const winner = await readSmall(`${logId}/staging/${batch.size}`);
        if (!winner) throw error;
        return parseStaged(winner);
      }
    },
  });
}
