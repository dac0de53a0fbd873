// Byte-level surgery on an upload container, for attacks that keep everything but one field
// genuine. Layout (docs/PROTOCOL.md §7): magic (4), version (1), manifest length (4, big-endian),
// the signed manifest, then the chunk section.
import { sign, type PrivateKey } from '../../shared/core/crypto/index.ts';
import { canonicalJson, type UploadManifest } from '../../shared/core/protocol/index.ts';

export const VERSION_OFFSET = 4;
export const MANIFEST_LENGTH_OFFSET = 5;
export const MANIFEST_OFFSET = 9;

/** Where a container's chunk section starts: after the header and the manifest it announces. */
export function chunkSectionAt(bytes: Uint8Array): number {
  return (
    MANIFEST_OFFSET + new DataView(bytes.buffer, bytes.byteOffset).getUint32(MANIFEST_LENGTH_OFFSET, false)
  );
}

/** A copy of `bytes` with a big-endian u32 written at `offset`. */
export function withUint32(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  new DataView(copy.buffer).setUint32(offset, value, false);
  return copy;
}

/**
 * The same container with its manifest replaced by `manifest` (any object: a field the schema
 * refuses is the point of some attacks), signed with `hospitalKey` so that it verifies.
 */
export function withManifest(
  bytes: Uint8Array,
  manifest: UploadManifest | object,
  hospitalKey: PrivateKey,
): Uint8Array {
  const signedManifest = sign(new TextEncoder().encode(canonicalJson(manifest as never)), hospitalKey);
  const header = withUint32(
    bytes.subarray(0, MANIFEST_OFFSET),
    MANIFEST_LENGTH_OFFSET,
    signedManifest.length,
  );
  return new Uint8Array(Buffer.concat([header, signedManifest, bytes.subarray(chunkSectionAt(bytes))]));
}
