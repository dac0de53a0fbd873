// Records as a sequence of Themis Secure Cell (Seal mode) chunks under one content key. The
// cells are made by secure-cell-seal.ts over node:crypto, byte-compatible with wasm-themis (the
// reference engine, which only the benchmark's own entry, reference-engine.ts, reaches), so
// Themis on iOS and Android opens them unchanged.
//
// Every chunk is sealed with a Themis context that binds the format version, the record id,
// the chunk's position and whether it is the last chunk. A chunk therefore opens only at its
// own position in its own record, and a reader knows the record is complete only when the
// chunk marked last has opened and nothing follows it. Flipped bytes, reordered, swapped or
// dropped chunks and appended data all fail with a stable error code.
//
// Context (bytes, nothing else is mixed in):
//   "CBRC"            4  ASCII magic: Clinic Bridge Record Chunk
//   version           1  0x01
//   record id length  2  uint16 big-endian, 1..255
//   record id         n  UTF-8
//   chunk index       4  uint32 big-endian, from 0
//   last flag         1  0x01 for the last chunk, else 0x00
//
// Chunk plaintext handed to Themis: one header byte 0x00 (reserved; readers reject any other
// value) followed by the chunk's data. Themis refuses to seal zero bytes, and the header byte
// lets an empty record be the single last chunk with no data, like any other record.
// So each chunk is exactly CHUNK_OVERHEAD = 1 + 44 bytes longer than its data.
//
// Every chunk holds chunkSize bytes of data except the last, which holds 0..chunkSize bytes;
// it holds 0 only for the empty record. Readers do not rely on this split: they accept any
// chunk sizes up to their maxChunkSize. chunkSize is at most MAX_CHUNK_SIZE, which keeps each
// Themis call (and WebAssembly memory, which never shrinks) far below wasm-themis' ~120 MiB
// per-call failure point.
import { assertBytes, concatBytes, recordIdBytes } from './bytes.ts';
import { CryptoError } from './errors.ts';
import type { ContentKey } from './keys.ts';
import { contentKeyBytes } from './keys.ts';
// Node's OpenSSL engine on Node, wasm-themis elsewhere (shared/core/package.json, #seal-engine).
import { openCell, sealCellPieces } from '#seal-engine';
import { callThemis, themis, tryThemis } from './themis.ts';

export const RECORD_CELL_VERSION = 1;
/** Bytes Themis Secure Cell Seal adds to every message it seals. */
export const SEAL_OVERHEAD = 44;
/** The reserved header byte in front of each chunk's data. */
export const CHUNK_HEADER_LENGTH = 1;
/** Exact bytes each ciphertext chunk adds to its data: header byte plus Seal. */
export const CHUNK_OVERHEAD = CHUNK_HEADER_LENGTH + SEAL_OVERHEAD;
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
export const MAX_CHUNK_SIZE = 4 * 1024 * 1024;
const MAX_CHUNK_INDEX = 0xffff_ffff;

const MAGIC = [0x43, 0x42, 0x52, 0x43]; // "CBRC"
const LAST = 0x01;
const CHUNK_HEADER = new Uint8Array([0x00]);
const NOT_LAST = 0x00;

export interface RecordCellOptions {
  readonly key: ContentKey;
  readonly recordId: string;
  /** Plaintext bytes per chunk, 1..MAX_CHUNK_SIZE. Default DEFAULT_CHUNK_SIZE (1 MiB). */
  readonly chunkSize?: number;
}

export interface RecordCellOpenOptions {
  readonly key: ContentKey;
  readonly recordId: string;
  /** Largest chunk data accepted, 1..MAX_CHUNK_SIZE. Default MAX_CHUNK_SIZE. */
  readonly maxChunkSize?: number;
}

type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Length of the ciphertext chunk that carries `dataLength` plaintext bytes. */
export function encryptedChunkLength(dataLength: number): number {
  return dataLength + CHUNK_OVERHEAD;
}

/** Number of chunks a record of `plaintextLength` bytes is sealed into (at least 1). */
export function recordChunkCount(plaintextLength: number, chunkSize = DEFAULT_CHUNK_SIZE): number {
  checkSize(chunkSize, 'chunkSize');
  if (!Number.isSafeInteger(plaintextLength) || plaintextLength < 0) {
    throw new CryptoError('INPUT_INVALID', 'plaintext length must be a non-negative integer');
  }
  return Math.max(1, Math.ceil(plaintextLength / chunkSize));
}

/** Total ciphertext bytes (all chunks, no framing) for a record of `plaintextLength` bytes. */
export function encryptedRecordLength(plaintextLength: number, chunkSize = DEFAULT_CHUNK_SIZE): number {
  return plaintextLength + recordChunkCount(plaintextLength, chunkSize) * CHUNK_OVERHEAD;
}

