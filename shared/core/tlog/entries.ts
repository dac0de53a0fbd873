// Entry bundles of c2sp.org/tlog-tiles: the leaves of one level-0 tile, each as a big-endian
// uint16 length followed by the entry bytes. Entry i of a bundle hashes (RFC 6962 leaf hash) to
// hash i of the matching level-0 tile, which is how a monitor checks a bundle it fetched.
import { TlogError } from './errors.ts';
import { TILE_WIDTH } from './tiles.ts';

export const MAX_ENTRY_SIZE = 0xffff;

export function encodeEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  if (entries.length < 1 || entries.length > TILE_WIDTH) {
    throw new TlogError('INVALID_ARGUMENT', 'a bundle holds 1..256 entries');
  }
  let total = 0;
  for (const entry of entries) {
    if (entry.length > MAX_ENTRY_SIZE)
      throw new TlogError('INVALID_ARGUMENT', 'an entry exceeds 65535 bytes');
    total += 2 + entry.length;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const entry of entries) {
    out[offset] = entry.length >> 8;
    out[offset + 1] = entry.length & 0xff;
    out.set(entry, offset + 2);
    offset += 2 + entry.length;
  }
  return out;
}

/**
 * Splits a bundle into its entries. `expectedCount` is the width the bundle's path promises;
 * a bundle with more or fewer entries, or trailing bytes, is rejected rather than truncated.
 */
export function decodeEntryBundle(data: Uint8Array, expectedCount: number): Uint8Array[] {
  const entries: Uint8Array[] = [];
  let offset = 0;
  while (offset < data.length) {
    if (offset + 2 > data.length) throw new TlogError('BUNDLE_INVALID', 'truncated entry length');
    const length = ((data[offset] as number) << 8) | (data[offset + 1] as number);
    const end = offset + 2 + length;
    if (end > data.length) throw new TlogError('BUNDLE_INVALID', 'truncated entry');
    entries.push(data.subarray(offset + 2, end));
    offset = end;
  }
  if (entries.length !== expectedCount) {
    throw new TlogError('BUNDLE_INVALID', `expected ${expectedCount} entries, found ${entries.length}`);
  }
  return entries;
}
