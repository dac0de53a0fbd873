// The contract between a function's composition root and whatever runs it: the Functions
// Framework on Cloud Run functions in production, or the local functions host. Both build
// the handler once per instance (a cold start), which is where each function unwraps its
// own key material, and then reuse it for every request.
import type { CloudEvent, CloudEventFunction, HttpFunction } from '@google-cloud/functions-framework';
import { cloudEvent, http } from '@google-cloud/functions-framework';

export interface RuntimeContext {
  readonly projectId: string;
  readonly functionName: string;
  readonly serviceAccountEmail: string;
  /**
   * Only the local stack sets this: the IAM principal the function names to the local
   * emulators, which cannot check OAuth tokens. On Google Cloud the token speaks for it.
   */
  readonly localPrincipal?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export type FunctionDefinition =
  | {
      readonly name: string;
      readonly signature: 'http';
      build(context: RuntimeContext): Promise<HttpFunction>;
    }
  | {
      readonly name: string;
      readonly signature: 'cloudevent';
      build(context: RuntimeContext): Promise<CloudEventFunction>;
    };

/** Builds on first use and shares the result, also between concurrent first requests. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let built: Promise<T> | undefined;
  return () => {
    built ??= make().catch((error: unknown) => {
      built = undefined; // let the next request retry a failed cold start
      throw error;
    });
    return built;
  };
}

/** Registers the function with the Functions Framework under its own name. */
export function registerFunction(definition: FunctionDefinition, context: RuntimeContext): void {
  if (definition.signature === 'http') {
    const handler = once(() => definition.build(context));
    http(definition.name, async (req, res) => (await handler())(req, res));
  } else {
    const handler = once(() => definition.build(context));
    cloudEvent(definition.name, async (event: CloudEvent<unknown>) => (await handler())(event));
  }
}

/** The context on Google Cloud, from the variables the platform and infra/ set. */
export function contextFromEnvironment(
  functionName: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): RuntimeContext {
  const projectId = env.GOOGLE_CLOUD_PROJECT ?? env.GCLOUD_PROJECT;
  const serviceAccountEmail = env.SERVICE_ACCOUNT_EMAIL;
  if (!projectId || !serviceAccountEmail) {
    throw new Error('GOOGLE_CLOUD_PROJECT and SERVICE_ACCOUNT_EMAIL must be set (infra/ sets both).');
  }
  return { projectId, functionName, serviceAccountEmail, env };
}
