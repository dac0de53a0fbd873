// How ingest answers a hospital and clears an upload (invariant 8; docs/PROTOCOL.md §5.4,
// §10.3): a signed receipt in the outbox, then the upload deleted, or for a rejected upload
// first copied to quarantine for hospital ICT. Receipts and quarantined copies expire.
import type { KeyPair } from '../core/crypto/index.ts';
import { receiptObjectName, signReceipt } from '../core/protocol/index.ts';
import { isBlobStoreError, type BlobInfo, type BlobStore } from '../ports/blob-store.ts';
import type { Clock } from '../ports/clock.ts';

/**
 * Defaults until per-hospital retention policy exists: a receipt outlives the connector's
 * polling by far, and a quarantined upload stays long enough for hospital ICT to look at it.
 */
export const INGEST_LIFETIMES = {
  receiptDays: 90,
  quarantineDays: 30,
} as const;

const DAY_MS = 24 * 3600 * 1000;

export interface UploadDisposalOptions {
  readonly blobs: BlobStore;
  readonly outboxBucket: string;
  readonly quarantineBucket: string;
  /** Ingest's own key pair: receipts are signed with it. */
  readonly keyPair: () => Promise<KeyPair>;
  readonly clock: Clock;
  readonly lifetimes: typeof INGEST_LIFETIMES;
  /** Larger uploads are not worth a copy: no valid container is that large. */
  readonly maxUploadBytes: number;
}

export interface UploadDisposal {
  /** Create-only: a receipt an earlier attempt wrote stands. */
  writeReceipt(hospitalId: string, uploadId: string, body: Parameters<typeof signReceipt>[0]): Promise<void>;
  /** Deletes exactly this generation of the upload. */
  deleteUpload(upload: BlobInfo): Promise<void>;
  /** Keeps a copy for hospital ICT (unless absurdly large), then removes the upload. */
  quarantine(upload: BlobInfo): Promise<void>;
}

export function createUploadDisposal(options: UploadDisposalOptions): UploadDisposal {
  const { blobs, clock, lifetimes } = options;
  const daysFromNow = (days: number) => new Date(clock.now().getTime() + days * DAY_MS);

  async function deleteUpload(upload: BlobInfo): Promise<void> {
    try {
      await blobs.delete(upload.bucket, upload.name, { ifGenerationMatch: upload.generation });
    } catch (error) {
      if (!isBlobStoreError(error, 'PRECONDITION_FAILED')) throw error; // replaced meanwhile: its own event follows
    }
  }

  return Object.freeze({
    async writeReceipt(hospitalId: string, uploadId: string, body: Parameters<typeof signReceipt>[0]) {
      const keyPair = await options.keyPair();
      try {
        await blobs.writeSmall(
          options.outboxBucket,
          receiptObjectName(hospitalId, uploadId),
          signReceipt(body, keyPair.privateKey),
          {
            createOnly: true,
            contentType: 'application/vnd.clinic-bridge.receipt',
            expiresAt: daysFromNow(lifetimes.receiptDays),
          },
        );
      } catch (error) {
        // Written by an earlier attempt (signatures are randomised, so the bytes differ).
        if (!isBlobStoreError(error, 'ALREADY_EXISTS')) throw error;
      }
    },

    deleteUpload,

    async quarantine(upload: BlobInfo) {
      if (upload.size <= options.maxUploadBytes) {
        try {
          await blobs.createOnly(
            options.quarantineBucket,
            upload.name,
            blobs.read(upload.bucket, upload.name, { generation: upload.generation }),
            { maxBytes: upload.size, expiresAt: daysFromNow(lifetimes.quarantineDays) },
          );
        } catch (error) {
          if (!isBlobStoreError(error, 'ALREADY_EXISTS') && !isBlobStoreError(error, 'NOT_FOUND'))
            throw error;
        }
      }
      await deleteUpload(upload);
    },
  });
}
