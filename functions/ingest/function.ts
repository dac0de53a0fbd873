// The ingest function: a Storage finalize CloudEvent on the ingest bucket → the upload checked
// and filed, or quarantined with a rejection receipt (docs/PROTOCOL.md §10.3). A thin handler
// over shared/services/ingest.ts; this file is also its composition root. Returning normally
// acknowledges the event; throwing (transient failures only) makes Eventarc retry it.
import type { CloudEventFunction } from '@google-cloud/functions-framework';
import { createFirestoreAuditLog } from '../../shared/adapters/firestore-audit.ts';
import { createBlobStore } from '../../shared/adapters/blob-store.ts';
import { cloudLogger } from '../../shared/adapters/cloud-logger.ts';
import { systemClock } from '../../shared/adapters/clock.ts';
import { createFcmNotifier } from '../../shared/adapters/fcm-notifier.ts';
import {
  createFirestoreDeviceStore,
  createFirestoreHospitalRegistry,
} from '../../shared/adapters/firestore-pairing.ts';
import { createFirestoreRecordStore } from '../../shared/adapters/firestore-records.ts';
import { ownFunctionKeys } from '../../shared/adapters/function-keys.ts';
import { createFirestore, createStorage } from '../../shared/adapters/google-clients.ts';
import type { Logger } from '../../shared/ports/logger.ts';
import { bucketName, loadCatalog } from '../../shared/runtime/catalog.ts';
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
  const catalog = loadCatalog();
  const firestore = createFirestore(context.projectId, context.env);
  const keys = ownFunctionKeys(context, firestore, catalog);
  const bucket = (role: string) => bucketName(catalog, role, context.projectId);
  const service = createIngestService({
    blobs: createBlobStore(createStorage(context.projectId, context.env)),
    records: createFirestoreRecordStore(firestore),
    hospitals: createFirestoreHospitalRegistry(firestore),
    devices: createFirestoreDeviceStore(firestore),
    notifier: createFcmNotifier({ projectId: context.projectId, env: context.env, collapseKey: 'records' }),
    audit: createFirestoreAuditLog(firestore),
    keyPair: () => keys.keyPair(),
    clock: systemClock,
    buckets: {
      ingest: bucket('ingest'),
      records: bucket('records'),
      outbox: bucket('outbox'),
      quarantine: bucket('quarantine'),
    },
  });
  const logger = cloudLogger({ functionName: context.functionName, projectId: context.projectId });
  return { service, logger, warm: () => keys.keyPair() };
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
