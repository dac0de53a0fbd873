// The record plaintext: what the connector encrypts and only the device ever sees.
//
//   "CBRP"          4  ASCII magic: Clinic Bridge Record Payload
//   version         1  0x01
//   header length   4  uint32 big-endian, 2..16384
//   header          h  UTF-8 JSON object (recordHeaderSchema)
//   file            s  exactly header.size bytes, the document as the hospital exported it
//
// The small header comes first, so a device reads it from the first decrypted chunk, picks a
// file name and type, and then streams the file to storage without holding it in memory. The
// real filename and media type are PHI-adjacent ("hiv-test-result.pdf"), so they live here,
// encrypted, and the signed manifest only says a coarse content class.
import { z } from 'zod';
import { ByteReader } from './byte-reader.ts';
import type { ByteSource } from './byte-reader.ts';
import { canonicalJson, concatBytes, fromUtf8, utf8 } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';
import { timestampSchema } from './ids.ts';
import { fieldOf } from './signed-document.ts';

export const RECORD_PAYLOAD_MAGIC = Uint8Array.of(0x43, 0x42, 0x52, 0x50); // "CBRP"
export const RECORD_PAYLOAD_VERSION = 1;
export const RECORD_PAYLOAD_PREFIX_LENGTH = 9;
export const MAX_RECORD_HEADER_BYTES = 16 * 1024;

const FORBIDDEN_IN_FILENAME = /[\p{Cc}\p{Cs}/\\:*?"<>|]/u;

export const recordHeaderSchema = z.object({
  /** A bare file name (no directories), 1..255 characters. Devices must still sanitise it. */
  filename: z
    .string()
    .min(1)
    .max(255)
    .refine(
      (name) => !FORBIDDEN_IN_FILENAME.test(name) && name !== '.' && name !== '..' && name.trim() === name,
      {
        message: 'not a bare file name',
      },
    ),
  /** IANA media type without parameters, e.g. "application/pdf", "application/fhir+json". */
  mediaType: z
    .string()
    .max(255)
    .regex(/^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/),
  /** Exact length of the file bytes that follow the header. */
  size: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** The FHIR DocumentReference.id this file belongs to, if the hospital has one. */
  fhirDocumentReferenceId: z
    .string()
    .regex(/^[A-Za-z0-9\-.]{1,64}$/)
    .optional(),
  /** A human title for the app's list, e.g. "Ontslagbrief". Optional. */
  title: z.string().min(1).max(200).optional(),
  /** When the hospital created the document (not when it was sent). Optional. */
  documentDate: timestampSchema.optional(),
});
// Unknown fields are ignored (zod strips them) rather than rejected: the header is inside the
// encryption, so later minor additions do not need a new version and older apps keep working.
export type RecordHeader = z.output<typeof recordHeaderSchema>;

function checkedHeader(header: RecordHeader): Uint8Array {
  const parsed = recordHeaderSchema.safeParse(header);
  if (!parsed.success) {
    throw new ProtocolError('INVALID_REQUEST', 'the record header fails its schema', {
      field: fieldOf(parsed.error),
    });
  }
  const bytes = utf8(canonicalJson(parsed.data));
  if (bytes.length > MAX_RECORD_HEADER_BYTES)
    throw new ProtocolError('INVALID_REQUEST', 'the record header is too large');
  return bytes;
}

/** The plaintext length (the manifest's plaintextLength) of a record with this header. */
export function recordPayloadLength(header: RecordHeader): number {
  return RECORD_PAYLOAD_PREFIX_LENGTH + checkedHeader(header).length + header.size;
}

/**
 * Streams the record plaintext: prefix, header, then the file. Throws INVALID_REQUEST (and
 * stops) if the file yields more or fewer bytes than header.size.
 */
export async function* encodeRecordPayload(
  header: RecordHeader,
  file: ByteSource,
): AsyncGenerator<Uint8Array, void, undefined> {
  const headerBytes = checkedHeader(header);
  const prefix = new Uint8Array(RECORD_PAYLOAD_PREFIX_LENGTH);
  prefix.set(RECORD_PAYLOAD_MAGIC, 0);
  prefix[4] = RECORD_PAYLOAD_VERSION;
  new DataView(prefix.buffer).setUint32(5, headerBytes.length, false);
  yield concatBytes([prefix, headerBytes]);
  let written = 0;
  for await (const piece of file as AsyncIterable<unknown>) {
    if (!(piece instanceof Uint8Array))
      throw new ProtocolError('INVALID_REQUEST', 'the file must yield bytes');
    written += piece.length;
    if (written > header.size)
      throw new ProtocolError('INVALID_REQUEST', 'the file is longer than header.size');
    if (piece.length > 0) yield piece;
  }
  if (written !== header.size)
    throw new ProtocolError('INVALID_REQUEST', 'the file is shorter than header.size');
}

export interface RecordPayload {
  readonly header: RecordHeader;
  /**
   * The file bytes. Throws RECORD_PAYLOAD_MALFORMED if they are not exactly header.size bytes.
   * As with the chunks under it, the file is complete only if the iteration ends normally.
   */
  readonly file: AsyncGenerator<Uint8Array, void, undefined>;
}

/** Reads the prefix and header from decrypted plaintext, then streams the file. */
export async function readRecordPayload(
  plaintext: ByteSource,
  options: { readonly expectedLength?: number } = {},
): Promise<RecordPayload> {
  const malformed = (why: string): ProtocolError =>
    new ProtocolError('RECORD_PAYLOAD_MALFORMED', `the record payload is malformed (${why})`);
  const reader = new ByteReader(plaintext, () => malformed('not bytes'));
  const prefix = await reader.read(RECORD_PAYLOAD_PREFIX_LENGTH);
  if (prefix.length < RECORD_PAYLOAD_PREFIX_LENGTH) throw malformed('truncated');
  for (let i = 0; i < RECORD_PAYLOAD_MAGIC.length; i++) {
    if (prefix[i] !== RECORD_PAYLOAD_MAGIC[i]) throw malformed('magic');
  }
  if (prefix[4] !== RECORD_PAYLOAD_VERSION) throw malformed('version');
  const headerLength = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength).getUint32(5, false);
  if (headerLength < 2 || headerLength > MAX_RECORD_HEADER_BYTES) throw malformed('header length');
  const headerBytes = await reader.read(headerLength);
  if (headerBytes.length < headerLength) throw malformed('truncated');
  const text = fromUtf8(headerBytes);
  let value: unknown;
  try {
    value = text === undefined ? undefined : JSON.parse(text);
  } catch {
    value = undefined;
  }
  const parsed = recordHeaderSchema.safeParse(value);
  if (!parsed.success) throw malformed('header');
  const header = parsed.data;
  if (
    options.expectedLength !== undefined &&
    options.expectedLength !== RECORD_PAYLOAD_PREFIX_LENGTH + headerLength + header.size
  ) {
    throw malformed('length');
  }
  async function* file(): AsyncGenerator<Uint8Array, void, undefined> {
    let read = 0;
    for await (const piece of reader.rest()) {
      read += piece.length;
      if (read > header.size) throw malformed('trailing bytes');
      if (read === header.size && !(await reader.atEnd())) throw malformed('trailing bytes');
      yield piece;
    }
    if (read !== header.size) throw malformed('truncated');
  }
  return { header, file: file() };
}
