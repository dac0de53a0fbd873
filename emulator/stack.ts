// The whole local Google Cloud in one call: the official Firestore emulator plus the
// project's own Storage, KMS and FCM servers, the functions host and its scheduler, all on
// loopback. It provisions what infra/ would (buckets, the key ring, one key per function,
// the IAM bindings from infra/catalog.json) so a fresh data directory is ready to use.
//
// A development stack (`host: '0.0.0.0'`, docs/SANDBOX.md) also serves a phone on the local
// network: the functions host and the FCM recorder, the only services a phone talks to, listen
// there and are advertised as http://<address>:<port>[/development-stack]. Firestore, Storage
// and KMS have no authentication and stay on loopback.
import { mkdir, rm } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { provisionFunctionKeys } from '../shared/adapters/function-keys.ts';
import { createFirestore, createKms, createStorage } from '../shared/adapters/google-clients.ts';
import { DEVELOPMENT_STACK_PATH, isNonGlobalIpv4 } from '../shared/core/protocol/qr.ts';
import { bucketName, loadCatalog, type Catalog } from '../shared/runtime/catalog.ts';
import { startFcmRecorder, type FcmRecorder } from './fcm/server.ts';
import { startFirestoreEmulator, type FirestoreEmulator } from './firestore/server.ts';
import { startFunctionsHost, type FunctionsHost } from './functions/host.ts';
import { policyFromCatalog, writePolicyFile } from './kms/policy.ts';
import { startKmsEmulator, type KmsEmulator } from './kms/server.ts';
import { startStorageEmulator, type StorageEmulator } from './storage/server.ts';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DEFAULT_DATA_DIR = join(REPO_ROOT, '.data');
export const DEFAULT_PROJECT_ID = 'clinic-bridge-local';
export const DEFAULT_PORT_BASE = 8470;

/** Offsets from the port base, so one flag moves the whole stack. */
const PORT_OFFSETS = { functions: 0, firestore: 1, storage: 2, kms: 3, fcm: 4 } as const;

export interface StackOptions {
  /**
   * Where the services a phone uses (functions host, FCM recorder) listen: 127.0.0.1 (default)
   * or 0.0.0.0 (every interface, a development stack).
   */
  host?: string;
  /**
   * The address phones reach them at, in FUNCTIONS_BASE_URL (the apiBase the QR code carries) and
   * FCM_EMULATOR_URL: a private IPv4 address. Default: `host`, or for 0.0.0.0 the first private
   * IPv4 address of this machine. The functions themselves still reach the recorder on loopback.
   */
  advertise?: string;
  dataDir?: string;
  projectId?: string;
  /** First of five consecutive ports; 0 lets every server pick a free port (tests). */
  portBase?: number;
  /** Delete the data directory first. */
  reset?: boolean;
  functionsDir?: string;
  catalog?: Catalog;
  log?: (entry: Record<string, unknown>) => void;
}

export interface Stack {
  /** What a client needs, in the order `npm start` prints it. */
  readonly env: Readonly<Record<string, string>>;
  readonly firestore: FirestoreEmulator;
  readonly storage: StorageEmulator;
  readonly kms: KmsEmulator;
  readonly fcm: FcmRecorder;
  readonly functions: FunctionsHost;
  close(): Promise<void>;
}

export class StackOptionsError extends Error {
  override name = 'StackOptionsError';
}

const WILDCARD = '0.0.0.0';
const LOOPBACK = '127.0.0.1';

export interface Exposure {
  /** Where the functions host and the FCM recorder listen. */
  readonly bind: string;
  /** The address in their URLs. */
  readonly advertised: string;
  /** '' on loopback; the development-stack marker otherwise (docs/PROTOCOL.md §4). */
  readonly basePath: string;
}

/** The first private IPv4 address of this machine's interfaces, if any. */
export function firstPrivateAddress(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const entry of addresses ?? []) {
      if (entry.family === 'IPv4' && !entry.internal && isNonGlobalIpv4(entry.address)) return entry.address;
    }
  }
  return undefined;
}

