// Eventarc's part: every object finalize becomes a `google.cloud.storage.object.v1.finalized`
// CloudEvent, POSTed in binary content mode to each subscription for the bucket.
//
// Delivery is at least once. A non-2xx answer or a connection error is retried with
// exponential backoff and jitter (bounded by maxDelayMs) until maxAttempts, after which
// the event is dead-lettered: logged, and kept under DATA/events/dead-letter/.
// Every event is written to DATA/events/outbox/ before the upload is answered and removed
// once all its deliveries are settled. After a restart, pending events are re-sent to the
// subscriptions the bucket has then (subscriber URLs may change between runs, so events
// are matched by bucket, not by URL); a subscriber may therefore see an event twice.
// Attempt counts start again after a restart.
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readJsonFile, writeJsonAtomic } from './files.ts';

export interface EventSubscription {
  bucket: string;
  targetUrl: string;
}

export interface RetryPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  maxAttempts: number;
}

export const FINALIZED = 'google.cloud.storage.object.v1.finalized';
const ATTEMPT_TIMEOUT_MS = 5 * 60 * 1000;

interface StoredEvent {
  id: string;
  bucket: string;
  subject: string;
  time: string;
  data: Record<string, unknown>;
}

interface PendingEvent {
  event: StoredEvent;
  /** Its file in the outbox. */
  file: string;
  /** Target URLs still owed a delivery. */
  open: Set<string>;
  /** URLs already handled in this run (delivered or dead-lettered). */
  done: Set<string>;
  /** Restored after a restart and waiting for subscriptions to claim it. */
  restored: boolean;
}

