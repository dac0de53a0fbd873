// Naming rules for buckets and objects, the on-disk key of an object name, and the sort
// order Cloud Storage lists in (UTF-8 byte order, which is Unicode code point order).
import { createHash } from 'node:crypto';
import { invalid } from './errors.ts';

const BUCKET_COMPONENT = /^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Cloud Storage's bucket naming rules (the subset that matters offline). */
export function isValidBucketName(name: string): boolean {
  if (name.length < 3 || name.length > 222) return false;
  if (!name.includes('.') && name.length > 63) return false;
  if (name.startsWith('goog') || IPV4.test(name)) return false;
  return name.split('.').every((part) => part.length <= 63 && BUCKET_COMPONENT.test(part));
}

export function assertBucketName(name: string): void {
  if (!isValidBucketName(name)) throw invalid(`Invalid bucket name: '${name}'`);
}

/** 1–1024 bytes of valid UTF-8, no CR or LF, not "." or "..". */
export function assertObjectName(name: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (
    bytes === 0 ||
    bytes > 1024 ||
    !name.isWellFormed() ||
    /[\r\n]/.test(name) ||
    name === '.' ||
    name === '..' ||
    name.startsWith('.well-known/acme-challenge/')
  ) {
    throw invalid('The specified object name is not valid.');
  }
}

/**
 * The file-name-safe key of an object name. Names may hold '/', any Unicode and up to
 * 1024 bytes, more than a file name allows, so the store keys files by a digest and keeps
 * the real name inside the metadata file.
 */
export function objectKey(name: string): string {
  return createHash('sha256').update(name, 'utf8').digest('hex');
}

// UTF-16 code units sort surrogates (U+D800–DFFF) below U+E000–FFFF, while code points
// (and UTF-8 bytes) put supplementary characters last. Shifting the two ranges fixes it.
function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/** Compares two strings in UTF-8 byte order. */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** First index in `sorted` whose name is >= `name`. */
export function lowerBound(sorted: readonly string[], name: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareNames(sorted[mid]!, name) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index in `sorted` whose name is > `name`. */
export function upperBound(sorted: readonly string[], name: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareNames(sorted[mid]!, name) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Percent-encodes a whole object name for use as one URL path segment. */
export function encodeName(name: string): string {
  return encodeURIComponent(name);
}
