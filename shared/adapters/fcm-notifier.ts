// Notifier over firebase-admin messaging (FCM HTTP v1), one send() per device token.
//
// Messages are data-only (invariant 5): no notification block, so the OS never shows text;
// Android gets a high-priority data message, iOS a background push (content-available).
// Against the local stack (FCM_EMULATOR_URL set) only the app's httpAgent and credential
// differ (fcm-client-agent.ts); the messaging client and its error mapping are the real ones.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getMessaging, type Messaging, type TokenMessage } from 'firebase-admin/messaging';
import {
  NotifierError,
  type Notifier,
  type NotifierErrorCode,
  type PushData,
  type PushOutcome,
} from '../ports/notifier.ts';
import { localFcmAppOptions } from './fcm-client-agent.ts';

type Env = Readonly<Record<string, string | undefined>>;

/** FCM's limit on a message's data payload. */
export const MAX_PUSH_DATA_BYTES = 4096;
const TOKEN = /^[A-Za-z0-9_:.~-]{1,4096}$/;
const DATA_KEY = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const RESERVED_KEYS = new Set(['from', 'notification', 'message_type', 'collapse_key']);
const RESERVED_PREFIXES = ['google', 'gcm'];

const UNREGISTERED = 'messaging/registration-token-not-registered';
const TRANSIENT = new Set([
  'messaging/internal-error',
  'messaging/server-unavailable',
  'messaging/unknown-error',
  'messaging/message-rate-exceeded',
  'messaging/device-message-rate-exceeded',
  'app/network-error',
  'app/network-timeout',
]);
const CONFIGURATION = new Set([
  'messaging/mismatched-credential',
  'messaging/third-party-auth-error',
  'messaging/authentication-error',
  'app/invalid-credential',
]);

export interface RetryPolicy {
  /** Sends in all, the first included. Default 3. */
  readonly attempts?: number;
  /** Backoff before the second send (full jitter, doubling). Default 250 ms. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
}

export interface FcmNotifierOptions {
  readonly projectId: string;
  /** FCM_EMULATOR_URL here points the client at the local recorder. */
  readonly env: Env;
  readonly retry?: RetryPolicy;
  /** How long FCM keeps an undelivered ping for an offline Android device. Default one day. */
  readonly ttlSeconds?: number;
  /** Pings waiting for an offline device collapse into one. Default "records". */
  readonly collapseKey?: string;
}

export interface FcmNotifier extends Notifier {
  /** Releases the notifier's own firebase-admin app. */
  close(): Promise<void>;
}

export function createFcmNotifier(options: FcmNotifierOptions): FcmNotifier {
  const recorder = options.env.FCM_EMULATOR_URL;
  // An app of its own: the local agent sends all of an app's HTTP traffic to the recorder.
  const app: App = initializeApp(
    recorder ? localFcmAppOptions(recorder, options.projectId) : { projectId: options.projectId },
    `clinic-bridge-notifier-${randomUUID()}`,
  );
  return new FirebaseNotifier(app, getMessaging(app), options);
}

class FirebaseNotifier implements FcmNotifier {
  readonly #app: App;
  readonly #messaging: Messaging;
  readonly #attempts: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #ttlMs: number;
  readonly #collapseKey: string;

  constructor(app: App, messaging: Messaging, options: FcmNotifierOptions) {
    this.#app = app;
    this.#messaging = messaging;
    this.#attempts = Math.max(1, Math.floor(options.retry?.attempts ?? 3));
    this.#baseDelayMs = Math.max(0, options.retry?.baseDelayMs ?? 250);
    this.#maxDelayMs = Math.max(this.#baseDelayMs, options.retry?.maxDelayMs ?? 4_000);
    this.#ttlMs = Math.max(0, Math.floor(options.ttlSeconds ?? 86_400)) * 1000;
    this.#collapseKey = options.collapseKey ?? 'records';
  }

  async send(token: string, data: PushData): Promise<PushOutcome> {
    if (typeof token !== 'string' || !TOKEN.test(token)) {
      throw new NotifierError('INVALID_TOKEN', 'not an FCM registration token');
    }
    const message: TokenMessage = {
      token,
      data: checkedData(data),
      android: { priority: 'high', ttl: this.#ttlMs, collapseKey: this.#collapseKey },
      apns: {
        headers: {
          'apns-push-type': 'background',
          'apns-priority': '5',
          'apns-collapse-id': this.#collapseKey,
        },
        payload: { aps: { contentAvailable: true } },
      },
    };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#messaging.send(message);
        return 'sent';
      } catch (error) {
        const code = firebaseCode(error);
        if (code === UNREGISTERED) return 'unregistered';
        if (TRANSIENT.has(code) && attempt < this.#attempts) {
          await sleep(this.#backoff(attempt));
          continue;
        }
        const mapped: NotifierErrorCode = TRANSIENT.has(code)
          ? 'UNAVAILABLE'
          : CONFIGURATION.has(code)
            ? 'CONFIGURATION'
            : code === 'messaging/invalid-registration-token'
              ? 'INVALID_TOKEN'
              : code === 'messaging/invalid-argument' || code === 'messaging/invalid-payload'
                ? 'REJECTED'
                : 'UNKNOWN';
        throw new NotifierError(mapped, `FCM send failed: ${mapped} after ${attempt} attempt(s)`, {
          attempts: attempt,
          cause: error,
        });
      }
    }
  }

  async close(): Promise<void> {
    await deleteApp(this.#app);
  }

  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** (attempt - 1));
    return Math.floor(Math.random() * (ceiling + 1));
  }
}

/**
 * Checks the data at run time too (callers may not be typed): own string-keyed entries only,
 * string values, no reserved or odd keys, at most 4096 bytes. Returns a fresh plain copy.
 */
export function checkedData(data: unknown): Record<string, string> {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new NotifierError('INVALID_PAYLOAD', 'push data must be an object of strings');
  }
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  let bytes = 0;
  for (const key of Reflect.ownKeys(data)) {
    if (typeof key !== 'string' || !DATA_KEY.test(key)) {
      throw new NotifierError('INVALID_PAYLOAD', 'push data keys must be short identifiers');
    }
    const lower = key.toLowerCase();
    if (RESERVED_KEYS.has(lower) || RESERVED_PREFIXES.some((prefix) => lower.startsWith(prefix))) {
      throw new NotifierError('INVALID_PAYLOAD', 'push data uses a reserved key (pushes are data-only)');
    }
    const value: unknown = (data as Record<string, unknown>)[key];
    if (typeof value !== 'string')
      throw new NotifierError('INVALID_PAYLOAD', 'push data values must be strings');
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
    out[key] = value;
  }
  if (bytes > MAX_PUSH_DATA_BYTES) {
    throw new NotifierError('INVALID_PAYLOAD', `push data exceeds ${MAX_PUSH_DATA_BYTES} bytes`);
  }
  return { ...out };
}

function firebaseCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}