/**
 * Checks `host` and `advertise` and works out the stack's exposure. Anything but loopback is a
 * development stack: plain http, so only to an address that is not globally reachable (never a
 * name, never a public address), and its apiBase carries the marker path.
 */
export function resolveExposure(host = LOOPBACK, advertise?: string): Exposure {
  // Only these two: the functions reach the FCM recorder over loopback whatever phones use.
  if (host !== WILDCARD && host !== LOOPBACK) {
    throw new StackOptionsError(`--host must be 127.0.0.1 or 0.0.0.0, not "${host}".`);
  }
  if (advertise !== undefined && host !== WILDCARD && advertise !== host) {
    throw new StackOptionsError(`--advertise needs --host 0.0.0.0 (the stack listens on ${host} only).`);
  }
  const advertised = advertise ?? (host === WILDCARD ? firstPrivateAddress() : host);
  if (advertised === undefined) {
    throw new StackOptionsError(
      'This machine has no private IPv4 address to advertise; name one with --advertise.',
    );
  }
  if (advertised === LOOPBACK) return { bind: host, advertised, basePath: '' };
  if (!isNonGlobalIpv4(advertised)) {
    throw new StackOptionsError(
      `--advertise must be a private IPv4 address (10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16, ...), not "${advertised}": a development stack speaks plain http.`,
    );
  }
  return { bind: host, advertised, basePath: DEVELOPMENT_STACK_PATH };
}

