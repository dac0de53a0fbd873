// The records function: a paired device lists, downloads and acknowledges its records and
// manages its patient's devices, every call signed by the device key (docs/PROTOCOL.md §9.2).
// A thin handler over shared/services/records.ts; this file is also its composition root.
// Content streams from Cloud Storage to the device, so a large record never sits whole in memory.
import type { HttpFunction } from '@google-cloud/functions-framework';
import { createBlobStore } from '../../shared/adapters/blob-store.ts';
import { cloudLogger } from '../../shared/adapters/cloud-logger.ts';
import { systemClock } from '../../shared/adapters/clock.ts';
import { createFcmNotifier } from '../../shared/adapters/fcm-notifier.ts';
import {
  createFirestoreDeviceStore,
  createFirestoreNonceStore,
} from '../../shared/adapters/firestore-pairing.ts';
import { createFirestoreAuditLog } from '../../shared/adapters/firestore-audit.ts';
import { createFirestorePurgeStore } from '../../shared/adapters/firestore-purge.ts';
import { createFirestoreRecordStore } from '../../shared/adapters/firestore-records.ts';
import { ownFunctionKeys } from '../../shared/adapters/function-keys.ts';
import { createFirestore, createStorage } from '../../shared/adapters/google-clients.ts';
import { createApiFunction, type ApiRequest } from '../../shared/http/api-function.ts';
import type { Logger } from '../../shared/ports/logger.ts';
import { ProtocolError } from '../../shared/core/protocol/error-codes.ts';
import { bucketName, loadCatalog } from '../../shared/runtime/catalog.ts';
import type { FunctionDefinition, RuntimeContext } from '../../shared/runtime/function.ts';
import { createRecordsService, type RecordsService } from '../../shared/services/records.ts';
import { signingTarget, type SignedCall } from '../../shared/services/signed-call.ts';

/** The versioned prefix request signatures cover: /records/v1/… */
const SIGNING_PREFIX = '/records';

function signedCall(request: ApiRequest): SignedCall {
  return {
    method: request.method,
    target: signingTarget(SIGNING_PREFIX, request.path, request.rawQuery),
    headers: request.headers,
    body: request.rawBody,
    logger: request.logger,
  };
}

/** Endpoints that take no query parameters refuse any (they would be signed but meaningless). */
function withoutQuery(request: ApiRequest): SignedCall {
  if (request.rawQuery !== '') throw new ProtocolError('INVALID_REQUEST');
  return signedCall(request);
}

/**
 * `publicKey` is the records function's own: devices keep it at pairing to check erasure
 * receipts (unsigned on purpose: the device has no key to sign with before it pairs).
 */
export function recordsHandler(
  service: RecordsService,
  logger: Logger,
  publicKey: () => Promise<string>,
): HttpFunction {
  return createApiFunction({
    logger,
    routes: [
      {
        method: 'GET',
        path: '/v1/records',
        handle: async (r) => ({ status: 200, body: await service.list(signedCall(r), r.query) }),
      },
      {
        method: 'GET',
        path: '/v1/records/:recordId/content',
        handle: async (r) => {
          const content = await service.content(withoutQuery(r), r.params.recordId ?? '');
          return {
            status: 200,
            stream: content.bytes,
            headers: { 'content-type': content.contentType, 'content-length': String(content.size) },
          };
        },
      },
      {
        method: 'POST',
        path: '/v1/records/:recordId/ack',
        handle: async (r) => ({
          status: 200,
          body: await service.acknowledge(withoutQuery(r), r.params.recordId ?? ''),
        }),
      },
      {
        method: 'GET',
        path: '/v1/devices',
        handle: async (r) => ({ status: 200, body: await service.listDevices(withoutQuery(r)) }),
      },
      {
        method: 'POST',
        path: '/v1/devices/:deviceId/revoke',
        handle: async (r) => ({
          status: 200,
          body: await service.revokeDevice(withoutQuery(r), r.params.deviceId ?? ''),
        }),
      },
      {
        method: 'GET',
        path: '/v1/signing-key',
        handle: async (r) => {
          if (r.rawQuery !== '') throw new ProtocolError('INVALID_REQUEST');
          return { status: 200, body: { publicKey: await publicKey() } };
        },
      },
      {
        method: 'GET',
        path: '/v1/access-log',
        handle: async (r) => ({ status: 200, body: await service.accessLog(signedCall(r), r.query) }),
      },
      {
        method: 'POST',
        path: '/v1/patient/erase',
        handle: async (r) => ({ status: 200, body: await service.erase(withoutQuery(r)) }),
      },
      {
        method: 'PUT',
        path: '/v1/devices/self/push-token',
        handle: async (r) => {
          await service.setPushToken(withoutQuery(r));
          return { status: 204 };
        },
      },
    ],
  });
}

function compose(context: RuntimeContext): {
  service: RecordsService;
  logger: Logger;
  publicKey: () => Promise<string>;
  warm: () => Promise<unknown>;
} {
  const catalog = loadCatalog();
  const firestore = createFirestore(context.projectId, context.env);
  // The records function signs erasure receipts with its own key, unwrapped at cold start.
  const keys = ownFunctionKeys(context, firestore, catalog);
  const service = createRecordsService({
    audit: createFirestoreAuditLog(firestore),
    purge: createFirestorePurgeStore(firestore),
    signingKey: async () => (await keys.keyPair()).privateKey,
    records: createFirestoreRecordStore(firestore),
    devices: createFirestoreDeviceStore(firestore),
    nonces: createFirestoreNonceStore(firestore),
    blobs: createBlobStore(createStorage(context.projectId, context.env)),
    bucket: bucketName(catalog, 'records', context.projectId),
    outboxBucket: bucketName(catalog, 'outbox', context.projectId),
    clock: systemClock,
    notifier: createFcmNotifier({ projectId: context.projectId, env: context.env, collapseKey: 'devices' }),
  });
  const logger = cloudLogger({ functionName: context.functionName, projectId: context.projectId });
  const publicKey = async () => (await keys.keyPair()).publicKey.toBase64Url();
  return { service, logger, publicKey, warm: () => keys.keyPair() };
}

export const definition: FunctionDefinition = {
  name: 'records',
  signature: 'http',
  async build(context): Promise<HttpFunction> {
    const { service, logger, publicKey, warm } = compose(context);
    await warm();
    return recordsHandler(service, logger, publicKey);
  },
};
