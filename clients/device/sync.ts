// Fetching records (docs/PROTOCOL.md §10.4, §11): optionally wait for a push, list the records
// (signed), and for each one not yet stored: stream the container into openRecord (never whole
// in memory), write the plaintext to a temporary file, and move it into place only when every
// chunk, the digest and the end of the container have checked out; then acknowledge. A record
// that fails is deleted locally and acknowledged as failed with its stable code.
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { once } from 'node:events';
import { z } from 'zod';
import {
  ackResponseSchema,
  isProtocolError,
  openRecord,
  ProtocolError,
  pushDataSchema,
  recordListResponseSchema,
  toProtocolError,
} from '../../shared/core/protocol/index.ts';
import { ApiError, responseBytes } from '../lib/api-client.ts';
import type { DeviceHome, Enrolment } from './home.ts';

const pollAnswerSchema = z.object({
  messages: z.array(z.object({ seq: z.int(), data: z.record(z.string(), z.string()) })),
  lastSeq: z.int(),
});

/**
 * Long-polls the local FCM recorder for this device's pushes after the last one seen. Only the
 * documented opaque hints count; anything else is ignored. Returns the hint, or undefined.
 */
export async function waitForPush(
  fcmUrl: string,
  enrolment: Enrolment,
  home: DeviceHome,
  waitMs: number,
): Promise<'records' | 'devices' | undefined> {
  const deadline = Date.now() + waitMs;
  let after = enrolment.data.lastPushSeq;
  try {
    while (Date.now() < deadline) {
      const wait = Math.min(60_000, Math.max(0, deadline - Date.now()));
      const response = await fetch(
        `${fcmUrl}/_recorder/tokens/${encodeURIComponent(enrolment.data.fcmToken)}/messages?after=${after}&waitMs=${wait}`,
      );
      const answer = pollAnswerSchema.parse(await response.json());
      for (const message of answer.messages) {
        after = message.seq;
        const hint = pushDataSchema.safeParse(message.data);
        if (hint.success) return hint.data.hint;
      }
      after = Math.max(after, answer.lastSeq);
    }
    return undefined;
  } finally {
    await home.save({ ...enrolment.data, lastPushSeq: after });
  }
}

/** A file name safe to create in the output folder: no directories, nothing odd, no overwrite. */
export async function safeFileName(dir: string, proposed: string): Promise<string> {
  const cleaned =
    basename(proposed)
      .replace(/[\p{Cc}\p{Cf}/\\:*?"<>|]/gu, '_')
      .replace(/^\.+/, '_')
      .trim()
      .slice(0, 200) || 'record';
  const dot = cleaned.lastIndexOf('.');
  const [stem, extension] = dot > 0 ? [cleaned.slice(0, dot), cleaned.slice(dot)] : [cleaned, ''];
  for (let n = 0; ; n++) {
    const name = n === 0 ? cleaned : `${stem} (${n})${extension}`;
    const taken = await stat(join(dir, name)).then(
      () => true,
      () => false,
    );
    if (!taken) return name;
  }
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
  outDir: string,
  options: SyncOptions,
): Promise<SyncedRecord> {
  const temp = join(outDir, `.${recordId}.partial`);
  try {
    const response = await enrolment.api.raw({
      method: 'GET',
      target: `/records/v1/records/${recordId}/content`,
    });
    const total = Number(response.headers.get('content-length') ?? 0);
    const bytes = counted(responseBytes(response), total, options.onProgress);
    const opened = await openRecord(untilCut(bytes), {
      device: enrolment.keys,
      hospitalPublicKey: enrolment.hospitalKey,
      hospitalId: enrolment.data.hospitalId,
      recordId,
    });
    const out = createWriteStream(temp, { mode: 0o600 });
    try {
      for await (const piece of opened.file) {
        if (!out.write(piece)) await once(out, 'drain');
      }
    } finally {
      out.end();
      await once(out, 'close');
    }
    const name = await safeFileName(outDir, opened.header.filename);
    await rename(temp, join(outDir, name));
    const { filename: _filename, size: _size, ...about } = opened.header;
    await writeFile(join(outDir, `${name}.json`), `${JSON.stringify({ recordId, ...about }, null, 2)}\n`, {
      mode: 0o600,
    });
    return { recordId, outcome: 'stored', file: name };
  } catch (error) {
    await rm(temp, { force: true });
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
  outDir: string,
  options: SyncOptions = {},
): Promise<SyncedRecord[]> {
  await mkdir(outDir, { recursive: true, mode: 0o700 });
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
    const result = await fetchOne(enrolment, recordId, outDir, options);
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
