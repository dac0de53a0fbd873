// The records function: a paired device lists, downloads and acknowledges its records and
// manages its patient's devices, every call signed by the device key (docs/PROTOCOL.md §9.2).
// A thin handler over shared/services/ (records, own-devices, access-log, erasure); this file
// is also their composition root.
// Content streams from Cloud Storage to the device, so a large record never sits whole in memory.
import type { HttpFunction } from '@google-cloud/functions-framework';
import {
  createFirestoreDeviceStore,
  createFirestoreNonceStore,
} from '../../shared/adapters/firestore-pairing.ts';
import { createFirestoreDeviceLinkStore } from '../../shared/adapters/firestore-device-links.ts';
import { createFirestorePurgeStore } from '../../shared/adapters/firestore-purge.ts';
import { createFirestoreRecordStore } from '../../shared/adapters/firestore-records.ts';
import { functionKit } from '../../shared/adapters/function-kit.ts';
import { createApiFunction } from '../../shared/http/api-function.ts';
import { refuseQuery, signedCalls } from '../../shared/http/signed-calls.ts';
import type { Logger } from '../../shared/ports/logger.ts';
import type { FunctionDefinition, RuntimeContext } from '../../shared/runtime/function.ts';
import { createAccessLogService, type AccessLogService } from '../../shared/services/access-log.ts';
import { createTransparency } from '../../shared/services/transparency.ts';
import { createDeviceCheckpointApi, type DeviceCheckpointApi } from '../../shared/services/audit-log-api.ts';
import { createDeviceCaller } from '../../shared/services/device-caller.ts';
import { createLinkedDevicesView, type LinkedDevicesView } from '../../shared/services/device-linking.ts';
import { createErasureService, type ErasureService } from '../../shared/services/erasure.ts';
import { createOwnDevicesService, type OwnDevicesService } from '../../shared/services/own-devices.ts';
import { createRecordsService, type RecordsService } from '../../shared/services/records.ts';

/** What the records function serves, one service per concern. */

/** The first byte of `Range: bytes=<first>-`, the one form a resuming device sends; else none. */
function resumeFrom(range: string | string[] | undefined): number | undefined {
  const match = typeof range === 'string' ? /^bytes=(0|[1-9][0-9]{0,15})-$/.exec(range) : null;
  return match ? Number(match[1]) : undefined;
}

export interface RecordsServices {
  readonly records: RecordsService;
  readonly devices: OwnDevicesService;
  readonly accessLog: AccessLogService;
  readonly auditLog: DeviceCheckpointApi;
  readonly erasure: ErasureService;
  /** The patient's linked devices with their links (PROTOCOL.md §17). */
  readonly links: LinkedDevicesView;
}

/**
 * `publicKey` is the records function's own: devices keep it at pairing to check erasure
 * receipts (unsigned on purpose: the device has no key to sign with before it pairs).
 */