/** The exact Themis context of one chunk (see the layout above). Exposed for test vectors. */
export function recordChunkContext(recordId: string, chunkIndex: number, last: boolean): Uint8Array {
  return contextFor(contextPrefix(recordIdBytes(recordId)), chunkIndex, last);
}

/** A record path over one Secure Cell engine: the same bytes whichever engine makes them. */
export interface RecordCodec {
  readonly encryptRecordStream: typeof encryptRecordStream;
  readonly encryptRecordPieces: typeof encryptRecordPieces;
  readonly encryptRecord: typeof encryptRecord;
  readonly decryptRecordStream: typeof decryptRecordStream;
  readonly decryptRecord: typeof decryptRecord;
}

/** The record path over `cells`; the exported functions below are the node:crypto one. */
export function recordCodec(cells: CellEngine): RecordCodec {
  /**
   * Encrypts a stream of plaintext (any async iterable of bytes, such as a Node Readable
   * without an encoding) into ciphertext chunks. Memory stays about one chunk whatever the
   * record size. Do not reuse an input buffer after handing it over.
   */
  async function* encryptRecordStream(
    plaintext: ByteSource,
    options: RecordCellOptions,
  ): AsyncGenerator<Uint8Array, void, undefined> {
    for await (const pieces of encryptRecordPieces(plaintext, options)) yield concatBytes(pieces);
  }

  /**
   * As encryptRecordStream, but each chunk comes as the consecutive pieces it was sealed into,
   * for writers that put them out one after another (the upload spool): no chunk is copied whole.
   */
  async function* encryptRecordPieces(
    plaintext: ByteSource,
    options: RecordCellOptions,
  ): AsyncGenerator<Uint8Array[], void, undefined> {
    const sealer = new Sealer(options, cells);
    const size = sealer.chunkSize;
    const pending: Uint8Array[] = [];
    let buffered = 0;
    for await (const piece of plaintext as AsyncIterable<unknown>) {
      assertBytes(piece, 'each plaintext piece');
      if (piece.length === 0) continue;
      pending.push(piece);
      buffered += piece.length;
      // Seal a full chunk only once more data follows it, so we know it is not the last.
      while (buffered > size) {
        yield sealer.seal(take(pending, size), false);
        buffered -= size;
      }
    }
    yield sealer.seal(take(pending, buffered), true);
  }

  /** Encrypts a whole record held in memory. Returns the ciphertext chunks in order. */
  function encryptRecord(plaintext: Uint8Array, options: RecordCellOptions): Uint8Array[] {
    assertBytes(plaintext, 'plaintext');
    const sealer = new Sealer(options, cells);
    const size = sealer.chunkSize;
    const chunks: Uint8Array[] = [];
    let offset = 0;
    do {
      const end = Math.min(offset + size, plaintext.length);
      chunks.push(concatBytes(sealer.seal([plaintext.subarray(offset, end)], end === plaintext.length)));
      offset = end;
    } while (offset < plaintext.length);
    return chunks;
  }

  /**
   * Decrypts a sequence of ciphertext chunks (already separated by the container's framing),
   * yielding plaintext as each chunk is verified. Each yielded piece is authentic, but the record
   * is complete only when the iteration ends without error: write to a temporary place and
   * commit at the end, discarding everything on a CryptoError (CHUNK_INVALID,
   * RECORD_TRUNCATED, TRAILING_DATA). Holds one chunk back to learn whether it is the last.
   */
  async function* decryptRecordStream(
    chunks: ByteSource,
    options: RecordCellOpenOptions,
  ): AsyncGenerator<Uint8Array, void, undefined> {
    const opener = new Opener(options, cells);
    let held: Uint8Array | undefined;
    for await (const chunk of chunks as AsyncIterable<unknown>) {
      assertBytes(chunk, 'each ciphertext chunk');
      if (held !== undefined) yield opener.open(held, false);
      opener.checkLength(chunk);
      held = chunk;
    }
    if (held === undefined)
      throw new CryptoError('RECORD_TRUNCATED', 'the record has no chunks', { chunkIndex: 0 });
    yield opener.open(held, true);
  }

  /** Decrypts a whole record held in memory and returns its plaintext. */
  function decryptRecord(chunks: Iterable<Uint8Array>, options: RecordCellOpenOptions): Uint8Array {
    const opener = new Opener(options, cells);
    const parts: Uint8Array[] = [];
    let held: Uint8Array | undefined;
    for (const chunk of chunks as Iterable<unknown>) {
      assertBytes(chunk, 'each ciphertext chunk');
      if (held !== undefined) parts.push(opener.open(held, false));
      opener.checkLength(chunk);
      held = chunk;
    }
    if (held === undefined)
      throw new CryptoError('RECORD_TRUNCATED', 'the record has no chunks', { chunkIndex: 0 });
    parts.push(opener.open(held, true));
    return concatBytes(parts);
  }

  return { encryptRecordStream, encryptRecordPieces, encryptRecord, decryptRecordStream, decryptRecord };
}

