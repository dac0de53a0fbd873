// `cb-connector watch DIR`: the hospital's drop folder. A file placed in DIR/inbox/<patient
// number>/ is sent once its size has stopped changing, moved to DIR/sending/ while ingest
// decides, then to DIR/done/ when the receipt says accepted, or to DIR/failed/ with a
// <file>.reason.txt holding the error code (rejected by ingest, or refused by the connector,
// e.g. no verified device). Work survives a restart: the journal and the folders are the state.
import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import { isProtocolError } from '../../shared/core/protocol/index.ts';
import { ApiError } from '../lib/api-client.ts';
import { sendFile } from './deliver.ts';
import type { Connector } from './home.ts';
import { receiptFor } from './receipts.ts';

export interface WatchOptions {
  readonly dir: string;
  readonly contentClass: 'document' | 'fhir' | 'imaging' | 'other';
  readonly expiresDays: number;
  /** A file counts as complete when its size is unchanged for this long. */
  readonly settleMs: number;
  readonly log: (line: string) => void;
}

export interface WatchPass {
  readonly sent: number;
  readonly done: number;
  readonly failed: number;
  /** Uploads still waiting for a receipt. */
  readonly waiting: number;
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
      options.log(`sent ${patientNumber}/${name} as upload ${entry.uploadId}`);
    } catch (error) {
      const code = isProtocolError(error) || error instanceof ApiError ? error.code : undefined;
      if (code === undefined) throw error;
      await fail(staged, join(options.dir, 'failed', patientNumber, name), code);
      failed++;
      options.log(`failed ${patientNumber}/${name}: ${code}`);
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
    const tail = relative(sending, entry.file);
    if (status.state === 'accepted') {
      const final = await moveTo(entry.file, join(options.dir, 'done', tail));
      await connector.home.record({ ...entry, file: final, status: 'accepted' });
      done++;
      options.log(`delivered ${tail}`);
    } else {
      const final = join(options.dir, 'failed', tail);
      await fail(entry.file, final, status.errorCode);
      await connector.home.record({ ...entry, file: final, status: 'rejected', errorCode: status.errorCode });
      failed++;
      options.log(`rejected ${tail}: ${status.errorCode}`);
    }
  }
  return { sent, done, failed, waiting };
}

async function fail(from: string, to: string, code: string): Promise<void> {
  await moveTo(from, to);
  await writeFile(`${to}.reason.txt`, `${code}\n`);
}
