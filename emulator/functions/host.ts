// Serves every function in functions/ from one process on loopback (or, for a development
// stack, on the local network under a base path such as /development-stack), the way Cloud Run
// functions would serve each on its own: HTTP functions by path (/pairing/...), CloudEvent
// functions as event targets (POST /ingest), and scheduled functions through a local
// Cloud Scheduler. The Functions Framework's own server does the request handling, so
// its body parsing, error handling and CloudEvent decoding are the ones production runs.
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Catalog, FunctionTrigger } from '../../shared/runtime/catalog.ts';
import {
  registerFunction,
  type FunctionDefinition,
  type RuntimeContext,
} from '../../shared/runtime/function.ts';
import { serviceAccountEmail, serviceAccountPrincipal } from '../../shared/emulation.ts';
import { isLocalCaller } from '../local-caller.ts';
import { Scheduler } from './scheduler.ts';

export interface FunctionsHostOptions {
  host?: string;
  /** The address in `url` when `host` is a wildcard (0.0.0.0). Default: `host`. */
  advertise?: string;
  /**
   * A path in front of every function (`/development-stack`), part of `url` and so of the apiBase
   * every request signature names. Requests without it are served too.
   */
  basePath?: string;
  port?: number;
  projectId: string;
  catalog: Catalog;
  /** Folder holding one sub-folder per function, each with a function.ts. */
  functionsDir: string;
  /** The environment each function sees (emulator endpoints, bucket names). */
  env: Readonly<Record<string, string | undefined>>;
  log?: (entry: Record<string, unknown>) => void;
}

export interface HostedFunction {
  readonly name: string;
  readonly signature: FunctionDefinition['signature'];
  readonly trigger: FunctionTrigger;
  readonly serviceAccountEmail: string;
  readonly url: string;
}

export interface FunctionsHost {
  readonly url: string;
  readonly port: number;
  readonly functions: readonly HostedFunction[];
  readonly scheduler: Scheduler;
  close(): Promise<void>;
}

export class FunctionsHostError extends Error {
  override name = 'FunctionsHostError';
}

