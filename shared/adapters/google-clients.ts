// One place that turns a runtime context into the official Google Cloud clients. On Google
// Cloud the clients find their endpoints and credentials themselves; against the local
// stack only the endpoints differ, taken from the *_EMULATOR_HOST variables it prints.
import { Firestore } from '@google-cloud/firestore';
import { KeyManagementServiceClient } from '@google-cloud/kms';
import type { Metadata } from '@grpc/grpc-js';
import { grpc } from 'google-gax';
import { LOCAL_PRINCIPAL_HEADER } from '../emulation.ts';

type Env = Readonly<Record<string, string | undefined>>;

export function createFirestore(projectId: string, env: Env): Firestore {
  const emulator = env.FIRESTORE_EMULATOR_HOST;
  // ssl:false is how the client recognises an emulator: it then authenticates as "owner".
  return new Firestore({ projectId, ...(emulator ? { host: emulator, ssl: false } : {}) });
}

// Storage has a module of its own, so that the connector, which needs only Storage, does not load
// the Firestore and KMS clients with it (about 20 MiB of its resident memory).
export { createStorage } from './storage-client.ts';

/**
 * Against the local emulator, `localPrincipal` names the caller on every call (the
 * emulator cannot check OAuth tokens); on Google Cloud the credentials speak for it.
 */
export function createKms(env: Env, localPrincipal?: string): KeyManagementServiceClient {
  const emulator = env.KMS_EMULATOR_HOST;
  if (!emulator) return new KeyManagementServiceClient();
  const { hostname, port } = new URL(`http://${emulator}`);
  return new KeyManagementServiceClient({
    apiEndpoint: hostname,
    port: Number(port),
    sslCreds: grpc.credentials.createInsecure(),
    ...(localPrincipal ? principalClientOptions(localPrincipal) : {}),
  });
}

interface CallProperties {
  metadata: Metadata;
}

/**
 * gax forwards `grpc.callInvocationTransformer` to grpc-js, which lets it add metadata to
 * every call, so the official client stays unmodified and only its options differ.
 * A header set on one call (`otherArgs.headers`) still wins.
 */
export function principalClientOptions(principal: string): {
  'grpc.callInvocationTransformer': <T extends CallProperties>(properties: T) => T;
} {
  return {
    'grpc.callInvocationTransformer': (properties) => {
      if (properties.metadata.get(LOCAL_PRINCIPAL_HEADER).length > 0) return properties;
      const metadata = properties.metadata.clone();
      metadata.set(LOCAL_PRINCIPAL_HEADER, principal);
      return { ...properties, metadata };
    },
  };
}
