// The KeyManagementService definition from the protos that ship with @google-cloud/kms
// (its own) and google-gax (google/api, google/longrunning, google/iam, google/type ...).
import { loadSync } from '@grpc/proto-loader';
import { loadPackageDefinition, type GrpcObject, type ServiceDefinition } from '@grpc/grpc-js';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** build/src/index.js -> build/protos */
function protosOf(packageName: string): string {
  return join(dirname(require.resolve(packageName)), '..', 'protos');
}

export const SERVICE_NAME = 'google.cloud.kms.v1.KeyManagementService';

/** How requests reach the handlers: camelCase fields, enums as names, unset messages null. */
export const LOADER_OPTIONS = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
} as const;

export function loadKmsService(): ServiceDefinition {
  const definition = loadSync('google/cloud/kms/v1/service.proto', {
    ...LOADER_OPTIONS,
    includeDirs: [protosOf('@google-cloud/kms'), protosOf('google-gax')],
  });
  const root = loadPackageDefinition(definition) as unknown as {
    google: { cloud: { kms: { v1: GrpcObject } } };
  };
  const service = root.google.cloud.kms.v1.KeyManagementService as unknown as { service: ServiceDefinition };
  return service.service;
}
