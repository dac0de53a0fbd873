// The retention function: Cloud Scheduler calls it nightly (infra/ and the local scheduler send
// the schedule time), and the operator may call it over authenticated HTTP (`cb-admin retention
// run`). A thin handler over shared/services/retention.ts; this file is also its composition
// root. It answers with the signed deletion receipt; a run interrupted by a crash is resumed by
// calling again with the same job id (the scheduler's retry does exactly that).
import type { HttpFunction } from '@google-cloud/functions-framework';
import { z } from 'zod';
import { systemClock } from '../../shared/adapters/clock.ts';
import {
  createFirestoreAuditLog,
  createFirestoreLogRegistry,
} from '../../shared/adapters/firestore-audit.ts';
import { createFirestoreHospitalRegistry } from '../../shared/adapters/firestore-pairing.ts';
import { createFirestorePurgeStore } from '../../shared/adapters/firestore-purge.ts';
import { createFirestoreRetentionPolicyStore } from '../../shared/adapters/firestore-retention.ts';
import { functionKit } from '../../shared/adapters/function-kit.ts';
import { createApiFunction, type ApiRequest } from '../../shared/http/api-function.ts';
import { refuseQuery } from '../../shared/http/signed-calls.ts';
import type { Logger } from '../../shared/ports/logger.ts';
import { documentToText } from '../../shared/core/protocol/signed-document.ts';
import { parseJsonBody } from '../../shared/core/protocol/api.ts';
import { ProtocolError } from '../../shared/core/protocol/error-codes.ts';
import type { FunctionDefinition, RuntimeContext } from '../../shared/runtime/function.ts';
import { createRetentionService, type RetentionService } from '../../shared/services/retention.ts';

const runBodySchema = z.strictObject({
  jobId: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,100}$/)
    .optional(),
});

/** The run's id: the schedule slot (so the scheduler's retries resume one run), or the operator's. */
export function retentionJobId(request: Pick<ApiRequest, 'headers' | 'rawBody'>, now: Date): string {
  const scheduled = request.headers['x-cloudscheduler-scheduletime'];
  if (typeof scheduled === 'string') {
    const at = new Date(scheduled);
    if (Number.isNaN(at.getTime()))
      throw new ProtocolError('INVALID_REQUEST', undefined, { field: 'schedule time' });
    return `retention-${at.toISOString()}`;
  }
  const body = request.rawBody.length > 0 ? parseJsonBody(runBodySchema, request.rawBody) : {};
  return body.jobId ? `retention-${body.jobId}` : `retention-manual-${now.toISOString()}`;
}

export function retentionHandler(service: RetentionService, logger: Logger): HttpFunction {
  return createApiFunction({
    logger,
    routes: [
      {
        method: 'POST',
        path: '/',
        handle: async (request) => {
          refuseQuery(request);
          const result = await service.run({ jobId: retentionJobId(request, systemClock.now()) });
          return {
            status: 200,
            body: {
              jobId: result.summary.jobId,
              complete: result.summary.complete,
              alreadyDone: result.alreadyDone,
              receipt: documentToText(result.receipt),
            },
          };
        },
      },
    ],
  });
}

function compose(context: RuntimeContext) {
  const kit = functionKit(context);
  const service = createRetentionService({
    store: createFirestorePurgeStore(kit.firestore),
    policies: createFirestoreRetentionPolicyStore(kit.firestore, kit.audit),
    hospitals: createFirestoreHospitalRegistry(kit.firestore),
    blobs: kit.blobs,
    buckets: {
      ingest: kit.bucket('ingest'),
      records: kit.bucket('records'),
      outbox: kit.bucket('outbox'),
      quarantine: kit.bucket('quarantine'),
    },
    audit: kit.audit,
    auditLogs: {
      entries: createFirestoreAuditLog(kit.firestore),
      registry: createFirestoreLogRegistry(kit.firestore),
    },
    clock: kit.clock,
    signingKey: async () => (await kit.keyPair()).privateKey,
    logger: kit.logger,
  });
  return { service, logger: kit.logger, warm: () => kit.keyPair() };
}

export const definition: FunctionDefinition = {
  name: 'retention',
  signature: 'http',
  async build(context): Promise<HttpFunction> {
    const { service, logger, warm } = compose(context);
    await warm();
    return retentionHandler(service, logger);
  },
};
