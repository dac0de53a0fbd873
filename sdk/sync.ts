// Fetching records (docs/PROTOCOL.md §10.4, §11): list the records (signed), and for each one
// not yet stored: stream the container into openRecord (never whole in memory), hand the
// plaintext to the app's RecordSink piece by piece, and let the sink keep it only when every
// chunk, the digest and the end of the container have checked out; then acknowledge. A record
// that fails is discarded and acknowledged as failed with its stable code.
import {
  ackResponseSchema,
  isProtocolError,
  openRecord,
  openRecordWithLink,
  ProtocolError,
  recordListResponseSchema,
  toProtocolError,
  type RecordHeader,
} from '../shared/core/protocol/index.ts';
import { ApiError, responseBytes, type ApiClient } from './api-client.ts';
import { keptLink, type DeviceHome, type Enrolment } from './home.ts';

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
    const target = `/records/v1/records/${recordId}/content`;
    const response = await enrolment.api.raw({ method: 'GET', target });
    const total = Number(response.headers.get('content-length') ?? 0);
    const bytes = counted(resumed(enrolment.api, target, response), total, options.onProgress);
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
            link: keptLink(link),
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

/** Times a download may break off in a row, without a byte received between, before it fails. */
const RESUME_ATTEMPTS = 3;

/**
 * The container's bytes as one stream, whatever happens to the connection: when the body breaks
 * off, the rest is asked for again from the next byte (`Range: bytes=<next>-`, answered 206), so
 * the reader downstream, its digest and its decryption, carries on as if nothing happened. A
 * service that ignores the Range answers 200 with the whole, and the bytes already had are
 * skipped. A refusal (4xx) is final; the last break, after RESUME_ATTEMPTS without progress,
 * reaches the reader as the container ending early.
 */
async function* resumed(api: ApiClient, target: string, first: Response): AsyncGenerator<Uint8Array> {
  let received = 0;
  let failures = 0;
  let response = first;
  for (;;) {
    const range = response.headers.get('content-range');
    if (response.status === 206 && !range?.startsWith(`bytes ${received}-`)) {
      throw new ProtocolError('UPLOAD_MALFORMED', 'the resumed download starts at another byte');
    }
    let skip = response.status === 206 ? 0 : received;
    try {
      for await (const piece of responseBytes(response)) {
        const fresh = skip >= piece.length ? undefined : piece.subarray(skip);
        skip = Math.max(0, skip - piece.length);
        if (fresh === undefined || fresh.length === 0) continue;
        received += fresh.length;
        failures = 0;
        yield fresh;
      }
      return;
    } catch (error) {
      failures += 1;
      if (failures >= RESUME_ATTEMPTS) throw error;
    }
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 250 * failures));
      try {
        response = await api.raw({ method: 'GET', target, headers: { range: `bytes=${received}-` } });
        break;
      } catch (error) {
        failures += 1;
        if ((error instanceof ApiError && error.status < 500) || failures >= RESUME_ATTEMPTS) throw error;
      }
    }
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

/** Every record the device may fetch now: the signed listing, all its pages, in its order. */
export async function listRecordIds(api: ApiClient): Promise<string[]> {
  const recordIds: string[] = [];
  let pageToken: string | undefined;
  do {
    const page = await api.call(
      {
        method: 'GET',
        target: `/records/v1/records?pageSize=100${pageToken ? `&pageToken=${pageToken}` : ''}`,
      },
      recordListResponseSchema,
    );
    recordIds.push(...page.records.map((record) => record.recordId));
    pageToken = page.nextPageToken;
  } while (pageToken);
  return recordIds;
}

/** Downloads, verifies, decrypts and acknowledges every record not stored yet. */
export async function syncRecords(
  home: DeviceHome,
  enrolment: Enrolment,
  sink: RecordSink,
  options: SyncOptions = {},
): Promise<SyncedRecord[]> {
  const stored = new Set(enrolment.data.stored);
  const pending = (await listRecordIds(enrolment.api)).filter((recordId) => !stored.has(recordId));

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
