// Fetching records (docs/PROTOCOL.md §10.4, §11): list the records (signed), and for each one
// not yet stored: stream the container into openRecord (never whole in memory), hand the
// plaintext to the app's RecordSink piece by piece, and let the sink keep it only when every
// chunk, the digest and the end of the container have checked out; then acknowledge. A record
// that fails is discarded and acknowledged as failed with its stable code.
import {
  ackResponseSchema,
  fromBase64Url,
  isProtocolError,
  openRecord,
  openRecordWithLink,
  readDeviceLinkUnverified,
  ProtocolError,
  recordListResponseSchema,
  toProtocolError,
  type RecordHeader,
} from '../shared/core/protocol/index.ts';
import { ApiError, responseBytes } from './api-client.ts';
import type { DeviceHome, Enrolment } from './home.ts';

/** Where one record's plaintext goes while it is opened (a file, OPFS, app storage). */
export interface RecordWriter {
  write(piece: Uint8Array): Promise<void>;
  /**
   * Called once the whole record checked out; keeps what was written and returns where it is
   * (a file name, a storage key). `header` is the record's signed metadata (filename, type, …).
   */
  commit(header: RecordHeader): Promise<string>;
  /** Called instead of commit when the record failed: what was written must go. */
  abort(): Promise<void>;
}

export interface RecordSink {
  open(recordId: string): Promise<RecordWriter>;
}

export interface SyncedRecord {
  readonly recordId: string;
  readonly outcome: 'stored' | 'failed';
  readonly file?: string;
  readonly errorCode?: string;
}

/** Reports bytes received of the announced total as they pass (the download's progress). */
async function* counted(
  source: AsyncIterable<Uint8Array>,
  total: number,
  onProgress: ((stage: 'download', done: number, total: number) => void) | undefined,
): AsyncGenerator<Uint8Array> {
  let done = 0;
  for await (const piece of source) {
    done += piece.length;
    onProgress?.('download', done, total);
    yield piece;
  }
}

async function fetchOne(
  enrolment: Enrolment,
  recordId: string,
  sink: RecordSink,
  options: SyncOptions,
): Promise<SyncedRecord> {
  let writer: RecordWriter | undefined;
  try {
    const response = await enrolment.api.raw({
      method: 'GET',
      target: `/records/v1/records/${recordId}/content`,
    });
    const total = Number(response.headers.get('content-length') ?? 0);
    const bytes = counted(responseBytes(response), total, options.onProgress);
    const expected = {
      device: enrolment.keys,
      hospitalPublicKey: enrolment.hospitalKey,
      hospitalId: enrolment.data.hospitalId,
      recordId,
    };
    // A linked phone holds the keys of the records sent before it existed in its link.
    const { link } = enrolment.data;
    const opened =
      link === undefined
        ? await openRecord(untilCut(bytes), expected)
        : await openRecordWithLink(untilCut(bytes), {
            ...expected,
            link: readDeviceLinkUnverified(fromBase64Url(link) ?? new Uint8Array()),
          });
    writer = await sink.open(recordId);
    for await (const piece of opened.file) await writer.write(piece);
    const file = await writer.commit(opened.header);
    return { recordId, outcome: 'stored', file };
  } catch (error) {
    await writer?.abort();
    if (error instanceof ApiError) throw error; // the service refused: not the record's fault
    const code = isProtocolError(error) ? error.code : toProtocolError(error).code;
    return { recordId, outcome: 'failed', errorCode: code };
  }
}

/**
 * The container as downloaded, where a body that breaks off is the container ending early
 * (UPLOAD_TRUNCATED) rather than INTERNAL_ERROR: the device cannot tell a dropped connection
 * from a stored object shorter than the length the records function announced, and either way
 * what it holds is an incomplete container, not a fault of its own. The record is not stored,
 * so the next sync tries it again.
 */
async function* untilCut(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  try {
    for await (const piece of body) yield piece;
  } catch (error) {
    throw new ProtocolError('UPLOAD_TRUNCATED', undefined, { cause: error });
  }
}

export interface SyncOptions {
  /** Called with bytes received of each record's container as it downloads. */
  readonly onProgress?: (stage: 'download', done: number, total: number) => void;
}

/** Downloads, verifies, decrypts and acknowledges every record not stored yet. */
export async function syncRecords(
  home: DeviceHome,
  enrolment: Enrolment,
  sink: RecordSink,
  options: SyncOptions = {},
): Promise<SyncedRecord[]> {
  const stored = new Set(enrolment.data.stored);
  const pending: string[] = [];
  let pageToken: string | undefined;
  do {
    const page = await enrolment.api.call(
      {
        method: 'GET',
        target: `/records/v1/records?pageSize=100${pageToken ? `&pageToken=${pageToken}` : ''}`,
      },
      recordListResponseSchema,
    );
    for (const record of page.records) if (!stored.has(record.recordId)) pending.push(record.recordId);
    pageToken = page.nextPageToken;
  } while (pageToken);

  const results: SyncedRecord[] = [];
  for (const recordId of pending) {
    const result = await fetchOne(enrolment, recordId, sink, options);
    await enrolment.api.call(
      {
        method: 'POST',
        target: `/records/v1/records/${recordId}/ack`,
        json:
          result.outcome === 'stored'
            ? { outcome: 'stored' }
            : { outcome: 'failed', errorCode: result.errorCode },
      },
      ackResponseSchema,
    );
    if (result.outcome === 'stored') {
      stored.add(recordId);
      await home.save({ ...enrolment.data, stored: [...stored] });
    }
    results.push(result);
  }
  return results;
}
