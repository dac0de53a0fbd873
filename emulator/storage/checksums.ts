// Client-declared checksums (the `crc32c`/`md5Hash` fields of upload metadata and the
// X-Goog-Hash request header) are checked against what was actually received; a mismatch
// fails the upload with 400, as Cloud Storage does.
import type { Digests } from './blob-writer.ts';
import { invalid } from './errors.ts';

export interface ExpectedHashes {
  crc32c?: string;
  md5Hash?: string;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function checkFormat(value: string, bytes: number, label: string): string {
  if (!BASE64.test(value) || Buffer.from(value, 'base64').length !== bytes) {
    throw invalid(`Invalid ${label} value: '${value}'. It must be base64 of ${bytes} bytes.`);
  }
  return value;
}

/** Validates the formats and merges several declarations (they must agree). */
export function expectedHashes(...sources: (ExpectedHashes | undefined)[]): ExpectedHashes {
  const out: ExpectedHashes = {};
  for (const source of sources) {
    if (!source) continue;
    if (source.crc32c !== undefined) {
      const value = checkFormat(source.crc32c, 4, 'crc32c');
      if (out.crc32c !== undefined && out.crc32c !== value) throw invalid('Conflicting crc32c values.');
      out.crc32c = value;
    }
    if (source.md5Hash !== undefined) {
      const value = checkFormat(source.md5Hash, 16, 'md5Hash');
      if (out.md5Hash !== undefined && out.md5Hash !== value) throw invalid('Conflicting md5Hash values.');
      out.md5Hash = value;
    }
  }
  return out;
}

/** Parses `X-Goog-Hash: crc32c=…,md5=…` (either part optional; unknown parts ignored). */
export function parseGoogHash(header: string | string[] | undefined): ExpectedHashes | undefined {
  if (header === undefined) return undefined;
  const out: ExpectedHashes = {};
  for (const part of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const at = part.indexOf('=');
    if (at < 0) continue;
    const key = part.slice(0, at).trim().toLowerCase();
    const value = part.slice(at + 1).trim();
    if (key === 'crc32c') out.crc32c = value;
    else if (key === 'md5') out.md5Hash = value;
  }
  return out;
}

export function verifyHashes(expected: ExpectedHashes, actual: Digests): void {
  if (expected.crc32c !== undefined && expected.crc32c !== actual.crc32c) {
    throw invalid(`Provided CRC32C "${expected.crc32c}" doesn't match calculated CRC32C "${actual.crc32c}".`);
  }
  if (expected.md5Hash !== undefined && expected.md5Hash !== actual.md5Hash) {
    throw invalid(
      `Provided MD5 hash "${expected.md5Hash}" doesn't match calculated MD5 hash "${actual.md5Hash}".`,
    );
  }
}

/** The X-Goog-Hash response header for an object. */
export function googHash(crc32c: string, md5Hash: string | undefined): string {
  return md5Hash === undefined ? `crc32c=${crc32c}` : `crc32c=${crc32c},md5=${md5Hash}`;
}
