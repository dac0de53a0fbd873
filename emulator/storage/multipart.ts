// A streaming reader for `multipart/related` upload bodies (uploadType=multipart): the
// first part is the JSON metadata, buffered up to a small limit; the second part is the
// media, passed on chunk by chunk until the closing delimiter, never held whole.
import { invalid } from './errors.ts';

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 16 * 1024;

/** Pulls bytes from an async iterable of chunks, with delimiter search across chunks. */
export class ByteReader {
  readonly #source: AsyncIterator<Buffer>;
  #buffer: Buffer = Buffer.alloc(0);
  #ended = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    if (this.#ended) return false;
    const next = await this.#source.next();
    if (next.done) {
      this.#ended = true;
      return false;
    }
    this.#buffer = this.#buffer.length === 0 ? next.value : Buffer.concat([this.#buffer, next.value]);
    return true;
  }

  /** Ensures `n` bytes are buffered; false if the stream ends first. */
  async #want(n: number): Promise<boolean> {
    while (this.#buffer.length < n) if (!(await this.#fill())) return false;
    return true;
  }

  async startsWith(bytes: Buffer): Promise<boolean> {
    if (!(await this.#want(bytes.length))) return false;
    return this.#buffer.subarray(0, bytes.length).equals(bytes);
  }

  skip(n: number): void {
    this.#buffer = this.#buffer.subarray(n);
  }

  /** The bytes before the next `delimiter` (which is consumed), at most `max` of them. */
  async readUntil(delimiter: Buffer, max: number, what: string): Promise<Buffer> {
    let from = 0;
    for (;;) {
      const at = this.#buffer.indexOf(delimiter, from);
      if (at >= 0) {
        const out = Buffer.from(this.#buffer.subarray(0, at));
        this.#buffer = this.#buffer.subarray(at + delimiter.length);
        return out;
      }
      if (this.#buffer.length > max + delimiter.length) throw invalid(`${what} is too large.`);
      from = Math.max(0, this.#buffer.length - delimiter.length + 1);
      if (!(await this.#fill())) throw invalid(`Malformed multipart body: ${what} is not terminated.`);
    }
  }

  /** Passes every byte before the next `delimiter` to `sink`, then consumes the delimiter. */
  async streamUntil(delimiter: Buffer, sink: (chunk: Buffer) => Promise<void>): Promise<void> {
    const keep = delimiter.length - 1;
    for (;;) {
      const at = this.#buffer.indexOf(delimiter);
      if (at >= 0) {
        if (at > 0) await sink(this.#buffer.subarray(0, at));
        this.#buffer = this.#buffer.subarray(at + delimiter.length);
        return;
      }
      if (this.#buffer.length > keep) {
        const safe = this.#buffer.length - keep;
        const out = this.#buffer.subarray(0, safe);
        this.#buffer = Buffer.from(this.#buffer.subarray(safe));
        await sink(out);
      }
      if (!(await this.#fill())) throw invalid('Malformed multipart body: the media part is not terminated.');
    }
  }

  /** Detaches from the source without consuming or destroying it. */
  async release(): Promise<void> {
    await this.#source.return?.();
  }

  /** Reads and discards whatever is left. */
  async drain(): Promise<void> {
    this.#buffer = Buffer.alloc(0);
    while (await this.#fill()) this.#buffer = Buffer.alloc(0);
  }
}

export function boundaryOf(contentType: string | undefined): string {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'multipart/related') {
    throw invalid(`Invalid Content-Type for a multipart upload: expected multipart/related.`);
  }
  const match = /;\s*boundary=(?:"([^"]{1,200})"|([^\s;]{1,200}))/i.exec(contentType ?? '');
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) throw invalid('Missing boundary in multipart/related Content-Type.');
  return boundary;
}

function parseHeaders(block: Buffer): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.toString('latin1').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

async function readPartHeaders(reader: ByteReader): Promise<Record<string, string>> {
  if (await reader.startsWith(CRLF)) {
    reader.skip(CRLF.length);
    return {};
  }
  return parseHeaders(await reader.readUntil(HEADER_END, MAX_HEADER_BYTES, 'A part header'));
}

export interface MultipartUpload {
  /** The first part, still raw (the caller parses the JSON). */
  metadata: Buffer;
  /** Content-Type of the media part, if it had one. */
  mediaType: string | undefined;
}

/**
 * Reads a multipart/related upload. `onMedia` is called once the metadata and the media
 * part's headers are known, and returns the sink the media bytes are streamed into.
 */
export async function readMultipart(
  body: AsyncIterable<Buffer>,
  boundary: string,
  maxMetadataBytes: number,
  onMedia: (upload: MultipartUpload) => Promise<(chunk: Buffer) => Promise<void>>,
): Promise<void> {
  const reader = new ByteReader(body);
  try {
    await readParts(reader, boundary, maxMetadataBytes, onMedia);
  } finally {
    await reader.release();
  }
}

async function readParts(
  reader: ByteReader,
  boundary: string,
  maxMetadataBytes: number,
  onMedia: (upload: MultipartUpload) => Promise<(chunk: Buffer) => Promise<void>>,
): Promise<void> {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  // The first delimiter may follow a preamble and need not be preceded by CRLF.
  await reader.readUntil(Buffer.from(`--${boundary}`), MAX_HEADER_BYTES, 'The multipart preamble');
  await reader.readUntil(CRLF, 1024, 'The first delimiter line');
  const metadataHeaders = await readPartHeaders(reader);
  const type = (metadataHeaders['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json')
    throw invalid('The first part of a multipart upload must be application/json.');
  const metadata = await reader.readUntil(delimiter, maxMetadataBytes, 'Metadata part');
  if (await reader.startsWith(Buffer.from('--'))) throw invalid('A multipart upload needs a media part.');
  await reader.readUntil(CRLF, 1024, 'A delimiter line');
  const mediaHeaders = await readPartHeaders(reader);
  const sink = await onMedia({ metadata, mediaType: mediaHeaders['content-type'] });
  await reader.streamUntil(delimiter, sink);
  await reader.drain();
}
