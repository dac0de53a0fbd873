// Deletion receipts (PROTOCOL.md §5.5): a full run's worth of ids signs and verifies, any change
// to the signed bytes or a different key is refused, and the size bound holds.
import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../shared/core/crypto/index.ts';
import {
  deletionCounts,
  deletionReceiptFromText,
  MAX_DELETIONS_PER_RECEIPT,
  newRandomId,
  signDeletionReceipt,
  toBase64Url,
  verifyDeletionReceipt,
  type DeletionReceipt,
} from '../../shared/core/protocol/index.ts';

function receipt(records: number): DeletionReceipt {
  return {
    type: 'cb/deletion-receipt/v1',
    reason: 'retention',
    jobId: 'retention-2031-01-01T02:17:00.000Z',
    startedAt: '2031-01-01T02:17:01Z',
    finishedAt: '2031-01-01T02:19:30Z',
    complete: true,
    deleted: {
      records: Array.from({ length: records }, () => newRandomId()),
      invitations: [newRandomId()],
      devices: [],
      uploads: ['hospitals/st-x-zh/uploads/AAAAAAAAAAAAAAAAAAAAAA.cbr'],
      quarantined: [],
      orphans: [],
    },
  };
}

describe('deletion receipts', () => {
  it('a run of the largest size signs, travels as text and verifies with the signer key only', () => {
    const key = generateKeyPair();
    const body = receipt(MAX_DELETIONS_PER_RECEIPT - 2);
    const signed = signDeletionReceipt(body, key.privateKey);
    const verified = verifyDeletionReceipt(deletionReceiptFromText(toBase64Url(signed)), key.publicKey);
    expect(verified).toEqual(body);
    expect(deletionCounts(verified)).toMatchObject({ records: MAX_DELETIONS_PER_RECEIPT - 2, uploads: 1 });
    expect(() => verifyDeletionReceipt(signed, generateKeyPair().publicKey)).toThrow(
      expect.objectContaining({ code: 'SIGNATURE_INVALID' }),
    );
  });

  it('a changed id, count or flag is refused', () => {
    const key = generateKeyPair();
    const signed = signDeletionReceipt(receipt(3), key.privateKey);
    const text = Buffer.from(signed).toString('latin1');
    for (const [from, to] of [
      ['"complete":true', '"complete":fals'],
      ['"reason":"retention"', '"reason":"retentioN"'],
    ] as const) {
      const forged = new Uint8Array(Buffer.from(text.replace(from, to.padEnd(from.length, ' ')), 'latin1'));
      expect(() => verifyDeletionReceipt(forged, key.publicKey)).toThrow();
    }
  });

  it('more ids than a run may delete is refused before signing', () => {
    const key = generateKeyPair();
    expect(() => signDeletionReceipt(receipt(MAX_DELETIONS_PER_RECEIPT + 1), key.privateKey)).toThrow(
      expect.objectContaining({ code: 'INVALID_REQUEST' }),
    );
    expect(() => deletionReceiptFromText('not base64url!')).toThrow(
      expect.objectContaining({ code: 'DOCUMENT_INVALID' }),
    );
  });
});
