// Readiness probe for operators and the local demo: can this deployment reach its
// datastores? It reports codes and timings only, never resource names or raw errors.
import type { HttpFunction } from '@google-cloud/functions-framework';
import { functionKit } from '../../shared/adapters/function-kit.ts';
import type { Probe } from '../../shared/ports/probe.ts';
import type { FunctionDefinition, RuntimeContext } from '../../shared/runtime/function.ts';
import { checkHealth } from '../../shared/services/health.ts';

function probes(context: RuntimeContext): Probe[] {
  const { firestore, storage } = functionKit(context);
  const bucket = context.env.INGEST_BUCKET;
  return [
    { name: 'firestore', check: async () => void (await firestore.listCollections()) },
    {
      name: 'storage',
      check: async () => {
        if (!bucket) throw new Error('INGEST_BUCKET is not set');
        const [exists] = await storage.bucket(bucket).exists();
        if (!exists) throw new Error('ingest bucket missing');
      },
    },
  ];
}

export const definition: FunctionDefinition = {
  name: 'health',
  signature: 'http',
  async build(context): Promise<HttpFunction> {
    const checks = probes(context);
    return async (req, res) => {
      if (req.method !== 'GET') {
        res.status(405).json({ error: { code: 'METHOD_NOT_ALLOWED', message: 'Use GET.' } });
        return;
      }
      const report = await checkHealth(checks);
      res.status(report.status === 'ok' ? 200 : 503).json(report);
    };
  },
};