/** Percent-encodes a CloudEvents attribute for an HTTP header (binding spec, 3.1.3.2). */
export function encodeHeaderValue(value: string): string {
  let out = '';
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (code >= 0x21 && code <= 0x7e && char !== '"' && char !== '%') out += char;
    else
      out += [...Buffer.from(char, 'utf8')]
        .map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`)
        .join('');
  }
  return out;
}

export class EventDispatcher {
  readonly #outbox: string;
  readonly #deadLetter: string;
  readonly #retry: RetryPolicy;
  readonly #log: (entry: Record<string, unknown>) => void;
  readonly #subscriptions: EventSubscription[] = [];
  readonly #pending = new Map<string, PendingEvent>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #abort = new AbortController();
  #active = 0;
  #waiters: (() => void)[] = [];
  #closed = false;

  private constructor(dir: string, retry: RetryPolicy, log: (entry: Record<string, unknown>) => void) {
    this.#outbox = join(dir, 'outbox');
    this.#deadLetter = join(dir, 'dead-letter');
    this.#retry = retry;
    this.#log = log;
  }

  static async open(
    dir: string,
    retry: RetryPolicy,
    log: (entry: Record<string, unknown>) => void,
  ): Promise<EventDispatcher> {
    const dispatcher = new EventDispatcher(dir, retry, log);
    await mkdir(dispatcher.#outbox, { recursive: true });
    await mkdir(dispatcher.#deadLetter, { recursive: true });
    for (const entry of (await readdir(dispatcher.#outbox)).sort()) {
      const path = join(dispatcher.#outbox, entry);
      const event = entry.endsWith('.json')
        ? ((await readJsonFile(path)) as StoredEvent | undefined)
        : undefined;
      if (!event || typeof event.id !== 'string' || typeof event.bucket !== 'string') {
        await rm(path, { force: true });
        continue;
      }
      dispatcher.#pending.set(event.id, {
        event,
        file: path,
        open: new Set(),
        done: new Set(),
        restored: true,
      });
    }
    if (dispatcher.#pending.size > 0) {
      log({
        severity: 'INFO',
        message: 'storage events restored from the outbox',
        count: dispatcher.#pending.size,
      });
    }
    return dispatcher;
  }

  subscribe(subscription: EventSubscription): void {
    new URL(subscription.targetUrl); // throws on a malformed URL
    this.#subscriptions.push({ ...subscription });
    for (const pending of this.#pending.values()) {
      if (pending.restored && pending.event.bucket === subscription.bucket) {
        this.#startDelivery(pending, subscription.targetUrl);
      }
    }
  }

  /** Records the event durably, then starts delivering it; returns without waiting for delivery. */
  async publish(bucket: string, name: string, time: string, data: Record<string, unknown>): Promise<void> {
    const targets = this.#subscriptions.filter((s) => s.bucket === bucket).map((s) => s.targetUrl);
    if (targets.length === 0) return;
    const event: StoredEvent = { id: randomUUID(), bucket, subject: `objects/${name}`, time, data };
    // Named by time so a restart replays events in their original order.
    const file = join(this.#outbox, `${String(Date.now()).padStart(15, '0')}-${event.id}.json`);
    await writeJsonAtomic(file, event).catch((error: unknown) =>
      this.#log({ severity: 'ERROR', message: 'could not persist storage event', error: String(error) }),
    );
    // After close() the event stays in the outbox for the next run.
    if (this.#closed) return;
    const pending: PendingEvent = { event, file, open: new Set(), done: new Set(), restored: false };
    this.#pending.set(event.id, pending);
    for (const target of new Set(targets)) this.#startDelivery(pending, target);
  }

  #startDelivery(pending: PendingEvent, targetUrl: string): void {
    if (this.#closed || pending.open.has(targetUrl) || pending.done.has(targetUrl)) return;
    pending.open.add(targetUrl);
    this.#active++;
    void this.#attempt(pending, targetUrl, 1);
  }

  async #attempt(pending: PendingEvent, targetUrl: string, attempt: number): Promise<void> {
    if (this.#closed) return;
    const { event } = pending;
    let failure: string;
    try {
      const response = await fetch(targetUrl, {
        method: 'POST',
        headers: {
          'ce-specversion': '1.0',
          'ce-type': FINALIZED,
          'ce-source': `//storage.googleapis.com/projects/_/buckets/${event.bucket}`,
          'ce-subject': encodeHeaderValue(event.subject),
          'ce-id': event.id,
          'ce-time': event.time,
          'ce-bucket': event.bucket,
          'content-type': 'application/json',
        },
        body: JSON.stringify(event.data),
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) {
        await this.#settle(pending, targetUrl);
        return;
      }
      failure = `HTTP ${response.status}`;
    } catch (error) {
      if (this.#closed) return;
      failure = (error as Error).message ?? String(error);
    }
    if (attempt >= this.#retry.maxAttempts) {
      this.#log({
        severity: 'ERROR',
        message: 'storage event dead-lettered',
        eventId: event.id,
        bucket: event.bucket,
        targetUrl,
        attempts: attempt,
        lastError: failure,
      });
      await writeJsonAtomic(join(this.#deadLetter, `${event.id}-${randomUUID().slice(0, 8)}.json`), {
        event,
        targetUrl,
        attempts: attempt,
        lastError: failure,
      }).catch(() => {});
      await this.#settle(pending, targetUrl);
      return;
    }
    const delay = this.#backoff(attempt);
    this.#log({
      severity: 'WARNING',
      message: 'storage event delivery failed; will retry',
      eventId: event.id,
      targetUrl,
      attempt,
      error: failure,
      retryInMs: delay,
    });
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.#attempt(pending, targetUrl, attempt + 1);
    }, delay);
    this.#timers.add(timer);
  }

  /** Exponential backoff with "equal jitter": half fixed, half random, capped. */
  #backoff(attempt: number): number {
    const { initialDelayMs, maxDelayMs } = this.#retry;
    const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  async #settle(pending: PendingEvent, targetUrl: string): Promise<void> {
    pending.open.delete(targetUrl);
    pending.done.add(targetUrl);
    if (pending.open.size === 0 && this.#pending.get(pending.event.id) === pending) {
      this.#pending.delete(pending.event.id);
      await rm(pending.file, { force: true }).catch(() => {});
    }
    this.#active--;
    if (this.#active === 0) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Resolves when no delivery is in flight or waiting for a retry. */
  idle(): Promise<void> {
    if (this.#active === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Stops retries and cuts in-flight deliveries; undelivered events stay in the outbox. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#abort.abort();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}
