// List paging as the List* methods do it: page_size (default and cap 1000), an opaque
// next_page_token, and total_size. filter and order_by are not emulated.
import { invalidArgument, unimplemented } from './errors.ts';

export interface ListRequest {
  parent: string;
  pageSize: number;
  pageToken: string;
  filter: string;
  orderBy: string;
}

const MAX_PAGE = 1000;

export function page<T>(
  items: T[],
  request: ListRequest,
): { items: T[]; nextPageToken: string; totalSize: number } {
  if (request.filter) throw unimplemented('The local KMS emulator does not support filter in List methods.');
  if (request.orderBy)
    throw unimplemented('The local KMS emulator does not support order_by in List methods.');
  if (request.pageSize < 0) throw invalidArgument('page_size must not be negative.');
  const size = request.pageSize === 0 ? MAX_PAGE : Math.min(request.pageSize, MAX_PAGE);
  const start = request.pageToken ? decodeToken(request.pageToken, request.parent) : 0;
  const end = start + size;
  return {
    items: items.slice(start, end),
    nextPageToken: end < items.length ? encodeToken(end, request.parent) : '',
    totalSize: items.length,
  };
}

function encodeToken(offset: number, parent: string): string {
  return Buffer.from(JSON.stringify({ offset, parent })).toString('base64url');
}

function decodeToken(token: string, parent: string): number {
  try {
    const value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as {
      offset?: unknown;
      parent?: unknown;
    };
    if (
      typeof value.offset === 'number' &&
      Number.isSafeInteger(value.offset) &&
      value.offset >= 0 &&
      value.parent === parent
    ) {
      return value.offset;
    }
  } catch {
    // fall through
  }
  throw invalidArgument('page_token is not a token from a previous List call on this parent.');
}
