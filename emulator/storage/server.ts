// A local Cloud Storage: the JSON API that @google-cloud/storage speaks, objects streamed
// to disk under `dataDir`, resumable sessions that survive a restart, and Eventarc-style
// CloudEvents for every finalized object. Google ships no Storage emulator (docs/DEPENDENCIES.md).
//
// Point the official client at it with either
//   STORAGE_EMULATOR_HOST=http://127.0.0.1:PORT   (then `new Storage({projectId})`), or
//   new Storage({ apiEndpoint: 'http://127.0.0.1:PORT', projectId })
// A custom endpoint makes the client skip authentication, so no credentials are needed.
// It binds to loopback and checks no credentials: never expose it.
import { mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Copier } from './copy.ts';
import { EventDispatcher } from './events.ts';
import { sendError } from './http.ts';
import { route, type RouteContext } from './routes.ts';
import { ObjectStore } from './store.ts';
import { ResumableUploads } from './uploads.ts';

export { objectDataPath } from './store.ts';
export { FINALIZED as STORAGE_FINALIZED_EVENT } from './events.ts';

export interface StorageEventSubscription {
  bucket: string;
  /** A CloudEvent receiver; each finalized object in `bucket` is POSTed here. */
  targetUrl: string;
}

export interface StorageEmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Buckets, objects, upload sessions and the event outbox live here; a restart keeps them. */
  dataDir: string;
  projectId: string;
  /** Default 5 GiB. A bigger upload is refused with 413 uploadTooLarge. */
  maxObjectSizeBytes?: number;
  subscriptions?: StorageEventSubscription[];
  eventRetry?: { initialDelayMs?: number; maxDelayMs?: number; maxAttempts?: number };
  /** Structured log lines (Cloud Logging field names); default silent. */
  log?: (entry: Record<string, unknown>) => void;
}

export interface StorageEmulator {
  /** e.g. http://127.0.0.1:PORT, usable as STORAGE_EMULATOR_HOST and as apiEndpoint. */
  readonly url: string;
  readonly port: number;
  subscribe(subscription: StorageEventSubscription): void;
  /** Resolves when no event delivery is in flight or waiting for a retry. */
  idle(): Promise<void>;
  /** Stops accepting, ends in-flight deliveries and requests, closes every socket. */
  close(): Promise<void>;
}

export const DEFAULT_MAX_OBJECT_SIZE = 5 * 1024 * 1024 * 1024;
/** After close(), requests still running this long are cut. */
const CLOSE_GRACE_MS = 1_000;

export async function startStorageEmulator(options: StorageEmulatorOptions): Promise<StorageEmulator> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => {});
  const maxObjectSize = options.maxObjectSizeBytes ?? DEFAULT_MAX_OBJECT_SIZE;
  await mkdir(options.dataDir, { recursive: true });
  const store = await ObjectStore.open(options.dataDir, log);
  const uploads = await ResumableUploads.open(join(options.dataDir, 'uploads'), store, maxObjectSize);
  const events = await EventDispatcher.open(
    join(options.dataDir, 'events'),
    {
      initialDelayMs: options.eventRetry?.initialDelayMs ?? 1_000,
      maxDelayMs: options.eventRetry?.maxDelayMs ?? 60_000,
      maxAttempts: options.eventRetry?.maxAttempts ?? 10,
    },
    log,
  );
  const copier = new Copier(store, maxObjectSize);
  const ctx: RouteContext = {
    store,
    uploads,
    copier,
    events,
    projectId: options.projectId,
    maxObjectSize,
    url: '',
  };
  const inFlight = new Set<Promise<void>>();

  const server = createServer(
    { requestTimeout: 0, keepAliveTimeout: 5_000 },
    (req: IncomingMessage, res: ServerResponse) => {
      const work = route(ctx, req, res).catch((error: unknown) => {
        try {
          sendError(req, res, error, log);
        } catch {
          res.destroy();
        }
      });
      inFlight.add(work);
      void work.finally(() => inFlight.delete(work));
    },
  );
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  ctx.url = url;
  for (const subscription of options.subscriptions ?? []) events.subscribe(subscription);
  log({ severity: 'INFO', message: 'storage emulator listening', url });

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    subscribe: (subscription) => events.subscribe(subscription),
    idle: () => events.idle(),
    close() {
      closing ??= (async () => {
        events.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const grace = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_GRACE_MS).unref());
        await Promise.race([Promise.allSettled([...inFlight]), grace]);
        server.closeAllConnections();
        await Promise.allSettled([...inFlight]);
        await closed;
        await copier.close();
      })();
      return closing;
    },
  };
}
