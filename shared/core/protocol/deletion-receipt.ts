// Deletion receipts (docs/PROTOCOL.md §10): proof of what a retention run, a patient's erasure
// or a hospital's recall deleted, signed by the function that did it with its own key, so anyone
// holding the published public key can check it and the database alone cannot forge it. Ids only,
// never content: record, invitation and device ids, and object names of blobs without metadata.
import { z } from 'zod';
import type { PrivateKey, PublicKey } from '../crypto/index.ts';
import { fromBase64Url } from './encoding.ts';
import { ProtocolError } from './error-codes.ts';
import { hospitalIdSchema, patientRefSchema, timestampSchema } from './ids.ts';
import { readDocumentUnverified, signDocument, verifyDocument } from './signed-document.ts';

export const DELETION_RECEIPT_TYPE = 'cb/deletion-receipt/v1';

/**
 * A run deletes at most this many items, so that its receipt — up to this many object names of
 * about 90 bytes each — stays one stored document under Firestore's 1 MiB limit.
 */
export const MAX_DELETIONS_PER_RECEIPT = 10_000;
/** Below Firestore's 1 MiB document limit, where the receipt is kept. */
const MAX_RECEIPT_BYTES = 1000 * 1024;

const idList = z.array(z.string().min(1).max(200)).max(MAX_DELETIONS_PER_RECEIPT);

export const deletionReceiptSchema = z.strictObject({
  type: z.literal(DELETION_RECEIPT_TYPE),
  reason: z.enum(['retention', 'erasure', 'recall']),
  jobId: z.string().regex(/^[A-Za-z0-9_.:-]{1,200}$/),
  /** Erasure and recall act for one hospital (and erasure for one patient). */
  hospitalId: hospitalIdSchema.optional(),
  patientRef: patientRefSchema.optional(),
  startedAt: timestampSchema,
  finishedAt: timestampSchema,
  /** False when the run stopped at its budget; the next run continues. */
  complete: z.boolean(),
  /** Audit events past their retention (NEN 7513: at least five years), retention runs only. */
  prunedAuditEvents: z.int().min(0).optional(),
  deleted: z.strictObject({
    records: idList,
    invitations: idList,
    devices: idList,
    uploads: idList,
    quarantined: idList,
    orphans: idList,
  }),
});
export type DeletionReceipt = z.output<typeof deletionReceiptSchema>;

export function signDeletionReceipt(receipt: DeletionReceipt, key: PrivateKey): Uint8Array {
  return signDocument(deletionReceiptSchema, receipt, key, { maxBytes: MAX_RECEIPT_BYTES });
}

export function verifyDeletionReceipt(signed: Uint8Array, publicKey: PublicKey): DeletionReceipt {
  return verifyDocument(signed, publicKey, DELETION_RECEIPT_TYPE, deletionReceiptSchema, {
    maxBytes: MAX_RECEIPT_BYTES,
  });
}

/** How many items of each kind a receipt names. */
export function deletionCounts(receipt: DeletionReceipt): Record<keyof DeletionReceipt['deleted'], number> {
  const d = receipt.deleted;
  return {
    records: d.records.length,
    invitations: d.invitations.length,
    devices: d.devices.length,
    uploads: d.uploads.length,
    quarantined: d.quarantined.length,
    orphans: d.orphans.length,
  };
}

/** The receipt's content WITHOUT checking its signature: only for handing back a stored receipt. */
export function readDeletionReceiptUnverified(signed: Uint8Array): DeletionReceipt {
  return readDocumentUnverified(signed, DELETION_RECEIPT_TYPE, deletionReceiptSchema, {
    maxBytes: MAX_RECEIPT_BYTES,
  });
}

/** A deletion receipt's signed form from its base64url text (as APIs carry it). */
export function deletionReceiptFromText(text: string): Uint8Array {
  const bytes = fromBase64Url(text);
  if (bytes === undefined || bytes.length === 0 || bytes.length > MAX_RECEIPT_BYTES + 1024) {
    throw new ProtocolError('DOCUMENT_INVALID', 'not a deletion receipt');
  }
  return bytes;
}
