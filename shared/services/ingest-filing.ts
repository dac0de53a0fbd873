// Filing an upload that passed its checks (invariants 7, 10; docs/PROTOCOL.md §10.3 step 6): the
// container is copied into the records bucket and its record created; the audit event of its
// creation (recordCreatedEvent) is appended by the caller alongside the receipt, as it depends on
// nothing but the record. Each write is create-only and recognises its own earlier attempt, so a
// retried event files the same record once.
import type { AuditEntry } from '../audit/log.ts';
import {
  CONTAINER_MEDIA_TYPE,
  formatTimestamp,
  ProtocolError,
  recordObjectName,
  type UploadContainer,
  type UploadManifest,
} from '../core/protocol/index.ts';
import { isBlobStoreError, type BlobInfo, type BlobStore } from '../ports/blob-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { RecordStore } from '../ports/record-store.ts';

export interface UploadFilingOptions {
  readonly blobs: BlobStore;
  readonly records: RecordStore;
  readonly clock: Clock;
  /** The records bucket. */
  readonly recordsBucket: string;
}

/**
 * Files the upload under its checked manifest (whose hospital and upload are the path's);
 * `created` is false when an earlier attempt of this upload already had.
 */
export type UploadFiling = (
  upload: BlobInfo,
  container: UploadContainer,
  manifest: UploadManifest,
) => Promise<{ stored: BlobInfo; created: boolean; acceptedAt: Date }>;

/** NEN 7513: the record's creation, logged once however often its upload is retried. */
export function recordCreatedEvent(manifest: UploadManifest, acceptedAt: Date): AuditEntry {
  return {
    fields: {
      at: formatTimestamp(acceptedAt),
      actor: { kind: 'hospital', id: manifest.hospitalId },
      action: 'record.created',
      hospitalId: manifest.hospitalId,
      patientRef: manifest.patientRef,
      recordId: manifest.recordId,
      operatorRef: manifest.operatorRef,
    },
    once: `ingest:${manifest.recordId}`,
  };
}

export function createUploadFiling(options: UploadFilingOptions): UploadFiling {
  const { blobs, clock } = options;

  /** Copies the container into the records bucket, committing only if every check passes. */
  async function fileContainer(
    upload: BlobInfo,
    container: UploadContainer,
    manifest: UploadManifest,
  ): Promise<BlobInfo> {
    const name = recordObjectName(manifest.hospitalId, manifest.recordId);
    try {
      return await blobs.createOnly(options.recordsBucket, name, container.bytes(), {
        contentType: CONTAINER_MEDIA_TYPE,
        maxBytes: container.size,
        expiresAt: new Date(manifest.expiresAt),
      });
    } catch (error) {
      if (!isBlobStoreError(error, 'ALREADY_EXISTS')) throw error;
      await container.close();
      // An earlier attempt of this same upload copied it already: identical bytes.
      const stored = await blobs.stat(options.recordsBucket, name);
      if (stored && stored.size === upload.size && stored.crc32c === upload.crc32c) return stored;
      throw new ProtocolError('RECORD_EXISTS');
    }
  }

  return async (upload, container, manifest) => {
    const { hospitalId, uploadId } = manifest;
    const stored = await fileContainer(upload, container, manifest);
    const { created, record } = await options.records.create({
      recordId: manifest.recordId,
      uploadId,
      hospitalId,
      patientRef: manifest.patientRef,
      contentClass: manifest.contentClass,
      createdAt: new Date(manifest.createdAt),
      expiresAt: new Date(manifest.expiresAt),
      acceptedAt: clock.now(),
      size: stored.size,
      objectName: stored.name,
      generation: stored.generation,
      recipients: manifest.recipients.map((recipient) => recipient.deviceId),
    });
    if (!created && record.uploadId !== uploadId) throw new ProtocolError('RECORD_EXISTS');
    return { stored, created, acceptedAt: record.acceptedAt };
  };
}