export async function resetData(dataDir = DEFAULT_DATA_DIR): Promise<void> {
  await rm(dataDir, { recursive: true, force: true });
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const dataDir = options.dataDir ?? DEFAULT_DATA_DIR;
  const projectId = options.projectId ?? DEFAULT_PROJECT_ID;
  const catalog = options.catalog ?? loadCatalog();
  const log = options.log ?? (() => {});
  const exposure = resolveExposure(options.host, options.advertise);
  const base = options.portBase ?? DEFAULT_PORT_BASE;
  const port = (name: keyof typeof PORT_OFFSETS) => (base === 0 ? 0 : base + PORT_OFFSETS[name]);
  // The stack's own clients (provisioning, and functions hosted in this process) must never
  // go looking for Google's metadata server: there is none, and the probe only adds delay.
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  if (options.reset) await resetData(dataDir);
  await mkdir(dataDir, { recursive: true });

  // Everything started so far, newest first, so a failure part-way leaves nothing running.
  const started: { close(): Promise<void> }[] = [];
  const closeAll = async () => {
    for (const part of started.splice(0)) {
      try {
        await part.close();
      } catch (error) {
        log({ severity: 'WARNING', message: 'stopping a stack part failed', error: String(error) });
      }
    }
  };

  try {
    const policyFile = join(dataDir, 'kms', 'policy.json');
    await mkdir(join(dataDir, 'kms'), { recursive: true });
    await writePolicyFile(policyFile, policyFromCatalog(catalog, projectId));

    // The JVM takes seconds to start; the Node servers start meanwhile.
    const firestorePromise = startFirestoreEmulator({
      port: port('firestore'),
      projectId,
      dataDir: join(dataDir, 'firestore'),
      log,
    });
    firestorePromise.then((fs) => started.unshift(fs)).catch(() => {});
    const storage = await startStorageEmulator({
      port: port('storage'),
      projectId,
      dataDir: join(dataDir, 'storage'),
      log,
    });
    started.unshift(storage);
    const kms = await startKmsEmulator({ port: port('kms'), dataDir: join(dataDir, 'kms'), policyFile, log });
    started.unshift(kms);
    const fcm = await startFcmRecorder({
      host: exposure.bind,
      advertise: exposure.advertised,
      port: port('fcm'),
      dataDir: join(dataDir, 'fcm'),
      log,
    });
    started.unshift(fcm);
    const firestore = await firestorePromise;

    const buckets = Object.fromEntries(
      Object.keys(catalog.buckets).map((role) => [
        `${role.toUpperCase()}_BUCKET`,
        bucketName(catalog, role, projectId),
      ]),
    );
    const env: Record<string, string> = {
      GCLOUD_PROJECT: projectId,
      GOOGLE_CLOUD_PROJECT: projectId,
      FIRESTORE_EMULATOR_HOST: firestore.address,
      STORAGE_EMULATOR_HOST: storage.url,
      KMS_EMULATOR_HOST: kms.address,
      FCM_EMULATOR_URL: fcm.url,
      METADATA_SERVER_DETECTION: 'none',
      ...buckets,
    };
    await provision(catalog, projectId, env, Object.values(buckets));

    // The functions' FCM client talks plain http to the recorder on loopback only
    // (shared/adapters/fcm-client-agent.ts); phones get the advertised address.
    const functionsEnv: Record<string, string> = {
      ...env,
      FCM_EMULATOR_URL: `http://${LOOPBACK}:${fcm.port}`,
    };
    const functions = await startFunctionsHost({
      host: exposure.bind,
      advertise: exposure.advertised,
      basePath: exposure.basePath,
      port: port('functions'),
      projectId,
      catalog,
      functionsDir: options.functionsDir ?? join(REPO_ROOT, 'functions'),
      env: functionsEnv,
      log,
    });
    started.unshift(functions);
    env.FUNCTIONS_BASE_URL = functions.url;

    // Eventarc's part: deliver each finalized upload to the functions triggered by that bucket.
    for (const fn of functions.functions) {
      if (fn.trigger.type === 'storage.finalized') {
        storage.subscribe({ bucket: bucketName(catalog, fn.trigger.bucket, projectId), targetUrl: fn.url });
      }
    }

    return { env, firestore, storage, kms, fcm, functions, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * Creates what infra/ and the operator's bootstrap create in a real project, as the local
 * owner; safe to repeat.
 */
async function provision(
  catalog: Catalog,
  projectId: string,
  env: Record<string, string>,
  buckets: string[],
) {
  const storage = createStorage(projectId, env);
  for (const name of buckets) {
    const [exists] = await storage.bucket(name).exists();
    if (!exists) await storage.createBucket(name);
  }

  const kms = createKms(env);
  try {
    const parent = `projects/${projectId}/locations/${catalog.location}`;
    const keyRing = `${parent}/keyRings/${catalog.keyRing}`;
    await ignoreAlreadyExists(kms.createKeyRing({ parent, keyRingId: catalog.keyRing, keyRing: {} }));
    for (const entry of Object.values(catalog.functions)) {
      for (const grant of entry.kms) {
        await ignoreAlreadyExists(
          kms.createCryptoKey({
            parent: keyRing,
            cryptoKeyId: grant.key,
            cryptoKey: {
              purpose: grant.purpose,
              versionTemplate: { algorithm: grant.algorithm ?? defaultAlgorithm(grant.purpose) },
            },
          }),
        );
      }
    }
    // Each function's Themis key pair, wrapped by its own KMS key; the function unwraps it
    // once per instance. Create-only, so a restart keeps the keys devices already trust.
    const firestore = createFirestore(projectId, env);
    try {
      await provisionFunctionKeys({ firestore, kms, catalog, projectId });
    } finally {
      await firestore.terminate();
    }
  } finally {
    await kms.close();
  }
}

function defaultAlgorithm(
  purpose: string,
): 'EC_SIGN_P256_SHA256' | 'HMAC_SHA256' | 'GOOGLE_SYMMETRIC_ENCRYPTION' {
  if (purpose === 'ASYMMETRIC_SIGN') return 'EC_SIGN_P256_SHA256';
  if (purpose === 'MAC') return 'HMAC_SHA256';
  return 'GOOGLE_SYMMETRIC_ENCRYPTION';
}

const ALREADY_EXISTS = 6;

async function ignoreAlreadyExists(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (error) {
    if ((error as { code?: number }).code !== ALREADY_EXISTS) throw error;
  }
}
