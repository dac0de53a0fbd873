// What every route handler gets: the emulator's parts, the request, and small helpers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Copier } from './copy.ts';
import { invalid } from './errors.ts';
import type { EventDispatcher } from './events.ts';
import { objectResource, type ObjectRecord } from './resources.ts';
import type { ObjectStore } from './store.ts';
import type { ResumableUploads } from './uploads.ts';

export const UPLOAD_PREFIX = '/upload/storage/v1';

export interface RouteContext {
  store: ObjectStore;
  uploads: ResumableUploads;
  copier: Copier;
  events: EventDispatcher;
  projectId: string;
  maxObjectSize: number;
  /** The emulator's own base URL, used in event payloads. */
  url: string;
}

export interface ApiRequest {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  /** Base URL for links in responses, from the Host the client used. */
  base: string;
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function positiveIntParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  if (!/^\d{1,16}$/.test(raw.trim())) throw invalid(`Invalid value for parameter '${name}': '${raw}'`);
  return Number(raw.trim());
}

/** Hands a finalized object to the event dispatcher (which persists, then delivers in the background). */
export async function publish(ctx: RouteContext, record: ObjectRecord): Promise<void> {
  await ctx.events.publish(record.bucket, record.name, record.updated, objectResource(record, ctx.url));
}
