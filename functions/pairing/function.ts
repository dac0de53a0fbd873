// The pairing function: invitations from hospitals, pairing of devices, the hospital's view of
// a patient's devices and revocation (docs/PROTOCOL.md §9.1). A thin handler over
// shared/services/pairing.ts; this file is also its composition root.
import type { HttpFunction } from '@google-cloud/functions-framework';
import { cloudLogger } from '../../shared/adapters/cloud-logger.ts';
import { systemClock } from '../../shared/adapters/clock.ts';
import { createFcmNotifier } from '../../shared/adapters/fcm-notifier.ts';
import { createFirestorePairingStores } from '../../shared/adapters/firestore-pairing.ts';
import { ownFunctionKeys } from '../../shared/adapters/function-keys.ts';
import { createBlobStore } from '../../shared/adapters/blob-store.ts';
import { createFirestoreAuditLog } from '../../shared/adapters/firestore-audit.ts';
import { createFirestorePurgeStore } from '../../shared/adapters/firestore-purge.ts';
import { createFirestoreRecordStore } from '../../shared/adapters/firestore-records.ts';
import { createFirestore, createStorage } from '../../shared/adapters/google-clients.ts';
import { createApiFunction, type ApiRequest } from '../../shared/http/api-function.ts';
import type { Logger } from '../../shared/ports/logger.ts';
import { ProtocolError } from '../../shared/core/protocol/error-codes.ts';
import { bucketName, loadCatalog } from '../../shared/runtime/catalog.ts';
import type { FunctionDefinition, RuntimeContext } from '../../shared/runtime/function.ts';
import { createPairingService, type PairingService } from '../../shared/services/pairing.ts';
import { createRecallService, type RecallService } from '../../shared/services/recall.ts';
import { signingTarget, type SignedCall } from '../../shared/services/signed-call.ts';

/** The versioned prefix request signatures cover: /pairing/v1/… */
const SIGNING_PREFIX = '/pairing';

/** The signed call for a request; the pairing API takes no query parameters. */
function signedCall(request: ApiRequest): SignedCall {
  if (request.rawQuery !== '') throw new ProtocolError('INVALID_REQUEST');
  return {
    method: request.method,
    target: signingTarget(SIGNING_PREFIX, request.path, request.rawQuery),
    headers: request.headers,
    body: request.rawBody,
    logger: request.logger,
  };
}

export function pairingHandler(service: PairingService, recall: RecallService, logger: Logger): HttpFunction {
  return createApiFunction({
    logger,
    routes: [
      {
        method: 'POST',
        path: '/v1/invitations',
        handle: async (r) => ({ status: 201, body: await service.createInvitation(signedCall(r)) }),
      },
      {
        method: 'POST',
        path: '/v1/pair',
        handle: async (r) => {
          if (Object.keys(r.query).length > 0) throw new ProtocolError('INVALID_REQUEST');
          return { status: 201, body: await service.pair(r.rawBody, r.logger) };
        },
      },
      {
        method: 'GET',
        path: '/v1/patients/:patientRef/devices',
        handle: async (r) => ({
          status: 200,
          body: await service.listDevices(signedCall(r), r.params.patientRef ?? ''),
        }),
      },
      {
        method: 'POST',
        path: '/v1/devices/:deviceId/revoke',
        handle: async (r) => ({
          status: 200,
          body: await service.revokeDevice(signedCall(r), r.params.deviceId ?? ''),
        }),
      },
      {
        method: 'POST',
        path: '/v1/records/:recordId/recall',
        handle: async (r) => ({
          status: 200,
          body: await recall.recall(signedCall(r), r.params.recordId ?? ''),
        }),
      },
    ],
  });
}

function compose(context: RuntimeContext): {
  service: PairingService;
  recall: RecallService;
  logger: Logger;
  warm: () => Promise<unknown>;
} {
  const catalog = loadCatalog();
  const firestore = createFirestore(context.projectId, context.env);
  const keys = ownFunctionKeys(context, firestore, catalog);
  const logger = cloudLogger({ functionName: context.functionName, projectId: context.projectId });
  const stores = createFirestorePairingStores(firestore);
  const audit = createFirestoreAuditLog(firestore);
  const notifier = createFcmNotifier({
    projectId: context.projectId,
    env: context.env,
    collapseKey: 'devices',
  });
  const service = createPairingService({
    stores,
    clock: systemClock,
    keyPair: () => keys.keyPair(),
    notifier,
    audit,
  });
  const recall = createRecallService({
    stores,
    records: createFirestoreRecordStore(firestore),
    purge: createFirestorePurgeStore(firestore),
    blobs: createBlobStore(createStorage(context.projectId, context.env)),
    recordsBucket: bucketName(catalog, 'records', context.projectId),
    audit,
    clock: systemClock,
    notifier,
    signingKey: async () => (await keys.keyPair()).privateKey,
  });
  return { service, recall, logger, warm: () => keys.keyPair() };
}

export const definition: FunctionDefinition = {
  name: 'pairing',
  signature: 'http',
  async build(context): Promise<HttpFunction> {
    const { service, recall, logger, warm } = compose(context);
    await warm(); // one KMS Decrypt per instance, at cold start
    return pairingHandler(service, recall, logger);
  },
};
