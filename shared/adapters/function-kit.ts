// What every function's composition root wires from its context: the Google clients, its own
// keys, its logger, notifier and audit trail, and its buckets by role. Each piece is built on
// first use and then shared, so a function pays only for what it uses (health never opens KMS)
// and no two adapters of one instance hold separate clients for the same service.
import type { Firestore } from '@google-cloud/firestore';
import type { Storage } from '@google-cloud/storage';
import type { KeyPair } from '../core/crypto/index.ts';
import { canonicalApiBase } from '../core/protocol/qr.ts';
import type { AuditLog } from '../audit/log.ts';
import type { BlobStore } from '../ports/blob-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { FunctionKeys } from '../ports/function-keys.ts';
import type { Logger } from '../ports/logger.ts';
import type { LogObjects } from '../ports/log-objects.ts';
import type { LogRegistry } from '../ports/log-registry.ts';
import { createLogObjects } from './log-objects.ts';
import { bucketName, loadCatalog, type Catalog } from '../runtime/catalog.ts';
import type { RuntimeContext } from '../runtime/function.ts';
import { createBlobStore } from './blob-store.ts';
import { systemClock } from './clock.ts';
import { cloudLogger } from './cloud-logger.ts';
import { createFcmNotifier, type FcmNotifier } from './fcm-notifier.ts';
import { createFirestoreAuditLog, createFirestoreLogRegistry } from './firestore-audit.ts';
import { ownFunctionKeys } from './function-keys.ts';
import { createFirestore, createStorage } from './google-clients.ts';

/** What the pushes of a function stand for on the device (FCM collapses pushes by it). */
export type PushTopic = 'devices' | 'records';

export interface FunctionKit {
  readonly context: RuntimeContext;
  readonly catalog: Catalog;
  readonly clock: Clock;
  readonly firestore: Firestore;
  readonly storage: Storage;
  readonly blobs: BlobStore;
  readonly audit: AuditLog;
  readonly logger: Logger;
  /** The function's own key pair, unwrapped by its own KMS key (one Decrypt per instance). */
  readonly keys: FunctionKeys;
  keyPair(): Promise<KeyPair>;
  notifier(topic: PushTopic): FcmNotifier;
  /** The project's bucket for a catalog role (ingest, records, outbox, quarantine). */
  bucket(role: string): string;
  /** This deployment's apiBase (CB_API_BASE), which every request signature must name. */
  readonly audience: string;
  /** The audit transparency logs' objects (the tlog bucket) and registry. */
  readonly logObjects: LogObjects;
  readonly logRegistry: LogRegistry;
}

/** Memoises `make`: the first call builds, every later one gets the same value. */
function lazy<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}

export function functionKit(context: RuntimeContext): FunctionKit {
  const catalog = lazy(() => loadCatalog());
  const firestore = lazy(() => createFirestore(context.projectId, context.env));
  const storage = lazy(() => createStorage(context.projectId, context.env));
  const blobs = lazy(() => createBlobStore(storage()));
  const audit = lazy(() => createFirestoreAuditLog(firestore()));
  const logger = lazy(() =>
    cloudLogger({ functionName: context.functionName, projectId: context.projectId }),
  );
  const keys = lazy(() => ownFunctionKeys(context, firestore(), catalog()));
  const notifiers = new Map<PushTopic, FcmNotifier>();
  const audience = lazy(() => {
    const base = canonicalApiBase(context.env.CB_API_BASE ?? '');
    // Without it no signed request could verify; fail the cold start loudly instead.
    if (!base) throw new Error('CB_API_BASE must be set to the canonical apiBase of this deployment');
    return base;
  });
  const logObjects = lazy(() => createLogObjects(blobs(), bucketName(catalog(), 'tlog', context.projectId)));
  const logRegistry = lazy(() => createFirestoreLogRegistry(firestore()));
  return {
    context,
    clock: systemClock,
    get catalog() {
      return catalog();
    },
    get firestore() {
      return firestore();
    },
    get storage() {
      return storage();
    },
    get blobs() {
      return blobs();
    },
    get audit() {
      return audit();
    },
    get logger() {
      return logger();
    },
    get keys() {
      return keys();
    },
    keyPair: () => keys().keyPair(),
    notifier(topic) {
      let notifier = notifiers.get(topic);
      if (!notifier) {
        notifier = createFcmNotifier({ projectId: context.projectId, env: context.env, collapseKey: topic });
        notifiers.set(topic, notifier);
      }
      return notifier;
    },
    bucket: (role) => bucketName(catalog(), role, context.projectId),
    get audience() {
      return audience();
    },
    get logObjects() {
      return logObjects();
    },
    get logRegistry() {
      return logRegistry();
    },
  };
}
