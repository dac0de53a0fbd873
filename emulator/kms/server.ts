// A local Cloud KMS: google.cloud.kms.v1.KeyManagementService over gRPC (grpc-js), loaded
// from the protos that ship with @google-cloud/kms, so the official client talks to it
// unchanged. Who calls comes from the LOCAL_PRINCIPAL_HEADER metadata entry (absent: the
// local owner) and is checked against an IAM policy file. State lives in dataDir.
import {
  type Metadata,
  Server,
  ServerCredentials,
  status,
  type handleUnaryCall,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { LOCAL_OWNER, LOCAL_PRINCIPAL_HEADER } from '../../shared/emulation.ts';
import type { CallContext } from './context.ts';
import { KmsError, unauthenticated } from './errors.ts';
import * as management from './management.ts';
import * as operations from './operations.ts';
import { Authorizer } from './permissions.ts';
import { EMPTY_POLICY, loadPolicyFile } from './policy.ts';
import { loadKmsService, SERVICE_NAME } from './protos.ts';
import { KmsStore } from './store.ts';

export interface KmsEmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Key rings, keys, versions and key material are kept here; a restart keeps them. */
  dataDir: string;
  /** JSON IAM bindings (see policy.ts); read once at start. Without it only the local owner may act. */
  policyFile?: string;
  /** Cloud Logging style entries; never carries plaintext, ciphertext or key material. */
  log?: (entry: Record<string, unknown>) => void;
}

export interface KmsEmulator {
  readonly host: string;
  readonly port: number;
  /** host:port, the value of KMS_EMULATOR_HOST. */
  readonly address: string;
  close(): Promise<void>;
}

type Handler = (ctx: CallContext, request: never) => unknown;

const HANDLERS: Record<string, Handler> = {
  CreateKeyRing: management.createKeyRing,
  GetKeyRing: management.getKeyRing,
  ListKeyRings: management.listKeyRings,
  CreateCryptoKey: management.createCryptoKey,
  GetCryptoKey: management.getCryptoKey,
  ListCryptoKeys: management.listCryptoKeys,
  CreateCryptoKeyVersion: management.createCryptoKeyVersion,
  GetCryptoKeyVersion: management.getCryptoKeyVersion,
  ListCryptoKeyVersions: management.listCryptoKeyVersions,
  UpdateCryptoKeyPrimaryVersion: management.updateCryptoKeyPrimaryVersion,
  UpdateCryptoKeyVersion: management.updateCryptoKeyVersion,
  DestroyCryptoKeyVersion: management.destroyCryptoKeyVersion,
  RestoreCryptoKeyVersion: management.restoreCryptoKeyVersion,
  Encrypt: operations.encrypt,
  Decrypt: operations.decrypt,
  AsymmetricSign: operations.asymmetricSign,
  GetPublicKey: operations.getPublicKey,
  MacSign: operations.macSign,
  MacVerify: operations.macVerify,
};

const PRINCIPAL = /^(user|serviceAccount|group|domain):[^\s]{1,256}$/;

/** The caller's principal: the one LOCAL_PRINCIPAL_HEADER entry, or the local owner when absent. */
export function principalOf(metadata: Metadata): string {
  const values = metadata.get(LOCAL_PRINCIPAL_HEADER);
  if (values.length === 0) return LOCAL_OWNER;
  const value = values.length === 1 && typeof values[0] === 'string' ? values[0].trim() : '';
  if (!PRINCIPAL.test(value)) {
    throw unauthenticated(
      `Metadata ${LOCAL_PRINCIPAL_HEADER} must hold exactly one IAM principal such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com.`,
    );
  }
  return value;
}

export async function startKmsEmulator(options: KmsEmulatorOptions): Promise<KmsEmulator> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => {});
  const policy = options.policyFile ? await loadPolicyFile(options.policyFile) : EMPTY_POLICY;
  const auth = new Authorizer(policy);
  const store = await KmsStore.open(options.dataDir, (error) =>
    log({ severity: 'ERROR', message: 'kms: writing state failed', error: String(error) }),
  );

  const definition = loadKmsService();
  const implementation: UntypedServiceImplementation = {};
  for (const method of Object.keys(definition)) {
    const handler = HANDLERS[method];
    implementation[method] = handler ? unary(method, handler, store, auth, log) : notImplemented(method, log);
  }
  const server = new Server();
  server.addService(definition, implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${options.port ?? 0}`, ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  const address = `${host}:${port}`;
  log({
    severity: 'INFO',
    message: `kms: listening on ${address}`,
    bindings: policy.bindings.length,
    policyFile: options.policyFile ?? null,
  });

  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    address,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, 5_000);
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
        });
        await store.flush();
        log({ severity: 'INFO', message: `kms: stopped on ${address}` });
      })();
      return closing;
    },
  };
}

function unary(
  method: string,
  handler: Handler,
  store: KmsStore,
  auth: Authorizer,
  log: (entry: Record<string, unknown>) => void,
): handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const started = performance.now();
    let principal: string | undefined;
    const finish = (code: status, details?: string) =>
      log({
        severity: code === status.OK ? 'INFO' : code === status.INTERNAL ? 'ERROR' : 'WARNING',
        message: `kms: ${method} ${status[code]}`,
        method: `${SERVICE_NAME}/${method}`,
        principal: principal ?? null,
        resource: resourceOf(call.request),
        code: status[code],
        ...(details ? { details } : {}),
        latencyMs: Math.round(performance.now() - started),
      });
    void (async () => {
      try {
        principal = principalOf(call.metadata);
        const response = await handler({ store, auth, principal }, call.request as never);
        finish(status.OK);
        callback(null, response);
      } catch (error) {
        if (error instanceof KmsError) {
          finish(error.code, error.message);
          callback({ code: error.code, details: error.message });
        } else {
          finish(status.INTERNAL, (error as Error)?.stack ?? String(error));
          callback({
            code: status.INTERNAL,
            details: `The local KMS emulator failed on ${method}; see its log.`,
          });
        }
      }
    })();
  };
}

function notImplemented(
  method: string,
  log: (entry: Record<string, unknown>) => void,
): handleUnaryCall<unknown, unknown> {
  return (_call, callback) => {
    log({
      severity: 'WARNING',
      message: `kms: ${method} UNIMPLEMENTED`,
      method: `${SERVICE_NAME}/${method}`,
    });
    callback({ code: status.UNIMPLEMENTED, details: `The local KMS emulator does not implement ${method}.` });
  };
}

/** The resource a request names, for the log; names are not secrets. */
function resourceOf(request: unknown): string | null {
  if (typeof request !== 'object' || request === null) return null;
  const fields = request as {
    name?: unknown;
    parent?: unknown;
    cryptoKeyVersion?: { name?: unknown } | null;
  };
  const value = fields.name || fields.parent || fields.cryptoKeyVersion?.name;
  return typeof value === 'string' ? value.slice(0, 300) : null;
}
