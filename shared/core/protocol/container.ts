// The upload container (".cbr"): the one Storage object the connector writes per record, and
// the same bytes a device downloads.
//
//   "CBRU"            4  ASCII magic: Clinic Bridge Record Upload
//   version           1  0x01
//   manifest length   4  uint32 big-endian, 1..65536
//   manifest          m  Themis signed form of the canonical-JSON cb/upload-manifest/v1
//   chunk section        chunkCount frames, each:
//     chunk length    4  uint32 big-endian
//     chunk           c  Secure Cell Seal(0x00 ‖ data) from shared/core/crypto (data + 45 bytes)
//   (end of object: nothing may follow the last frame)
//
// Every chunk's data is chunkSize bytes except the last, which holds the rest (0 bytes only for
// an empty record), so every frame's length follows from the manifest and is checked exactly.
// ciphertextLength counts the chunk section (frames included) and ciphertextSha256 hashes it.
//
// The manifest comes first so a reader can bound everything before reading a chunk. Its digest
// covers the chunks, which the writer only knows after encrypting, so the connector seals into
// a spool first (constant memory, ciphertext on disk) and then streams header, manifest and
// spool. The reader needs no key: it frames, bounds and hashes; ingest verifies the manifest
// signature separately with the hospital's registered key (verifyManifest).
import { platform } from '#platform';
import type { Sha256 } from '../platform/types.ts';
import { CHUNK_OVERHEAD, MAX_CHUNK_SIZE } from '../crypto/index.ts';
import { ByteReader } from './byte-reader.ts';
import type { ByteSource } from './byte-reader.ts';
import { concatBytes, equalBytes, fromBase64Url, toBase64Url } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';
import {
  CHUNK_FRAME_LENGTH,
  MANIFEST_CODES,
  UPLOAD_MANIFEST_TYPE,
  uploadManifestSchema,
} from './documents.ts';
import type { UploadManifest } from './documents.ts';
import { readDocumentUnverified } from './signed-document.ts';

export const CONTAINER_MAGIC = Uint8Array.of(0x43, 0x42, 0x52, 0x55); // "CBRU"
export const CONTAINER_VERSION = 1;
export const CONTAINER_HEADER_LENGTH = 9;
/** Largest manifest (its whole Themis signed form) a container may hold. */
export const MAX_MANIFEST_BYTES = 64 * 1024;
/** Default cap on the chunk section ingest and devices accept (2 GiB). */
export const DEFAULT_MAX_CIPHERTEXT_LENGTH = 2 * 1024 * 1024 * 1024;
export const CONTAINER_MEDIA_TYPE = 'application/vnd.clinic-bridge.record';

export interface ContainerLimits {
  /** Largest chunk section accepted (default DEFAULT_MAX_CIPHERTEXT_LENGTH): UPLOAD_TOO_LARGE. */
  readonly maxCiphertextLength?: number;
  /** Largest chunk data accepted (default MAX_CHUNK_SIZE): UPLOAD_TOO_LARGE. */
  readonly maxChunkSize?: number;
  /**
   * The object's size if known (Storage metadata). Checked against the manifest before any
   * chunk is read: UPLOAD_TRUNCATED if smaller, UPLOAD_TRAILING_DATA if larger.
   */
  readonly expectedSize?: number;
}

/** Total container size for a manifest of `manifestLength` bytes. */
export function containerSize(manifestLength: number, ciphertextLength: number): number {
  return CONTAINER_HEADER_LENGTH + manifestLength + ciphertextLength;
}

/** Data bytes of chunk `index` under `manifest` (every chunk is full but the last). */
export function chunkDataLength(
  manifest: Pick<UploadManifest, 'chunkSize' | 'chunkCount' | 'plaintextLength'>,
  index: number,
): number {
  return index < manifest.chunkCount - 1
    ? manifest.chunkSize
    : manifest.plaintextLength - (manifest.chunkCount - 1) * manifest.chunkSize;
}

// ---- Writing ----

export interface ChunkSectionSummary {
  readonly chunkCount: number;
  /** Bytes of the chunk section, frames included. */
  readonly ciphertextLength: number;
  /** base64url SHA-256 of the chunk section. */
  readonly ciphertextSha256: string;
}

/**
 * Frames ciphertext chunks for the chunk section, counting and hashing as it goes.
 * Pass 1 of writing a container: write what frame() returns to a spool.
 */
export class ChunkSectionWriter {
  readonly #hash: Sha256 = platform.createSha256();
  #count = 0;
  #length = 0;
  #summary: ChunkSectionSummary | undefined;