export function recordsHandler(
  services: RecordsServices,
  logger: Logger,
  publicKey: () => Promise<string>,
  audience: string,
): HttpFunction {
  // Request signatures cover the path from /records/v1/… on, and this deployment's apiBase.
  const calls = signedCalls('/records', audience);
  return createApiFunction({
    logger,
    routes: [
      {
        method: 'GET',
        path: '/v1/records',
        handle: async (r) => ({
          status: 200,
          body: await services.records.list(calls.withQuery(r), r.query),
        }),
      },
      {
        method: 'GET',
        path: '/v1/records/:recordId/content',
        handle: async (r) => {
          const content = await services.records.content(
            calls.withoutQuery(r),
            r.params.recordId ?? '',
            resumeFrom(r.headers.range),
          );
          const headers: Record<string, string> = {
            'content-type': content.contentType,
            'content-length': String(content.size - content.start),
          };
          // A resumed download: the bytes from the first one asked for (RFC 9110 §14.4).
          if (content.start > 0)
            headers['content-range'] = `bytes ${content.start}-${content.size - 1}/${content.size}`;
          return { status: content.start > 0 ? 206 : 200, stream: content.bytes, headers };
        },
      },
      {
        method: 'POST',
        path: '/v1/records/:recordId/ack',
        handle: async (r) => ({
          status: 200,
          body: await services.records.acknowledge(calls.withoutQuery(r), r.params.recordId ?? ''),
        }),
      },
      {
        method: 'GET',
        path: '/v1/devices',
        handle: async (r) => ({ status: 200, body: await services.devices.list(calls.withoutQuery(r)) }),
      },
      {
        method: 'GET',
        path: '/v1/devices/links',
        handle: async (r) => ({ status: 200, body: await services.links.list(calls.withoutQuery(r)) }),
      },
      {
        method: 'POST',
        path: '/v1/devices/:deviceId/revoke',
        handle: async (r) => ({
          status: 200,
          body: await services.devices.revoke(calls.withoutQuery(r), r.params.deviceId ?? ''),
        }),
      },
      {
        method: 'GET',
        path: '/v1/signing-key',
        handle: async (r) => {
          refuseQuery(r);
          return { status: 200, body: { publicKey: await publicKey() } };
        },
      },
      {
        method: 'GET',
        path: '/v1/access-log',
        handle: async (r) => ({
          status: 200,
          body: await services.accessLog.list(calls.withQuery(r), r.query),
        }),
      },
      {
        method: 'GET',
        path: '/v1/audit-log/checkpoint',
        handle: async (r) => ({
          status: 200,
          body: await services.auditLog.checkpoint(calls.withQuery(r), r.query),
        }),
      },
      {
        method: 'POST',
        path: '/v1/patient/erase',
        handle: async (r) => ({ status: 200, body: await services.erasure.erase(calls.withoutQuery(r)) }),
      },
      {
        method: 'PUT',
        path: '/v1/devices/self/push-token',
        handle: async (r) => {
          await services.devices.setPushToken(calls.withoutQuery(r));
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
  audience: string;
  warm: () => Promise<unknown>;
} {
  const kit = functionKit(context);
  const devices = createFirestoreDeviceStore(kit.firestore);
  const caller = createDeviceCaller({
    devices,
    nonces: createFirestoreNonceStore(kit.firestore),
    clock: kit.clock,
  });
  const { audit, blobs, clock } = kit;
  const transparency = createTransparency({
    objects: kit.logObjects,
    registry: kit.logRegistry,
    apiBase: kit.audience,
    clock,
  });
  const recordsBucket = kit.bucket('records');
  const services: RecordsServices = {
    records: createRecordsService({
      caller,
      records: createFirestoreRecordStore(kit.firestore),
      devices,
      blobs,
      bucket: recordsBucket,
      clock,
      audit,
    }),
    devices: createOwnDevicesService({ caller, devices, clock, audit, notifier: kit.notifier('devices') }),
    accessLog: createAccessLogService({ caller, audit, transparency: transparency }),
    auditLog: createDeviceCheckpointApi({ caller, transparency: transparency }),
    erasure: createErasureService({
      caller,
      purge: createFirestorePurgeStore(kit.firestore),
      blobs,
      recordsBucket,
      outboxBucket: kit.bucket('outbox'),
      clock,
      audit,
      // The records function signs erasure receipts with its own key, unwrapped at cold start.
      signingKey: async () => (await kit.keyPair()).privateKey,
    }),
    links: createLinkedDevicesView({
      caller,
      devices,
      links: createFirestoreDeviceLinkStore(kit.firestore),
      clock,
    }),
  };
  const publicKey = async () => (await kit.keyPair()).publicKey.toBase64Url();
  return { services, logger: kit.logger, publicKey, audience: kit.audience, warm: () => kit.keyPair() };
}

export const definition: FunctionDefinition = {
  name: 'records',
  signature: 'http',
  async build(context): Promise<HttpFunction> {
    const { services, logger, publicKey, audience, warm } = compose(context);
    await warm();
    return recordsHandler(services, logger, publicKey, audience);
  },
};
