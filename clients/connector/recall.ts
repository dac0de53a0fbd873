// Recalling a record this hospital sent, for the bin and the console alike: the cloud deletes it
// and answers with a deletion receipt signed by the pairing function, which must name this record;
// the journal then says "recalled", so every view of what was sent (receipts, the console) shows
// it whoever recalled it.
import {
  deletionReceiptFromText,
  deletionResponseSchema,
  verifyDeletionReceipt,
} from '../../shared/core/protocol/index.ts';
import type { Connector } from './home.ts';

export class RecallReceiptMismatch extends Error {
  readonly code = 'RECALL_RECEIPT_MISMATCH';

  constructor() {
    super('the recall receipt does not name this record');
  }
}

/** Recalls `recordId`; returns when its receipt verified. A retry gets the same receipt. */
export async function recallRecord(connector: Connector, recordId: string): Promise<{ finishedAt: string }> {
  const { receipt } = await connector.api.call(
    {
      method: 'POST',
      target: `/pairing/v1/records/${recordId}/recall`,
      json: { operatorRef: connector.operator.operatorRef },
    },
    deletionResponseSchema,
  );
  const verified = verifyDeletionReceipt(deletionReceiptFromText(receipt), connector.pairingKey);
  if (verified.reason !== 'recall' || !verified.deleted.records.includes(recordId)) {
    throw new RecallReceiptMismatch();
  }
  const sent = (await connector.home.journal()).find((entry) => entry.recordId === recordId);
  if (sent && sent.status !== 'recalled') await connector.home.record({ ...sent, status: 'recalled' });
  return { finishedAt: verified.finishedAt };
}