const nodeCryptoCodec = recordCodec(nodeCryptoCells);

/**
 * Encrypts a stream of plaintext (any async iterable of bytes, such as a Node Readable
 * without an encoding) into ciphertext chunks. Memory stays about one chunk whatever the
 * record size. Do not reuse an input buffer after handing it over.
 */
export function encryptRecordStream(
  plaintext: ByteSource,
  options: RecordCellOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  return nodeCryptoCodec.encryptRecordStream(plaintext, options);
}

/**
 * As encryptRecordStream, but each chunk comes as the consecutive pieces it was sealed into,
 * for writers that put them out one after another (the upload spool): no chunk is copied whole.
 */
export function encryptRecordPieces(
  plaintext: ByteSource,
  options: RecordCellOptions,
): AsyncGenerator<Uint8Array[], void, undefined> {
  return nodeCryptoCodec.encryptRecordPieces(plaintext, options);
}

/** Encrypts a whole record held in memory. Returns the ciphertext chunks in order. */
export function encryptRecord(plaintext: Uint8Array, options: RecordCellOptions): Uint8Array[] {
  return nodeCryptoCodec.encryptRecord(plaintext, options);
}

/**
 * Decrypts a sequence of ciphertext chunks (already separated by the container's framing),
 * yielding plaintext as each chunk is verified. Each yielded piece is authentic, but the record
 * is complete only when the iteration ends without error: write to a temporary place and
 * commit at the end, discarding everything on a CryptoError (CHUNK_INVALID,
 * RECORD_TRUNCATED, TRAILING_DATA). Holds one chunk back to learn whether it is the last.
 */
export function decryptRecordStream(
  chunks: ByteSource,
  options: RecordCellOpenOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  return nodeCryptoCodec.decryptRecordStream(chunks, options);
}

/** Decrypts a whole record held in memory and returns its plaintext. */
export function decryptRecord(chunks: Iterable<Uint8Array>, options: RecordCellOpenOptions): Uint8Array {
  return nodeCryptoCodec.decryptRecord(chunks, options);
}

// ---- Internals ----

/** One content key's Secure Cell: seal, or open (undefined when it does not authenticate). */
export interface Cell {
  /** The sealed chunk as consecutive pieces (joined, they are the chunk). */
  encrypt(parts: readonly Uint8Array[], context: Uint8Array): Uint8Array[];
  decrypt(sealed: Uint8Array, context: Uint8Array): Uint8Array | undefined;
}

/** Makes the Secure Cell of one content key. */
export type CellEngine = (key: ContentKey) => Cell;

/** The default engine: node:crypto on Node (byte-compatible with Themis), Themis elsewhere. */
function nodeCryptoCells(key: ContentKey): Cell {
  const bytes = contentKeyBytes(key);
  return {
    encrypt: (parts, context) => sealCellPieces(bytes, parts, context),
    decrypt: (sealed, context) => openCell(bytes, sealed, context),
  };
}

/** The reference engine, wasm-themis itself: slower, kept for benchmarks and differential tests. */
export function wasmThemisCells(key: ContentKey): Cell {
  const cell = callThemis(
    () => themis().SecureCellSeal.withKey(contentKeyBytes(key)),
    () => new CryptoError('KEY_INVALID', 'Themis rejected the content key'),
  );
  return {
    encrypt: (parts, context) => [cell.encrypt(concatBytes(parts), context)],
    decrypt: (sealed, context) => tryThemis(() => cell.decrypt(sealed, context)),
  };
}

class Sealer {
  readonly chunkSize: number;
  readonly #cell: Cell;
  readonly #prefix: Uint8Array;
  #index = 0;
  #finished = false;

  constructor(options: RecordCellOptions, cells: CellEngine) {
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    checkSize(this.chunkSize, 'chunkSize');
    this.#prefix = contextPrefix(recordIdBytes(options.recordId));
    this.#cell = cells(options.key);
  }

