// Receipts (docs/PROTOCOL.md §5.4): ingest's signed verdict on each upload, read from the
// hospital's outbox and trusted only if it verifies with the pinned ingest key. A receipt that
// does not verify is reported as FORGED and never changes the journal.
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import {
  isProtocolError,
  receiptObjectName,
  verifyReceipt,
  type Receipt,
} from '../../shared/core/protocol/index.ts';
import type { Connector, JournalEntry } from './home.ts';

export type ReceiptStatus =
  | { readonly state: 'pending' }
  | { readonly state: 'forged' }
  | { readonly state: 'accepted'; readonly receipt: Receipt }
  | { readonly state: 'rejected'; readonly receipt: Receipt; readonly errorCode: string };

async function readAll(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return new Uint8Array(Buffer.concat(parts));
}

/** The verified receipt of one upload, if ingest has written it. */
export async function receiptFor(
  connector: Connector,
  blobs: BlobStore,
  uploadId: string,
): Promise<ReceiptStatus> {
  const bucket = connector.config.outboxBucket;
  const name = receiptObjectName(connector.hospitalId, uploadId);
  if (!(await blobs.stat(bucket, name))) return { state: 'pending' };
  let receipt: Receipt;
  try {
    receipt = verifyReceipt(await readAll(blobs.read(bucket, name)), connector.ingestKey);
  } catch (error) {
    if (isProtocolError(error)) return { state: 'forged' };
    throw error;
  }
  if (receipt.uploadId !== uploadId || receipt.hospitalId !== connector.hospitalId)
    return { state: 'forged' };
  return receipt.status === 'accepted'
    ? { state: 'accepted', receipt }
    : { state: 'rejected', receipt, errorCode: receipt.errorCode };
}

/** Polls until the receipt arrives (or the timeout passes: 'pending'). */
export async function waitForReceipt(
  connector: Connector,
  blobs: BlobStore,
  uploadId: string,
  timeoutMs: number,
): Promise<ReceiptStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await receiptFor(connector, blobs, uploadId);
    if (status.state !== 'pending' || Date.now() >= deadline) return status;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Checks every journaled upload still waiting, journals what arrived, and returns the journal. */
export async function refreshJournal(
  connector: Connector,
  blobs: BlobStore,
): Promise<{ entry: JournalEntry; forged: boolean }[]> {
  const results: { entry: JournalEntry; forged: boolean }[] = [];
  for (const entry of await connector.home.journal()) {
    if (entry.status !== 'sent') {
      results.push({ entry, forged: false });
      continue;
    }
    const status = await receiptFor(connector, blobs, entry.uploadId);
    if (status.state === 'accepted' || status.state === 'rejected') {
      const updated: JournalEntry = {
        ...entry,
        status: status.state,
        ...(status.state === 'rejected' ? { errorCode: status.errorCode } : {}),
      };
      await connector.home.record(updated);
      results.push({ entry: updated, forged: false });
    } else {
      results.push({ entry, forged: status.state === 'forged' });
    }
  }
  return results;
}