  /**
   * The frame for one chunk, given whole or as consecutive pieces: its 4-byte length, then the
   * chunk's pieces as they are (nothing is copied).
   */
  frame(chunk: Uint8Array | readonly Uint8Array[]): Uint8Array[] {
    if (this.#summary) throw new ProtocolError('INVALID_REQUEST', 'the chunk section is finished');
    const pieces = chunk instanceof Uint8Array ? [chunk] : [...chunk];
    const length = pieces.reduce((sum, piece) => sum + (piece instanceof Uint8Array ? piece.length : NaN), 0);
    if (!(length >= CHUNK_OVERHEAD && length <= MAX_CHUNK_SIZE + CHUNK_OVERHEAD)) {
      throw new ProtocolError('INVALID_REQUEST', 'not a sealed chunk');
    }
    const prefix = new Uint8Array(CHUNK_FRAME_LENGTH);
    new DataView(prefix.buffer).setUint32(0, length, false);
    this.#hash.update(prefix);
    for (const piece of pieces) this.#hash.update(piece);
    this.#count += 1;
    this.#length += CHUNK_FRAME_LENGTH + length;
    return [prefix, ...pieces];
  }

  finish(): ChunkSectionSummary {
    this.#summary ??= {
      chunkCount: this.#count,
      ciphertextLength: this.#length,
      ciphertextSha256: toBase64Url(this.#hash.digest()),
    };
    return this.#summary;
  }
}

/**
 * Pass 2: the container's bytes: header, manifest, then the chunk section exactly as framed in
 * pass 1 (any piece sizes). Checks the section's length and digest against the manifest while
 * streaming and throws INVALID_REQUEST instead of finishing if they differ, so a corrupted spool
 * never becomes a complete upload. Memory: one piece of the section at a time.
 */
export async function* writeUploadContainer(
  signedManifest: Uint8Array,
  chunkSection: ByteSource,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (!(signedManifest instanceof Uint8Array) || signedManifest.length > MAX_MANIFEST_BYTES) {
    throw new ProtocolError('MANIFEST_TOO_LARGE');
  }
  const manifest = readDocumentUnverified(signedManifest, UPLOAD_MANIFEST_TYPE, uploadManifestSchema, {
    codes: MANIFEST_CODES,
  });
  const header = new Uint8Array(CONTAINER_HEADER_LENGTH);
  header.set(CONTAINER_MAGIC, 0);
  header[4] = CONTAINER_VERSION;
  new DataView(header.buffer).setUint32(5, signedManifest.length, false);
  yield concatBytes([header, signedManifest]);
  const hash = platform.createSha256();
  let length = 0;
  for await (const piece of chunkSection as AsyncIterable<unknown>) {
    if (!(piece instanceof Uint8Array))
      throw new ProtocolError('INVALID_REQUEST', 'the chunk section must be bytes');
    length += piece.length;
    if (length > manifest.ciphertextLength) {
      throw new ProtocolError('INVALID_REQUEST', 'the chunk section is longer than the manifest says');
    }
    hash.update(piece);
    yield piece;
  }
  if (length !== manifest.ciphertextLength) {
    throw new ProtocolError('INVALID_REQUEST', 'the chunk section is shorter than the manifest says');
  }
  if (!equalBytes(new Uint8Array(hash.digest()), fromBase64Url(manifest.ciphertextSha256)!)) {
    throw new ProtocolError('INVALID_REQUEST', 'the chunk section does not match the manifest digest');
  }
}

// ---- Reading ----

export interface UploadContainer {
  readonly version: number;
  /** The manifest's Themis signed form, for verifyManifest. */
  readonly signedManifest: Uint8Array;
  /** The manifest as parsed and bounds-checked, NOT signature-verified. */
  readonly manifest: UploadManifest;
  /** Total container size the manifest implies. */
  readonly size: number;
  /**
   * Yields each ciphertext chunk in order (without its frame). Throws UPLOAD_MALFORMED (a frame
   * length other than the manifest implies), UPLOAD_TRUNCATED, UPLOAD_TRAILING_DATA or
   * DIGEST_MISMATCH. The last chunk is yielded only after the end of the object and the digest
   * have been checked, but the upload is intact only if the iteration ends normally.
   */
  chunks(): AsyncGenerator<Uint8Array, void, undefined>;
  /**
   * Yields the container's exact bytes (header, manifest, frames) with the same checks as
   * chunks(), for copying it onward (ingest → records bucket). Use chunks() or bytes(), once.
   */
  bytes(): AsyncGenerator<Uint8Array, void, undefined>;
  /** Stops reading the source early (when not iterating to the end). */
  close(): Promise<void>;
}

/**
 * Reads and checks a container's header and manifest, then hands back an object that streams
 * its chunks. Throws (stable codes) UPLOAD_MALFORMED, UPLOAD_VERSION_UNSUPPORTED,
 * UPLOAD_TRUNCATED, UPLOAD_TRAILING_DATA, UPLOAD_TOO_LARGE, MANIFEST_TOO_LARGE, MANIFEST_INVALID.
 */
export async function readUploadContainer(
  source: ByteSource,
  limits: ContainerLimits = {},
): Promise<UploadContainer> {
  const reader = new ByteReader(
    source,
    () => new ProtocolError('INVALID_REQUEST', 'the source must yield bytes'),
  );
  try {
    return await openContainer(reader, limits);
  } catch (error) {
    await reader.close().catch(() => undefined);
    throw error;
  }
}

async function openContainer(reader: ByteReader, limits: ContainerLimits): Promise<UploadContainer> {
  const maxChunkSize = limits.maxChunkSize ?? MAX_CHUNK_SIZE;
  const maxCiphertextLength = limits.maxCiphertextLength ?? DEFAULT_MAX_CIPHERTEXT_LENGTH;

  const header = await reader.read(CONTAINER_HEADER_LENGTH);
  const magicSeen = header.subarray(0, CONTAINER_MAGIC.length);
  if (!equalBytes(magicSeen, CONTAINER_MAGIC.subarray(0, magicSeen.length))) {
    throw new ProtocolError('UPLOAD_MALFORMED', 'not a Clinic Bridge upload (magic)');
  }
  if (header.length > 4 && header[4] !== CONTAINER_VERSION)
    throw new ProtocolError('UPLOAD_VERSION_UNSUPPORTED');
  if (header.length < CONTAINER_HEADER_LENGTH) throw new ProtocolError('UPLOAD_TRUNCATED');
  const manifestLength = new DataView(header.buffer, header.byteOffset, header.byteLength).getUint32(
    5,
    false,
  );
  if (manifestLength === 0) throw new ProtocolError('UPLOAD_MALFORMED', 'the manifest is empty');
  if (manifestLength > MAX_MANIFEST_BYTES) throw new ProtocolError('MANIFEST_TOO_LARGE');
  if (limits.expectedSize !== undefined && limits.expectedSize < CONTAINER_HEADER_LENGTH + manifestLength) {
    throw new ProtocolError('UPLOAD_TRUNCATED');
  }

  const signedManifest = (await reader.read(manifestLength)).slice();
  if (signedManifest.length < manifestLength) throw new ProtocolError('UPLOAD_TRUNCATED');
  const manifest = readDocumentUnverified(signedManifest, UPLOAD_MANIFEST_TYPE, uploadManifestSchema, {
    codes: MANIFEST_CODES,
    maxBytes: MAX_MANIFEST_BYTES,
  });
  if (manifest.chunkSize > maxChunkSize)
    throw new ProtocolError('UPLOAD_TOO_LARGE', 'the chunk size exceeds the limit');
  if (manifest.ciphertextLength > maxCiphertextLength) throw new ProtocolError('UPLOAD_TOO_LARGE');
  const size = containerSize(manifestLength, manifest.ciphertextLength);
  if (limits.expectedSize !== undefined) {
    if (limits.expectedSize < size) throw new ProtocolError('UPLOAD_TRUNCATED');
    if (limits.expectedSize > size) throw new ProtocolError('UPLOAD_TRAILING_DATA');
  }
  const expectedDigest = fromBase64Url(manifest.ciphertextSha256)!;
  const prefix = concatBytes([header, signedManifest]);

  let started = false;
  async function* frames(raw: boolean): AsyncGenerator<Uint8Array, void, undefined> {
    if (started) throw new ProtocolError('INVALID_REQUEST', 'a container can be read once');
    started = true;
    try {
      if (raw) yield prefix;
      const hash = platform.createSha256();
      for (let index = 0; index < manifest.chunkCount; index++) {
        const frame = await reader.read(CHUNK_FRAME_LENGTH);
        if (frame.length < CHUNK_FRAME_LENGTH)
          throw new ProtocolError('UPLOAD_TRUNCATED', undefined, { chunkIndex: index });
        const length = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0, false);
        if (length !== chunkDataLength(manifest, index) + CHUNK_OVERHEAD) {
          throw new ProtocolError('UPLOAD_MALFORMED', 'a chunk frame has the wrong length', {
            chunkIndex: index,
          });
        }
        const frameCopy = frame.slice();
        const chunk = (await reader.read(length)).slice();
        if (chunk.length < length)
          throw new ProtocolError('UPLOAD_TRUNCATED', undefined, { chunkIndex: index });
        hash.update(frameCopy).update(chunk);
        if (index === manifest.chunkCount - 1) {
          if (!(await reader.atEnd())) throw new ProtocolError('UPLOAD_TRAILING_DATA');
          if (!equalBytes(new Uint8Array(hash.digest()), expectedDigest))
            throw new ProtocolError('DIGEST_MISMATCH');
        }
        if (raw) yield concatBytes([frameCopy, chunk]);
        else yield chunk;
      }
    } finally {
      await reader.close().catch(() => undefined);
    }
  }

  return {
    version: CONTAINER_VERSION,
    signedManifest,
    manifest,
    size,
    chunks: () => frames(false),
    bytes: () => frames(true),
    close: () => reader.close(),
  };
}
