// `cb-connector watch DIR`: the hospital's drop folder. A file placed in DIR/inbox/<patient
// number>/ is sent once its size has stopped changing, moved to DIR/sending/ while ingest
// decides, then to DIR/done/ when the receipt says accepted, or to DIR/failed/ with a
// <file>.reason.txt holding the error code (rejected by ingest, or refused by the connector,
// e.g. no verified device). Work survives a restart: the journal and the folders are the state.
// What it reports names uploads and records by their ids only: a patient number or a file name
// (which may carry a patient's name) never reaches a log line.
import { access, mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import { isProtocolError } from '../../shared/core/protocol/index.ts';
import { ApiError } from '../lib/api-client.ts';
import { sendFile, UploadError } from './deliver.ts';
import type { Connector } from './home.ts';
import { receiptFor } from './receipts.ts';

/** What one pass did to one file, for the hospital's monitoring: ids and codes, nothing else. */
export interface WatchEvent {
  /**
   * sent: uploaded, waiting for ingest; delivered / rejected: ingest's receipt; failed: refused
   * before sending; interrupted: the upload gave up for now and resumes on the next pass; missing: the journal waits on a file no longer in sending/ (settled from the
   * receipt alone, e.g. after a restore from a backup older than the folders).
   */
  readonly event: 'sent' | 'failed' | 'interrupted' | 'delivered' | 'rejected' | 'missing';
  readonly uploadId?: string;
  readonly recordId?: string;
  readonly code?: string;
}

export interface WatchOptions {
  readonly dir: string;
  readonly contentClass: 'document' | 'fhir' | 'imaging' | 'other';
  readonly expiresDays: number;
  /** A file counts as complete when its size is unchanged for this long. */
  readonly settleMs: number;
  readonly log: (event: WatchEvent) => void;
}

export interface WatchPass {
  readonly sent: number;
  readonly done: number;
  readonly failed: number;
  /** Uploads still waiting for a receipt. */
  readonly waiting: number;
  /** Uploads that gave up for now (the service unreachable, say): resumed by the next pass. */
  readonly interrupted: number;
}

async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (entry.isFile() && !entry.name.startsWith('.')) found.push(join(entry.parentPath, entry.name));
  }
  return found.sort();
}

async function moveTo(from: string, to: string): Promise<string> {
  await mkdir(dirname(to), { recursive: true });
  await rename(from, to);
  return to;
}

async function settled(path: string, settleMs: number): Promise<boolean> {
  const before = await stat(path);
  if (settleMs > 0) await new Promise((resolve) => setTimeout(resolve, settleMs));
  const after = await stat(path);
  return before.size === after.size && before.mtimeMs === after.mtimeMs;
}

/** One pass over the folders: send what is new, settle what has a receipt. */
export async function watchOnce(
  connector: Connector,
  blobs: BlobStore,
  options: WatchOptions,
): Promise<WatchPass> {
  const inbox = join(options.dir, 'inbox');
  const sending = join(options.dir, 'sending');
  let sent = 0;
  let done = 0;
  let failed = 0;
  let interrupted = 0;

  for (const path of await filesUnder(inbox)) {
    const parts = relative(inbox, path).split(sep);
    if (parts.length !== 2) continue; // inbox/<patient number>/<file> only
    if (!(await settled(path, options.settleMs))) continue;
    const [patientNumber, name] = parts as [string, string];
    const staged = await moveTo(path, join(sending, patientNumber, name));
    try {
      const { entry } = await sendFile(connector, blobs, {
        file: staged,
        patientNumber,
        contentClass: options.contentClass,
        expiresDays: options.expiresDays,
        now: new Date(),
      });
      sent++;
      options.log({ event: 'sent', uploadId: entry.uploadId, recordId: entry.recordId });
    } catch (error) {
      if (error instanceof UploadError) {
        // Sealed and journalled as pending in the connector's home: the file stays in sending/
        // and the next pass's recovery resumes the upload where it stopped.
        options.log({ event: 'interrupted', code: error.code });
        interrupted++;
        continue;
      }
      const code = isProtocolError(error) || error instanceof ApiError ? error.code : undefined;
      if (code === undefined) throw error;
      await fail(staged, join(options.dir, 'failed', patientNumber, name), code);
      failed++;
      options.log({ event: 'failed', code });
    }
  }

  let waiting = 0;
  for (const entry of await connector.home.journal()) {
    if (entry.status !== 'sent' || !entry.file.startsWith(`${sending}${sep}`)) continue;
    const status = await receiptFor(connector, blobs, entry.uploadId);
    if (status.state === 'pending' || status.state === 'forged') {
      waiting++;
      continue;
    }
    const ids = { uploadId: entry.uploadId, recordId: entry.recordId };
    const tail = relative(sending, entry.file);
    const present = await access(entry.file).then(
      () => true,
      () => false,
    );
    if (!present) {
      // The receipt still settles the journal; there is no file left to move.
      const code = status.state === 'accepted' ? undefined : status.errorCode;
      await connector.home.record(
        code === undefined
          ? { ...entry, status: 'accepted' }
          : { ...entry, status: 'rejected', errorCode: code },
      );
      options.log({ event: 'missing', ...ids, ...(code === undefined ? {} : { code }) });
      if (code === undefined) done++;
      else failed++;
      continue;
    }
    if (status.state === 'accepted') {
      const final = await moveTo(entry.file, join(options.dir, 'done', tail));
      await connector.home.record({ ...entry, file: final, status: 'accepted' });
      done++;
      options.log({ event: 'delivered', ...ids });
    } else {
      const final = join(options.dir, 'failed', tail);
      await fail(entry.file, final, status.errorCode);
      await connector.home.record({ ...entry, file: final, status: 'rejected', errorCode: status.errorCode });
      failed++;
      options.log({ event: 'rejected', ...ids, code: status.errorCode });
    }
  }
  return { sent, done, failed, waiting, interrupted };
}

async function fail(from: string, to: string, code: string): Promise<void> {
  await moveTo(from, to);
  await writeFile(`${to}.reason.txt`, `${code}\n`);
}
