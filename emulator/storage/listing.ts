// objects.list over a sorted name index: prefix, delimiter (collapsing names into
// prefixes[]), startOffset/endOffset, maxResults and opaque page tokens. maxResults counts
// items and prefixes together, as the JSON API does.
import { invalid } from './errors.ts';
import { compareNames, lowerBound, upperBound } from './names.ts';

export interface ListOptions {
  prefix: string;
  delimiter?: string;
  maxResults: number;
  pageToken?: string;
  startOffset?: string;
  endOffset?: string;
  includeTrailingDelimiter?: boolean;
}

export interface ListPage {
  names: string[];
  prefixes: string[];
  nextPageToken?: string;
}

interface Cursor {
  /** The last entry returned: an object name, or a prefix when `p` is set. */
  a: string;
  p?: 1;
}

function encodeToken(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor), 'utf8').toString('base64url');
}

function decodeToken(token: string): Cursor {
  try {
    const cursor = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<Cursor>;
    if (typeof cursor.a === 'string' && (cursor.p === undefined || cursor.p === 1)) return cursor as Cursor;
  } catch {
    // fall through
  }
  throw invalid('Invalid page token.');
}

export function listNames(sorted: readonly string[], options: ListOptions): ListPage {
  const { prefix, delimiter } = options;
  let start = lowerBound(sorted, prefix);
  if (options.startOffset !== undefined) start = Math.max(start, lowerBound(sorted, options.startOffset));
  if (options.pageToken) {
    const cursor = decodeToken(options.pageToken);
    let after = upperBound(sorted, cursor.a);
    if (cursor.p) while (after < sorted.length && sorted[after]!.startsWith(cursor.a)) after++;
    start = Math.max(start, after);
  }

  const names: string[] = [];
  const prefixes: string[] = [];
  let last: Cursor | undefined;
  let i = start;
  while (i < sorted.length) {
    const name = sorted[i]!;
    if (!name.startsWith(prefix)) break;
    if (options.endOffset !== undefined && compareNames(name, options.endOffset) >= 0) break;
    if (names.length + prefixes.length >= options.maxResults) {
      return { names, prefixes, ...(last ? { nextPageToken: encodeToken(last) } : {}) };
    }
    if (delimiter) {
      const at = name.indexOf(delimiter, prefix.length);
      if (at >= 0) {
        const collapsed = name.slice(0, at + delimiter.length);
        prefixes.push(collapsed);
        if (options.includeTrailingDelimiter && name === collapsed) names.push(name);
        last = { a: collapsed, p: 1 };
        while (i < sorted.length && sorted[i]!.startsWith(collapsed)) i++;
        continue;
      }
    }
    names.push(name);
    last = { a: name };
    i++;
  }
  return { names, prefixes };
}
