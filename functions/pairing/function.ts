// The pairing function: invitations from hospitals, pairing of devices, the hospital's view of
// a patient's devices and revocation (docs/PROTOCOL.md §9.1). A thin handler over
// shared/services/pairing.ts; this file is also its composition root.
import type { HttpFunction } from '@google-cloud/functions-framework';
import { cloudLogger } from '../../shared/adapters/cloud-logger.ts';
import { systemClock } from '../../shared/adapters/clock.ts';
import { createFcmNotifier } from '../../shared/adapters/fcm-notifier.ts';
import { createFirestorePairingStores } from '../../shared/adapters/firestore-pairing.ts';
import { ownFunctionKeys } from '../../shared/adapters/function-keys.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { createApiFunction, type ApiRequest } from '../../shared/http/api-function.ts';
import type { Logger } from '../../shared/ports/logger.ts';
import { ProtocolError } from '../../shared/protocol/error-codes.ts';
import { loadCatalog } from '../../shared/runtime/catalog.ts';
import type { FunctionDefinition, RuntimeContext } from '../../shared/runtime/function.ts';
import { createPairingService, type PairingService } from '../../shared/services/pairing.ts';
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

export function pairingHandler(service: PairingService, logger: Logger): HttpFunction {
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
    ],
  });
}

function compose(context: RuntimeContext): {
  service: PairingService;
  logger: Logger;
  warm: () => Promise<unknown>;
} {
  const firestore = createFirestore(context.projectId, context.env);
  const keys = ownFunctionKeys(context, firestore, loadCatalog());
  const logger = cloudLogger({ functionName: context.functionName, projectId: context.projectId });
  const service = createPairingService({
    stores: createFirestorePairingStores(firestore),
    clock: systemClock,
    keyPair: () => keys.keyPair(),
    notifier: createFcmNotifier({ projectId: context.projectId, env: context.env, collapseKey: 'devices' }),
  });
  return { service, logger, warm: () => keys.keyPair() };
}

export const definition: FunctionDefinition = {
  name: 'pairing',
  signature: 'http',
  async build(context): Promise<HttpFunction> {
    const { service, logger, warm } = compose(context);
    await warm(); // one KMS Decrypt per instance, at cold start
    return pairingHandler(service, logger);
  },
};