  /** Seals one chunk's data, given as consecutive parts; the header byte is put in front. */
  seal(data: readonly Uint8Array[], last: boolean): Uint8Array[] {
    if (this.#finished) throw new CryptoError('INPUT_INVALID', 'the record is already finished');
    if (this.#index > MAX_CHUNK_INDEX)
      throw new CryptoError('INPUT_TOO_LARGE', 'the record has too many chunks');
    const context = contextFor(this.#prefix, this.#index, last);
    const sealed = callThemis(
      () => this.#cell.encrypt([CHUNK_HEADER, ...data], context),
      () => new CryptoError('THEMIS_FAILURE', 'Themis could not seal a chunk'),
    );
    this.#index += 1;
    this.#finished = last;
    return sealed;
  }
}

class Opener {
  readonly #cell: Cell;
  readonly #prefix: Uint8Array;
  readonly #maxLength: number;
  #index = 0;

  constructor(options: RecordCellOpenOptions, cells: CellEngine) {
    const maxChunkSize = options.maxChunkSize ?? MAX_CHUNK_SIZE;
    checkSize(maxChunkSize, 'maxChunkSize');
    this.#maxLength = encryptedChunkLength(maxChunkSize);
    this.#prefix = contextPrefix(recordIdBytes(options.recordId));
    this.#cell = cells(options.key);
  }

  /** Rejects a chunk that cannot be valid before it is held or handed to Themis. */
  checkLength(chunk: Uint8Array): void {
    const index = this.#index; // every chunk before this one has been opened
    if (chunk.length < CHUNK_OVERHEAD) {
      throw new CryptoError('CHUNK_INVALID', 'a chunk is shorter than the chunk overhead', {
        chunkIndex: index,
      });
    }
    if (chunk.length > this.#maxLength) {
      throw new CryptoError('CHUNK_INVALID', 'a chunk is longer than the largest chunk allowed', {
        chunkIndex: index,
      });
    }
  }

  /**
   * Opens the next chunk. `last` says whether the sequence ends after it. If it does not open
   * as expected, it is tried with the other last flag only to name the error precisely.
   */
  open(chunk: Uint8Array, last: boolean): Uint8Array {
    const index = this.#index;
    if (index > MAX_CHUNK_INDEX) {
      throw new CryptoError('TRAILING_DATA', 'more chunks than a record can hold', { chunkIndex: index });
    }
    const opened = this.#cell.decrypt(chunk, contextFor(this.#prefix, index, last));
    if (opened === undefined) {
      const other = this.#cell.decrypt(chunk, contextFor(this.#prefix, index, !last));
      if (other !== undefined && last) {
        throw new CryptoError('RECORD_TRUNCATED', 'the record ends before its last chunk', {
          chunkIndex: index,
        });
      }
      if (other !== undefined) {
        throw new CryptoError('TRAILING_DATA', 'data follows the last chunk of the record', {
          chunkIndex: index,
        });
      }
      throw new CryptoError('CHUNK_INVALID', 'a chunk failed authentication', { chunkIndex: index });
    }
    if (opened.length < CHUNK_HEADER_LENGTH || opened[0] !== 0x00) {
      throw new CryptoError('CHUNK_INVALID', 'a chunk has an unknown header', { chunkIndex: index });
    }
    this.#index += 1;
    return opened.subarray(CHUNK_HEADER_LENGTH);
  }
}

function checkSize(size: number, name: string): void {
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_CHUNK_SIZE) {
    throw new CryptoError('INPUT_INVALID', `${name} must be an integer from 1 to ${MAX_CHUNK_SIZE}`);
  }
}

function contextPrefix(id: Uint8Array): Uint8Array {
  const prefix = new Uint8Array(MAGIC.length + 1 + 2 + id.length);
  prefix.set(MAGIC, 0);
  prefix[4] = RECORD_CELL_VERSION;
  new DataView(prefix.buffer).setUint16(5, id.length, false);
  prefix.set(id, 7);
  return prefix;
}

function contextFor(prefix: Uint8Array, index: number, last: boolean): Uint8Array {
  if (!Number.isSafeInteger(index) || index < 0 || index > MAX_CHUNK_INDEX) {
    throw new CryptoError('INPUT_INVALID', 'chunk index must be a uint32');
  }
  const context = new Uint8Array(prefix.length + 5);
  context.set(prefix, 0);
  new DataView(context.buffer).setUint32(prefix.length, index, false);
  context[prefix.length + 4] = last ? LAST : NOT_LAST;
  return context;
}

/** Removes `length` bytes from the front of `pending` into a new chunk plaintext. */
/** The next `length` bytes of `pending`, as views of the pieces (nothing is copied). */
function take(pending: Uint8Array[], length: number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let wanted = length;
  while (wanted > 0) {
    const head = pending[0]!;
    if (head.length <= wanted) {
      parts.push(head);
      wanted -= head.length;
      pending.shift();
    } else {
      parts.push(head.subarray(0, wanted));
      pending[0] = head.subarray(wanted);
      wanted = 0;
    }
  }
  return parts;
}
