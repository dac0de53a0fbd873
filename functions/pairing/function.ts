// The pairing function: invitations from hospitals, pairing of devices, the hospital's view of
// a patient's devices and revocation (docs/PROTOCOL.md §9.1). A thin handler over
// shared/services/pairing.ts; this file is also its composition root.
import type { HttpFunction } from '@google-cloud/functions-framework';
import { createFirestoreDeviceLinkStore } from '../../shared/adapters/firestore-device-links.ts';
import { createFirestorePairingStores } from '../../shared/adapters/firestore-pairing.ts';
import { createFirestorePurgeStore } from '../../shared/adapters/firestore-purge.ts';
import { createFirestoreRecordStore } from '../../shared/adapters/firestore-records.ts';
import { functionKit } from '../../shared/adapters/function-kit.ts';
import { createApiFunction } from '../../shared/http/api-function.ts';
import { refuseQuery, signedCalls } from '../../shared/http/signed-calls.ts';
import type { Logger } from '../../shared/ports/logger.ts';
import type { FunctionDefinition, RuntimeContext } from '../../shared/runtime/function.ts';
import {
  createDeviceLinkingService,
  type DeviceLinkingService,
} from '../../shared/services/device-linking.ts';
import { createPairingService, type PairingService } from '../../shared/services/pairing.ts';
import { createTransparency } from '../../shared/services/transparency.ts';
import { createWitnessApi, type WitnessApi } from '../../shared/services/audit-log-api.ts';
import { createRecallService, type RecallService } from '../../shared/services/recall.ts';
import {
  createDeliveryStatusService,
  type DeliveryStatusService,
} from '../../shared/services/delivery-status.ts';

/** What the pairing function serves: pairing itself, and a hospital's view of what it sent. */
interface PairingServices {
  readonly service: PairingService;
  readonly recall: RecallService;
  readonly delivery: DeliveryStatusService;
  readonly witness: WitnessApi;
  /** Device linking (PROTOCOL.md §17): a paired device enrols another of its patient. */
  readonly linking: DeviceLinkingService;
}

export function pairingHandler(
  { service, recall, delivery, witness, linking }: PairingServices,
  logger: Logger,
  audience: string,
): HttpFunction {
  // Request signatures cover the path from /pairing/v1/… on, and this deployment's apiBase;
  // only the witness's checkpoint request takes a query.
  const calls = signedCalls('/pairing', audience);
  const signedCall = calls.withoutQuery;
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
          refuseQuery(r);
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
        path: '/v1/links',
        handle: async (r) => ({ status: 201, body: await linking.link(signedCall(r)) }),
      },
      {
        method: 'GET',
        path: '/v1/patients/:patientRef/device-links',
        handle: async (r) => ({
          status: 200,
          body: await linking.hospitalLinks(signedCall(r), r.params.patientRef ?? ''),
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
        method: 'GET',
        path: '/v1/audit-log/checkpoint',
        handle: async (r) => ({ status: 200, body: await witness.checkpoint(calls.withQuery(r), r.query) }),
      },
      {
        method: 'POST',
        path: '/v1/audit-log/cosignature',
        handle: async (r) => ({ status: 200, body: await witness.cosign(signedCall(r)) }),
      },
      {
        method: 'GET',
        path: '/v1/records/:recordId/delivery',
        handle: async (r) => ({
          status: 200,
          body: await delivery.status(signedCall(r), r.params.recordId ?? ''),
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

function compose(context: RuntimeContext): PairingServices & {
  logger: Logger;
  audience: string;
  warm: () => Promise<unknown>;
} {
  const kit = functionKit(context);
  const stores = createFirestorePairingStores(kit.firestore);
  const notifier = kit.notifier('devices');
  const service = createPairingService({
    stores,
    clock: kit.clock,
    keyPair: () => kit.keyPair(),
    notifier,
    audit: kit.audit,
  });
  const records = createFirestoreRecordStore(kit.firestore);
  const delivery = createDeliveryStatusService({ stores, records, clock: kit.clock });
  const recall = createRecallService({
    stores,
    records,
    purge: createFirestorePurgeStore(kit.firestore),
    blobs: kit.blobs,
    recordsBucket: kit.bucket('records'),
    outboxBucket: kit.bucket('outbox'),
    audit: kit.audit,
    clock: kit.clock,
    notifier,
    signingKey: async () => (await kit.keyPair()).privateKey,
  });
  const transparency = createTransparency({
    objects: kit.logObjects,
    registry: kit.logRegistry,
    apiBase: kit.audience,
    clock: kit.clock,
  });
  const witness = createWitnessApi({
    hospitals: stores.hospitals,
    nonces: stores.nonces,
    clock: kit.clock,
    transparency: transparency,
  });
  const linking = createDeviceLinkingService({
    stores,
    links: createFirestoreDeviceLinkStore(kit.firestore),
    clock: kit.clock,
    keyPair: () => kit.keyPair(),
    notifier,
    audit: kit.audit,
  });
  return {
    service,
    linking,
    recall,
    delivery,
    witness,
    logger: kit.logger,
    audience: kit.audience,
    warm: () => kit.keyPair(),
  };
}

export const definition: FunctionDefinition = {
  name: 'pairing',
  signature: 'http',
  async build(context): Promise<HttpFunction> {
    const { logger, audience, warm, ...services } = compose(context);
    await warm(); // one KMS Decrypt per instance, at cold start
    return pairingHandler(services, logger, audience);
  },
};
