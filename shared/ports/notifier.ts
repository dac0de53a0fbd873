// Push pings to devices (invariant 5): data-only messages that carry an opaque hint that
// records are waiting, never PHI and never a visible notification. The FCM adapter lives in
// shared/adapters/fcm-notifier.ts.

/** A push's data: string keys and string values only (FCM's map<string, string>). */
export type PushData = Readonly<Record<string, string>>;

/** Keys FCM reserves; `notification` would make the OS show text. */
export type ReservedPushKey = 'notification' | 'from' | 'message_type' | 'collapse_key';

/** Spelling a reserved key in the data does not type-check; the adapter refuses it at run time too. */
export type WithoutReservedKeys = { readonly [K in ReservedPushKey]?: never };

/** 'unregistered': the token is dead for good (app removed); stop sending to it. */
export type PushOutcome = 'sent' | 'unregistered';

export interface Notifier {
  /**
   * Sends one data-only push to one device token. Transient failures are retried a bounded
   * number of times; anything else throws NotifierError.
   */
  send<D extends PushData>(token: string, data: D & WithoutReservedKeys): Promise<PushOutcome>;
}

export type NotifierErrorCode =
  /** The data breaks the rules (reserved or malformed key, non-string value, over 4096 bytes). */
  | 'INVALID_PAYLOAD'
  /** The token is not a registration token. */
  | 'INVALID_TOKEN'
  /** FCM refused the message as invalid. */
  | 'REJECTED'
  /** Credentials or sender configuration are wrong. */
  | 'CONFIGURATION'
  /** Still failing transiently after the last retry. */
  | 'UNAVAILABLE'
  | 'UNKNOWN';

/** Errors from a Notifier. Messages never hold the token or the data. */
export class NotifierError extends Error {
  readonly code: NotifierErrorCode;
  /** How many sends were tried. */
  readonly attempts: number;

  constructor(
    code: NotifierErrorCode,
    message: string,
    options: { attempts?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NotifierError';
    this.code = code;
    this.attempts = options.attempts ?? 0;
  }
}

export function isNotifierError(error: unknown, code?: NotifierErrorCode): error is NotifierError {
  return error instanceof NotifierError && (code === undefined || error.code === code);
}
