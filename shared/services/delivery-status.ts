// Delivery status: a hospital asks what became of one record it sent — which devices it was
// sealed for and which of them acknowledged it (stored, or failed with the device's code). Only
// ids, times and codes: no content, no patient. Another hospital's record and an unknown one are
// both NOT_FOUND, as for recall, so the answer never tells whether a record id exists elsewhere.
import type { deliveryStatusResponseSchema } from '../core/protocol/index.ts';
import { formatTimestamp, parseBoundary, ProtocolError, recordIdSchema } from '../core/protocol/index.ts';
import type { z } from 'zod';
import type { Clock } from '../ports/clock.ts';
import type { PairingStores } from '../ports/pairing-store.ts';
import type { RecordStore } from '../ports/record-store.ts';
import { createHospitalCaller, type SignedCall } from './signed-call.ts';

export interface DeliveryStatusService {
  status(call: SignedCall, recordId: string): Promise<z.output<typeof deliveryStatusResponseSchema>>;
}

export function createDeliveryStatusService(options: {
  readonly stores: Pick<PairingStores, 'hospitals' | 'nonces'>;
  readonly records: RecordStore;
  readonly clock: Clock;
}): DeliveryStatusService {
  const hospitalOf = createHospitalCaller({
    hospitals: options.stores.hospitals,
    nonces: options.stores.nonces,
    clock: options.clock,
  });
  return Object.freeze({
    async status(call: SignedCall, recordId: string) {
      const id = parseBoundary(recordIdSchema, recordId);
      if (call.body.length > 0) throw new ProtocolError('INVALID_REQUEST', 'no body expected');
      const hospitalId = await hospitalOf(call);
      const record = await options.records.get(id);
      if (!record || record.hospitalId !== hospitalId) throw new ProtocolError('NOT_FOUND');
      return {
        recordId: id,
        acceptedAt: formatTimestamp(record.acceptedAt),
        recipients: record.recipients.map((deviceId) => {
          const ack = record.acks[deviceId];
          return {
            deviceId,
            ...(ack
              ? {
                  acknowledged: {
                    outcome: ack.outcome,
                    ...(ack.errorCode ? { errorCode: ack.errorCode } : {}),
                    at: formatTimestamp(ack.at),
                  },
                }
              : {}),
          };
        }),
      };
    },
  });
}
