// The ingest function: a Storage finalize CloudEvent on the ingest bucket → the upload checked
// and filed, or quarantined with a rejection receipt (docs/PROTOCOL.md §10.3). A thin handler
// over shared/services/ingest.ts; this file is also its composition root. Returning normally
// acknowledges the event; throwing (transient failures only) makes Eventarc retry it.
import type { CloudEventFunction } from '@google-cloud/functions-framework';
import {
  createFirestoreDeviceStore,
  createFirestoreHospitalRegistry,
} from '../../shared/adapters/firestore-pairing.ts';
import { createFirestoreRecordStore } from '../../shared/adapters/firestore-records.ts';
import { functionKit } from '../../shared/adapters/function-kit.ts';
import type { Logger } from '../../shared/ports/logger.ts';
import type { FunctionDefinition, RuntimeContext } from '../../shared/runtime/function.ts';
import { createIngestService, type IngestService } from '../../shared/services/ingest.ts';

export function ingestHandler(service: IngestService, logger: Logger): CloudEventFunction {
  return async (event) => {
    await service.handle(event.data, logger.child({ operation: 'ingest' }));
  };
}

function compose(context: RuntimeContext): {
  service: IngestService;
  logger: Logger;
  warm: () => Promise<unknown>;
} {
  const kit = functionKit(context);
  const service = createIngestService({
    blobs: kit.blobs,
    records: createFirestoreRecordStore(kit.firestore),
    hospitals: createFirestoreHospitalRegistry(kit.firestore),
    devices: createFirestoreDeviceStore(kit.firestore),
    notifier: kit.notifier('records'),
    audit: kit.audit,
    keyPair: () => kit.keyPair(),
    clock: kit.clock,
    buckets: {
      ingest: kit.bucket('ingest'),
      records: kit.bucket('records'),
      outbox: kit.bucket('outbox'),
      quarantine: kit.bucket('quarantine'),
    },
  });
  return { service, logger: kit.logger, warm: () => kit.keyPair() };
}

export const definition: FunctionDefinition = {
  name: 'ingest',
  signature: 'cloudevent',
  async build(context): Promise<CloudEventFunction> {
    const { service, logger, warm } = compose(context);
    await warm(); // one KMS Decrypt per instance, at cold start
    return ingestHandler(service, logger);
  },
};
