// The retention function: Cloud Scheduler calls it nightly (infra/ and the local scheduler send
// the schedule time), and the operator may call it over authenticated HTTP (`cb-admin retention
// run`). A thin handler over shared/services/retention.ts; this file is also its composition
// root. It answers with the signed deletion receipt; a run interrupted by a crash is resumed by
// calling again with the same job id (the scheduler's retry does exactly that).
import type { HttpFunction } from '@google-cloud/functions-framework';
import { z } from 'zod';
import { createBlobStore } from '../../shared/adapters/blob-store.ts';
import { cloudLogger } from '../../shared/adapters/cloud-logger.ts';
import { systemClock } from '../../shared/adapters/clock.ts';
import { createFirestoreAuditLog } from '../../shared/adapters/firestore-audit.ts';
import { createFirestoreHospitalRegistry } from '../../shared/adapters/firestore-pairing.ts';
import { createFirestorePurgeStore } from '../../shared/adapters/firestore-purge.ts';
import { createFirestoreRetentionPolicyStore } from '../../shared/adapters/firestore-retention.ts';
import { ownFunctionKeys } from '../../shared/adapters/function-keys.ts';
import { createFirestore, createStorage } from '../../shared/adapters/google-clients.ts';
import { createApiFunction, type ApiRequest } from '../../shared/http/api-function.ts';
import type { Logger } from '../../shared/ports/logger.ts';
import { documentToText } from '../../shared/core/protocol/signed-document.ts';
import { parseJsonBody } from '../../shared/core/protocol/api.ts';
import { ProtocolError } from '../../shared/core/protocol/error-codes.ts';
import { bucketName, loadCatalog } from '../../shared/runtime/catalog.ts';
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
          if (request.rawQuery !== '') throw new ProtocolError('INVALID_REQUEST');
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
  const catalog = loadCatalog();
  const firestore = createFirestore(context.projectId, context.env);
  const keys = ownFunctionKeys(context, firestore, catalog);
  const audit = createFirestoreAuditLog(firestore);
  const logger = cloudLogger({ functionName: context.functionName, projectId: context.projectId });
  const service = createRetentionService({
    store: createFirestorePurgeStore(firestore),
    policies: createFirestoreRetentionPolicyStore(firestore, audit),
    hospitals: createFirestoreHospitalRegistry(firestore),
    blobs: createBlobStore(createStorage(context.projectId, context.env)),
    buckets: {
      ingest: bucketName(catalog, 'ingest', context.projectId),
      records: bucketName(catalog, 'records', context.projectId),
      outbox: bucketName(catalog, 'outbox', context.projectId),
      quarantine: bucketName(catalog, 'quarantine', context.projectId),
    },
    audit,
    clock: systemClock,
    signingKey: async () => (await keys.keyPair()).privateKey,
    logger,
  });
  return { service, logger, warm: () => keys.keyPair() };
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