export async function loadDefinitions(functionsDir: string): Promise<FunctionDefinition[]> {
  const definitions: FunctionDefinition[] = [];
  for (const entry of (await readdir(functionsDir, { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const file = join(functionsDir, entry.name, 'function.ts');
    if (!entry.isDirectory() || !existsSync(file)) continue;
    const module = (await import(pathToFileURL(file).href)) as { definition?: FunctionDefinition };
    if (!module.definition || module.definition.name !== entry.name) {
      throw new FunctionsHostError(`${file} must export a "definition" named "${entry.name}".`);
    }
    definitions.push(module.definition);
  }
  return definitions;
}

function expectedSignature(trigger: FunctionTrigger): FunctionDefinition['signature'] {
  return trigger.type === 'storage.finalized' ? 'cloudevent' : 'http';
}

export async function startFunctionsHost(options: FunctionsHostOptions): Promise<FunctionsHost> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => {});
  const definitions = await loadDefinitions(options.functionsDir);
  const servers = new Map<string, Server>();
  const pending: Omit<HostedFunction, 'url'>[] = [];
  // Each function's environment; CB_API_BASE (the audience every request signature names) is
  // added once the port is known, before any request can build a function.
  const environments: Record<string, string | undefined>[] = [];

  for (const definition of definitions) {
    const entry = options.catalog.functions[definition.name];
    if (!entry) {
      throw new FunctionsHostError(`Function "${definition.name}" has no entry in infra/catalog.json.`);
    }
    if (expectedSignature(entry.trigger) !== definition.signature) {
      throw new FunctionsHostError(
        `Function "${definition.name}" is a ${definition.signature} function but its catalog trigger is ${entry.trigger.type}.`,
      );
    }
    const env: Record<string, string | undefined> = { ...options.env, K_SERVICE: definition.name };
    environments.push(env);
    const context: RuntimeContext = {
      projectId: options.projectId,
      functionName: definition.name,
      serviceAccountEmail: serviceAccountEmail(entry.serviceAccount, options.projectId),
      localPrincipal: serviceAccountPrincipal(entry.serviceAccount, options.projectId),
      env,
    };
    registerFunction(definition, context);
    servers.set(definition.name, getTestServer(definition.name));
    pending.push({
      name: definition.name,
      signature: definition.signature,
      trigger: entry.trigger,
      serviceAccountEmail: context.serviceAccountEmail,
    });
  }

  // The request handler is attached once the port (and so every URL) is known; no I/O
  // can be handled between listen() resolving and that, so no request is missed.
  const front = createServer();
  front.on('clientError', (_error, socket) => socket.destroy());

  const basePath = options.basePath ?? '';
  function route(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://host');
    let path = url.pathname;
    if (basePath && (path === basePath || path.startsWith(`${basePath}/`)))
      path = path.slice(basePath.length);
    const [first = '', ...rest] = path.split('/').filter(Boolean);
    // The host's and the scheduler's endpoints have no authentication: this machine only, when
    // the host also serves phones on the local network. The functions check their own callers.
    if ((first === '_host' || first === '_scheduler') && !isLocalCaller(req.socket)) {
      return sendJson(res, 403, {
        error: { code: 'LOCAL_ONLY', message: 'Only this machine may use this endpoint.' },
      });
    }
    if (first === '_host' && rest[0] === 'functions' && req.method === 'GET') {
      return sendJson(res, 200, { functions: hosted });
    }
    if (first === '_scheduler') return void routeScheduler(req, res, rest);
    if (first === OPENAPI_PATH && rest.length === 0 && req.method === 'GET') return void serveOpenApi(res);
    const target = servers.get(first);
    if (!target) {
      return sendJson(res, 404, {
        error: { code: 'FUNCTION_NOT_FOUND', message: `No function at /${first}.` },
      });
    }
    req.url = `/${rest.join('/')}${url.search}`;
    target.emit('request', req, res);
  }

  // The API document published beside the functions it describes (docs/openapi.json), naming this
  // host as its server so that a client or an OpenAPI tool pointed here calls the local stack.
  // Read on each request, so a regenerated document is served without a restart.
  async function serveOpenApi(res: ServerResponse): Promise<void> {
    let document: Record<string, unknown>;
    try {
      const file = join(options.functionsDir, '..', 'docs', OPENAPI_PATH);
      document = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    } catch {
      return sendJson(res, 404, {
        error: { code: 'NOT_FOUND', message: 'No readable docs/openapi.json beside these functions.' },
      });
    }
    sendJson(res, 200, { ...document, servers: [{ url, description: 'This local stack.' }] });
  }

  async function routeScheduler(req: IncomingMessage, res: ServerResponse, rest: string[]): Promise<void> {
    if (rest[0] === 'jobs' && rest.length === 1 && req.method === 'GET') {
      return sendJson(res, 200, { jobs: scheduler.list() });
    }
    const match = rest[0] === 'jobs' && rest.length === 2 ? /^(.+):run$/.exec(rest[1]!) : null;
    if (match && req.method === 'POST') {
      const name = decodeURIComponent(match[1]!);
      if (!scheduler.has(name)) {
        return sendJson(res, 404, {
          error: { code: 'JOB_NOT_FOUND', message: `No scheduled job "${name}".` },
        });
      }
      return sendJson(res, 200, await scheduler.runNow(name));
    }
    sendJson(res, 404, {
      error: { code: 'NOT_FOUND', message: 'Use GET /_scheduler/jobs or POST /_scheduler/jobs/NAME:run.' },
    });
  }

  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (front.address() as AddressInfo).port;
  const url = `http://${options.advertise ?? host}:${port}${basePath}`;
  for (const env of environments) env.CB_API_BASE = url;
  const hosted: HostedFunction[] = pending.map((fn) => ({ ...fn, url: `${url}/${fn.name}` }));
  const scheduler = new Scheduler(
    hosted.flatMap((fn) =>
      fn.trigger.type === 'schedule'
        ? [{ name: fn.name, cron: fn.trigger.cron, timeZone: fn.trigger.timeZone, targetUrl: fn.url }]
        : [],
    ),
    { log },
  );
  front.on('request', route);
  log({ severity: 'INFO', message: 'functions host ready', url, functions: hosted.map((fn) => fn.name) });

  return {
    url,
    port,
    functions: hosted,
    scheduler,
    async close() {
      scheduler.stop();
      await new Promise<void>((resolve) => {
        front.close(() => resolve());
        front.closeAllConnections();
      });
    },
  };
}

const OPENAPI_PATH = 'openapi.json';

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}
