// The records function: a paired device lists, downloads and acknowledges its records and
// manages its patient's devices, every call signed by the device key (docs/PROTOCOL.md §9.2).
// A thin handler over shared/services/ (records, own-devices, access-log, erasure); this file
// is also their composition root.
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
import { createAccessLogService, type AccessLogService } from '../../shared/services/access-log.ts';
import { createDeviceCaller } from '../../shared/services/device-caller.ts';
import { createErasureService, type ErasureService } from '../../shared/services/erasure.ts';
import { createOwnDevicesService, type OwnDevicesService } from '../../shared/services/own-devices.ts';
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

/** What the records function serves, one service per concern. */
export interface RecordsServices {
  readonly records: RecordsService;
  readonly devices: OwnDevicesService;
  readonly accessLog: AccessLogService;
  readonly erasure: ErasureService;
}

/**
 * `publicKey` is the records function's own: devices keep it at pairing to check erasure
 * receipts (unsigned on purpose: the device has no key to sign with before it pairs).
 */
export function recordsHandler(
  services: RecordsServices,
  logger: Logger,
  publicKey: () => Promise<string>,
): HttpFunction {
  return createApiFunction({
    logger,
    routes: [
      {
        method: 'GET',
        path: '/v1/records',
        handle: async (r) => ({ status: 200, body: await services.records.list(signedCall(r), r.query) }),
      },
      {
        method: 'GET',
        path: '/v1/records/:recordId/content',
        handle: async (r) => {
          const content = await services.records.content(withoutQuery(r), r.params.recordId ?? '');
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
          body: await services.records.acknowledge(withoutQuery(r), r.params.recordId ?? ''),
        }),
      },
      {
        method: 'GET',
        path: '/v1/devices',
        handle: async (r) => ({ status: 200, body: await services.devices.list(withoutQuery(r)) }),
      },
      {
        method: 'POST',
        path: '/v1/devices/:deviceId/revoke',
        handle: async (r) => ({
          status: 200,
          body: await services.devices.revoke(withoutQuery(r), r.params.deviceId ?? ''),
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
        handle: async (r) => ({ status: 200, body: await services.accessLog.list(signedCall(r), r.query) }),
      },
      {
        method: 'POST',
        path: '/v1/patient/erase',
        handle: async (r) => ({ status: 200, body: await services.erasure.erase(withoutQuery(r)) }),
      },
      {
        method: 'PUT',
        path: '/v1/devices/self/push-token',
        handle: async (r) => {
          await services.devices.setPushToken(withoutQuery(r));
          return { status: 204 };
        },
      },
    ],
  });
}

function compose(context: RuntimeContext): {
  services: RecordsServices;
  logger: Logger;
  publicKey: () => Promise<string>;
  warm: () => Promise<unknown>;
} {
  const catalog = loadCatalog();
  const firestore = createFirestore(context.projectId, context.env);
  // The records function signs erasure receipts with its own key, unwrapped at cold start.
  const keys = ownFunctionKeys(context, firestore, catalog);
  const audit = createFirestoreAuditLog(firestore);
  const devices = createFirestoreDeviceStore(firestore);
  const blobs = createBlobStore(createStorage(context.projectId, context.env));
  const recordsBucket = bucketName(catalog, 'records', context.projectId);
  const clock = systemClock;
  const caller = createDeviceCaller({ devices, nonces: createFirestoreNonceStore(firestore), clock });
  const services: RecordsServices = {
    records: createRecordsService({
      caller,
      records: createFirestoreRecordStore(firestore),
      devices,
      blobs,
      bucket: recordsBucket,
      clock,
      audit,
    }),
    devices: createOwnDevicesService({
      caller,
      devices,
      clock,
      audit,
      notifier: createFcmNotifier({ projectId: context.projectId, env: context.env, collapseKey: 'devices' }),
    }),
    accessLog: createAccessLogService({ caller, audit }),
    erasure: createErasureService({
      caller,
      purge: createFirestorePurgeStore(firestore),
      blobs,
      recordsBucket,
      outboxBucket: bucketName(catalog, 'outbox', context.projectId),
      clock,
      audit,
      signingKey: async () => (await keys.keyPair()).privateKey,
    }),
  };
  const logger = cloudLogger({ functionName: context.functionName, projectId: context.projectId });
  const publicKey = async () => (await keys.keyPair()).publicKey.toBase64Url();
  return { services, logger, publicKey, warm: () => keys.keyPair() };
}

export const definition: FunctionDefinition = {
  name: 'records',
  signature: 'http',
  async build(context): Promise<HttpFunction> {
    const { services, logger, publicKey, warm } = compose(context);
    await warm();
    return recordsHandler(services, logger, publicKey);
  },
};
