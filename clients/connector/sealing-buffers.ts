// Sealing a large file without garbage. Each 1 MiB the record path reads and each 1 MiB it seals
// would otherwise be a fresh ArrayBuffer, and V8 frees those only at its next young-generation
// collection, which it starts for ArrayBuffers alone after tens of MiB of them: that garbage was
// about 40 MiB of the connector's peak RSS on a 1 GiB send (docs/PERFORMANCE.md). Here the file
// is read into a few buffers that are reused, and each sealed piece is freed as soon as the spool
// has written it, so a send's memory stays flat at its floor whatever the file size.
import { open } from 'node:fs/promises';
import { CHUNK_FRAME_LENGTH } from '../../shared/core/protocol/index.ts';
import { CHUNK_OVERHEAD } from '../../shared/core/crypto/index.ts';
import type { ChunkFile } from './pending-uploads.ts';

/** Smaller pieces (frame lengths, tokens) are not worth freeing by hand; they are written with the next large one. */
const RELEASE_MIN_BYTES = 64 * 1024;

/**
 * Counts, frame by frame, how many record payload bytes the chunk section written so far seals
 * (chunk section layout: docs/PROTOCOL.md, shared/core/protocol/container.ts). A plaintext
 * byte whose chunk has been written is no longer needed by anyone: the cipher has copied it.
 */
export class SealedPayloadMeter {
  #sealed = 0;
  readonly #length = new Uint8Array(CHUNK_FRAME_LENGTH);
  #lengthFill = 0;
  #bodyLeft = 0;
  #bodyLength = 0;

  /** Payload bytes carried by the complete frames observed. */
  get sealed(): number {
    return this.#sealed;
  }

  observe(bytes: Uint8Array): void {
    let offset = 0;
    while (offset < bytes.length) {
      if (this.#bodyLeft > 0) {
        const step = Math.min(this.#bodyLeft, bytes.length - offset);
        this.#bodyLeft -= step;
        offset += step;
        if (this.#bodyLeft === 0) this.#sealed += this.#bodyLength - CHUNK_OVERHEAD;
        continue;
      }
      this.#length[this.#lengthFill++] = bytes[offset++]!;
      if (this.#lengthFill === CHUNK_FRAME_LENGTH) {
        this.#lengthFill = 0;
        this.#bodyLength = new DataView(this.#length.buffer).getUint32(0, false);
        this.#bodyLeft = this.#bodyLength;
      }
    }
  }
}

/**
 * Reads `file` to its end: `firstBytes`, then `pieceBytes` at a time (callers align the pieces
 * with the record's chunks, so each chunk is sealed from one piece and written as one piece). A
 * buffer is read into again only once `sealedThrough()` (file bytes whose ciphertext is written)
 * has passed every byte it held, so a piece is never overwritten while the record path may still
 * hold it, however much it buffers; if it holds more, more buffers are made.
 */
export async function* recycledReads(
  file: string,
  options: { readonly firstBytes: number; readonly pieceBytes: number; readonly sealedThrough: () => number },
): AsyncGenerator<Uint8Array, void, undefined> {
  const { pieceBytes, sealedThrough } = options;
  const handle = await open(file, 'r');
  const free: Buffer[] = [];
  const held: { readonly buffer: Buffer; readonly end: number }[] = [];
  let position = 0;
  let want = Math.min(Math.max(1, options.firstBytes), pieceBytes);
  try {
    for (;;) {
      const sealed = sealedThrough();
      while (held.length > 0 && held[0]!.end <= sealed) free.push(held.shift()!.buffer);
      const buffer = free.pop() ?? Buffer.allocUnsafeSlow(pieceBytes);
      const { bytesRead } = await handle.read(buffer, 0, want, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      held.push({ buffer, end: position });
      want = pieceBytes;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/** sealUpload's spool over the chunk file; flush() before the file is finished. */
export interface ReleasingSpool {
  write(bytes: Uint8Array): Promise<void>;
  read(): AsyncIterable<Uint8Array>;
  flush(): Promise<void>;
}

/**
 * The chunk file as sealUpload's spool: meters what it is given, writes each frame's small
 * pieces together with its ciphertext in one call, and frees each large piece once written.
 * Those pieces are the cipher's fresh output, which sealUpload hashes before handing them over
 * and never reads again; freeing them here (detaching their ArrayBuffer) returns the memory at
 * once instead of at the next garbage collection.
 */
export function releasingSpool(chunks: ChunkFile, meter: SealedPayloadMeter): ReleasingSpool {
  let small: Uint8Array[] = [];
  const flush = async () => {
    if (small.length === 0) return;
    const pieces = small;
    small = [];
    await chunks.writev(pieces);
  };
  return {
    async write(bytes) {
      meter.observe(bytes);
      if (bytes.length < RELEASE_MIN_BYTES) {
        small.push(bytes);
        return;
      }
      const pieces = [...small, bytes];
      small = [];
      await chunks.writev(pieces);
      release(bytes);
    },
    read: () => chunks.read(),
    flush,
  };
}

function release(bytes: Uint8Array): void {
  const { buffer } = bytes;
  if (
    buffer instanceof ArrayBuffer &&
    !buffer.resizable &&
    bytes.byteOffset === 0 &&
    bytes.byteLength === buffer.byteLength
  ) {
    buffer.transfer(0);
  }
}
