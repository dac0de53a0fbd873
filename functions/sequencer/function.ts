// The sequencer function: Cloud Scheduler calls it every minute (locally the functions host's
// scheduler, or on demand with POST /_scheduler/jobs/sequencer:run) to integrate pending audit
// entries into the hospitals' transparency logs. A thin handler over
// shared/services/sequencer.ts; this file is also its composition root. It holds one grant
// beyond Firestore: AsymmetricSign with its own Ed25519 key in Cloud KMS, and its own bucket.
import type { HttpFunction } from '@google-cloud/functions-framework';
import { createFirestoreAuditLog } from '../../shared/adapters/firestore-audit.ts';
import { functionKit } from '../../shared/adapters/function-kit.ts';
import { createKms } from '../../shared/adapters/google-clients.ts';
import { kmsNoteSigner, type KmsNoteSigner } from '../../shared/adapters/kms-note-signer.ts';
import { auditLogKeyName } from '../../shared/core/tlog/audit-leaf.ts';
import { createApiFunction } from '../../shared/http/api-function.ts';
import { refuseQuery } from '../../shared/http/signed-calls.ts';
import type { Logger } from '../../shared/ports/logger.ts';
import { cryptoKeyName } from '../../shared/runtime/catalog.ts';
import type { FunctionDefinition, RuntimeContext } from '../../shared/runtime/function.ts';
import { createSequencer, type Sequencer } from '../../shared/services/sequencer.ts';

/** The KMS key version that signs checkpoints; a rotation publishes a new log key (docs/OPERATIONS.md). */
export const LOG_KEY_VERSION = 1;

export function sequencerHandler(sequencer: Sequencer, logger: Logger): HttpFunction {
  return createApiFunction({
    logger,
    routes: [
      {
        method: 'POST',
        path: '/',
        handle: async (request) => {
          refuseQuery(request);
          const run = await sequencer.run();
          return { status: 200, body: { sequenced: run.sequenced, logs: run.logs } };
        },
      },
    ],
  });
}

function compose(context: RuntimeContext) {
  const kit = functionKit(context);
  const audit = createFirestoreAuditLog(kit.firestore);
  let signer: Promise<KmsNoteSigner> | undefined;
  const logSigner = () =>
    (signer ??= kmsNoteSigner(
      createKms(context.env, context.localPrincipal),
      `${cryptoKeyName(kit.catalog, 'sequencer', context.projectId)}/cryptoKeyVersions/${LOG_KEY_VERSION}`,
      auditLogKeyName(kit.audience),
    ).catch((error: unknown) => {
      signer = undefined;
      throw error;
    }));
  const sequencer = createSequencer({
    entries: audit,
    objects: kit.logObjects,
    registry: kit.logRegistry,
    signer: logSigner,
    apiBase: kit.audience,
    logger: kit.logger,
  });
  return { sequencer, logger: kit.logger };
}

export const definition: FunctionDefinition = {
  name: 'sequencer',
  signature: 'http',
  async build(context): Promise<HttpFunction> {
    const { sequencer, logger } = compose(context);
    return sequencerHandler(sequencer, logger);
  },
};
