// Services over the real adapters of a local stack, wired as the functions wire them but built in
// the test process: for fault injection (each port wrapped by a FaultPlan) and for limits the
// deployed functions do not take (a small upload cap). A function's key is unwrapped through KMS
// as that function's own identity, which the KMS emulator checks against the catalog's grants.
import type { Firestore } from '@google-cloud/firestore';
import { systemClock } from '../../shared/adapters/clock.ts';
import type { FcmNotifier } from '../../shared/adapters/fcm-notifier.ts';
import {
  createFirestoreAuditLog,
  createFirestoreLogRegistry,
} from '../../shared/adapters/firestore-audit.ts';
import {
  createFirestoreDeviceStore,
  createFirestoreHospitalRegistry,
} from '../../shared/adapters/firestore-pairing.ts';
import { createFirestorePurgeStore } from '../../shared/adapters/firestore-purge.ts';
import { createFirestoreRecordStore } from '../../shared/adapters/firestore-records.ts';
import { createFirestoreRetentionPolicyStore } from '../../shared/adapters/firestore-retention.ts';
import { createFunctionKeys } from '../../shared/adapters/function-keys.ts';
import type { PrivateKey } from '../../shared/core/crypto/index.ts';
import type { BlobStore } from '../../shared/ports/blob-store.ts';
import type { Clock } from '../../shared/ports/clock.ts';
import type { FunctionKeys } from '../../shared/ports/function-keys.ts';
import type { PurgeStore } from '../../shared/retention/purge-store.ts';
import { createKms } from '../../shared/adapters/google-clients.ts';
import { serviceAccountPrincipal } from '../../shared/emulation.ts';
import { signRequest } from '../../shared/core/protocol/index.ts';
import { loadCatalog } from '../../shared/runtime/catalog.ts';
import { createIngestService, type IngestService } from '../../shared/services/ingest.ts';
import type { SignedCall } from '../../shared/services/signed-call.ts';
import {
  createRetentionService,
  type RetentionLimits,
  type RetentionService,
} from '../../shared/services/retention.ts';
import { stackBlobStore, type StackEnv } from './delivery-fixture.ts';
import { FaultPlan } from './faults.ts';

export interface StackIngestOptions {
  readonly firestore: Firestore;
  readonly notifier: FcmNotifier;
  /** The bucket uploads are dropped into (create it first; it must have no trigger). */
  readonly uploadBucket: string;
  readonly plan?: FaultPlan;
  readonly maxCiphertextLength?: number;
}

/**
 * A function's key holder speaking to KMS as that function. Each holder unwraps once, so a fresh
 * one per run makes each run's first use a KMS call (a step the plan can fail).
 */
export function stackFunctionKeys(
  stack: StackEnv,
  firestore: Firestore,
  functionName: string,
  plan: FaultPlan = new FaultPlan(),
): FunctionKeys {
  const catalog = loadCatalog();
  const projectId = stack.env.GCLOUD_PROJECT!;
  const principal = serviceAccountPrincipal(catalog.functions[functionName]!.serviceAccount, projectId);
  return createFunctionKeys({
    firestore,
    kms: plan.wrap('kms', createKms(stack.env, principal)),
    catalog,
    projectId,
    functionName,
  });
}

/** Ingest over the stack; uploads go to a bucket of the test's own, without a trigger. */
export function stackIngestService(stack: StackEnv, options: StackIngestOptions): IngestService {
  const { firestore } = options;
  const plan = options.plan ?? new FaultPlan();
  const keys = stackFunctionKeys(stack, firestore, 'ingest', plan);
  return createIngestService({
    blobs: plan.wrap('blobs', stackBlobStore(stack)),
    records: plan.wrap('records', createFirestoreRecordStore(firestore)),
    hospitals: plan.wrap('hospitals', createFirestoreHospitalRegistry(firestore)),
    devices: plan.wrap('devices', createFirestoreDeviceStore(firestore)),
    notifier: plan.wrap('fcm', options.notifier),
    audit: plan.wrap('audit', createFirestoreAuditLog(firestore)),
    keyPair: () => keys.keyPair(),
    clock: systemClock,
    buckets: {
      ingest: options.uploadBucket,
      records: stack.env.RECORDS_BUCKET!,
      outbox: stack.env.OUTBOX_BUCKET!,
      quarantine: stack.env.QUARANTINE_BUCKET!,
    },
    ...(options.maxCiphertextLength === undefined
      ? {}
      : { maxCiphertextLength: options.maxCiphertextLength }),
  });
}

export interface StackRetentionOptions {
  readonly firestore: Firestore;
  readonly clock: Clock;
  /** Stands for the ingest bucket in the leftover sweep (a bucket of the test's own). */
  readonly uploadBucket: string;
  readonly plan?: FaultPlan;
  /** Retention's key holder (default: a fresh one, its KMS call a step of the plan). */
  readonly keys?: FunctionKeys;
  /** Ports the test wraps itself; the plan wraps them too. */
  readonly store?: PurgeStore;
  readonly blobs?: BlobStore;
  readonly limits?: Partial<RetentionLimits>;
}

/** Retention over the stack, signing with the retention function's own key. */
export function stackRetentionService(stack: StackEnv, options: StackRetentionOptions): RetentionService {
  const { firestore } = options;
  const plan = options.plan ?? new FaultPlan();
  const keys = options.keys ?? stackFunctionKeys(stack, firestore, 'retention', plan);
  const audit = createFirestoreAuditLog(firestore);
  return createRetentionService({
    store: plan.wrap('store', options.store ?? createFirestorePurgeStore(firestore)),
    policies: plan.wrap('policies', createFirestoreRetentionPolicyStore(firestore, audit)),
    hospitals: plan.wrap('hospitals', createFirestoreHospitalRegistry(firestore)),
    blobs: plan.wrap('blobs', options.blobs ?? stackBlobStore(stack)),
    buckets: {
      ingest: options.uploadBucket,
      records: stack.env.RECORDS_BUCKET!,
      outbox: stack.env.OUTBOX_BUCKET!,
      quarantine: stack.env.QUARANTINE_BUCKET!,
    },
    audit: plan.wrap('audit', audit),
    auditLogs: {
      entries: plan.wrap('audit-entries', audit),
      registry: plan.wrap('audit-logs', createFirestoreLogRegistry(firestore)),
    },
    clock: options.clock,
    signingKey: async () => (await keys.keyPair()).privateKey,
    ...(options.limits ? { limits: options.limits } : {}),
  });
}

/** The deployment services built here verify request signatures for. */
export const TEST_AUDIENCE = 'https://api.clinic-bridge.test';

/**
 * A signed call as the functions' HTTP edge hands it to a service: a JSON body, signed now
 * (a fresh nonce each time, as a client signs each try), header names in Node's lower case.
 */
export function signedCall(
  signer: { readonly keyId: string; readonly privateKey: PrivateKey },
  method: 'POST' | 'PUT',
  target: string,
  json: unknown,
): SignedCall {
  const body = new TextEncoder().encode(JSON.stringify(json));
  const headers = signRequest({ audience: TEST_AUDIENCE, method, target, body, ...signer, now: new Date() });
  return {
    audience: TEST_AUDIENCE,
    method,
    target,
    body,
    headers: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value])),
  };
}
