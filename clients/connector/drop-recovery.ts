// What the drop folder (watch.ts) does once when it starts, so that a connector that crashed
// mid-file neither loses the file nor sends it twice. watch.ts moves a file from inbox/ to
// sending/ before sealing it, and only the journal says that sending/ file went up; after a
// crash a file in sending/ is in one of three states:
//   sealed, its upload pending in <home>/uploads/   → the upload is resumed from its session and
//                                                     journalled; the watch loop then waits for
//                                                     its receipt as for any other
//   journalled                                      → nothing to do (the watch loop settles it)
//   neither (the crash came before the seal ended)  → nothing reached the cloud: back to inbox/
// A pending upload sealed for a device that is no longer verified is dropped unsent, and its
// file goes back to inbox/ too, to be sealed for the devices there are now. One whose upload
// fails again stays pending in sending/. Safe to call before every pass of a single watcher
// (between passes nothing is half sealed); two watchers on one folder are not supported. Its log
// lines name uploads by id only: a patient number or a file name never reaches them.
import { mkdir, readdir, rename } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import { resumePendingUploads, type UploadSettings } from './deliver.ts';
import type { Connector } from './home.ts';
import { sweepAbandonedSeals } from './pending-uploads.ts';

/** A seal untouched this long belongs to no live process. */
const ABANDONED_SEAL_MS = 10 * 60 * 1000;

export interface DropRecovery {
  /** Uploads finished now (sent before the crash, or resumed). */
  readonly resumed: number;
  /** Uploads that could not finish now; their files stay in sending/ for the next recovery. */
  readonly pending: number;
  /** Files moved back to inbox/ to be sent (again: nothing of them went up). */
  readonly requeued: number;
}

export async function recoverDropFolder(
  connector: Connector,
  blobs: BlobStore,
  options: { readonly dir: string; readonly log: (line: string) => void; readonly upload?: UploadSettings },
): Promise<DropRecovery> {
  const sending = resolve(options.dir, 'sending');
  const inbox = resolve(options.dir, 'inbox');
  const { finished, dropped, waiting } = await resumePendingUploads(connector, blobs, {
    ...(options.upload ? { upload: options.upload } : {}),
  });
  for (const entry of finished) {
    options.log(`resumed upload ${entry.uploadId} after a restart`);
  }
  // Still pending: stays in sending/, and the next recovery (or a send of it) resumes it.
  const stillPending = new Set(waiting.map(({ entry }) => resolve(entry.file)));
  for (const { entry, code } of waiting) options.log(`upload ${entry.uploadId} still pending: ${code}`);
  await sweepAbandonedSeals(connector.home, ABANDONED_SEAL_MS);

  const journalled = new Set((await connector.home.journal()).map((entry) => resolve(entry.file)));
  const droppedFiles = new Set(dropped.map((entry) => resolve(entry.file)));
  let requeued = 0;
  for (const path of await filesUnder(sending)) {
    if (stillPending.has(path) || (journalled.has(path) && !droppedFiles.has(path))) continue;
    const tail = relative(sending, path);
    if (tail.split(sep).length !== 2) continue;
    const back = join(inbox, tail);
    await mkdir(dirname(back), { recursive: true });
    await rename(path, back);
    requeued++;
    options.log('requeued a file that was not sent before the restart');
  }
  return { resumed: finished.length, pending: waiting.length, requeued };
}

async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true, recursive: true });
    return entries
      .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
      .map((entry) => resolve(entry.parentPath, entry.name))
      .sort();
  } catch {
    return [];
  }
}
