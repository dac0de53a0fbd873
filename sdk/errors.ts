// The errors the device SDK throws, each with a stable code an app can branch on: the service's
// own answer (ApiError, with its trace id), a service it could not reach (NetworkError), and the
// device's own state (DeviceError). Protocol and crypto failures keep their shared/core types.

/** An error answer from a function: branch on `code`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly traceId: string | undefined;

  constructor(status: number, code: string, message: string, traceId?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.traceId = traceId;
  }
}

export type NetworkFailureCode = 'SERVICE_UNREACHABLE' | 'SERVICE_TIMEOUT';

/** A service that could not be reached or did not answer in time: names the address and a stable code. */
export class NetworkError extends Error {
  readonly code: NetworkFailureCode;
  /** Scheme, host, port and path: never a query string or a body. */
  readonly url: string;

  constructor(code: NetworkFailureCode, url: string, detail: string) {
    super(`${code === 'SERVICE_TIMEOUT' ? 'no answer from' : 'cannot reach'} ${url} (${detail})`);
    this.name = 'NetworkError';
    this.code = code;
    this.url = url;
  }
}

/** `url` without its query and fragment, for messages (a query may carry more than an address should). */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    return url.replace(/[?#].*$/, '');
  }
}

/** The device's own state forbids the call (not paired, several enrolments and none chosen). */
export class DeviceError extends Error {
  readonly code: 'NOT_PAIRED' | 'HOSPITAL_NOT_CHOSEN' | 'ENROLMENT_UNREADABLE';

  constructor(code: DeviceError['code'], message: string) {
    super(message);
    this.name = 'DeviceError';
    this.code = code;
  }
}

/**
 * A client-side refusal with a stable code (e.g. a transparency log that is not consistent with
 * what this client saw before): the command line prints it as `CODE: message`
 * and exits REFUSED.
 */
export class RefusedError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'RefusedError';
    this.code = code;
  }
}
