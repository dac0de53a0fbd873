// The JSON API's error shape, and the handful of errors the emulator raises. Messages and
// reasons follow what Cloud Storage answers, so client code that branches on `code` or on
// `errors[0].reason` behaves the same against the emulator and against Google.

export interface ErrorBody {
  error: {
    code: number;
    message: string;
    errors: { message: string; domain: string; reason: string }[];
  };
}

export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;
  /** Extra response headers, e.g. Content-Range on a 416. */
  readonly headers: Record<string, string>;

  constructor(status: number, reason: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.reason = reason;
    this.headers = headers;
  }

  body(): ErrorBody {
    return errorBody(this.status, this.reason, this.message);
  }
}

export function errorBody(status: number, reason: string, message: string): ErrorBody {
  return { error: { code: status, message, errors: [{ message, domain: 'global', reason }] } };
}

export const invalid = (message: string): ApiError => new ApiError(400, 'invalid', message);
export const required = (what: string): ApiError => new ApiError(400, 'required', `Required: ${what}`);
export const parseError = (): ApiError => new ApiError(400, 'parseError', 'Parse Error');
export const bucketNotFound = (): ApiError =>
  new ApiError(404, 'notFound', 'The specified bucket does not exist.');
export const objectNotFound = (bucket: string, name: string): ApiError =>
  new ApiError(404, 'notFound', `No such object: ${bucket}/${name}`);
export const routeNotFound = (): ApiError => new ApiError(404, 'notFound', 'Not Found');
export const methodNotAllowed = (): ApiError => new ApiError(405, 'methodNotAllowed', 'Method Not Allowed');
export const conflict = (message: string): ApiError => new ApiError(409, 'conflict', message);
export const conditionNotMet = (): ApiError =>
  new ApiError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
export const notModified = (): ApiError => new ApiError(304, 'notModified', 'Not Modified');
export const uploadTooLarge = (limit: number): ApiError =>
  new ApiError(413, 'uploadTooLarge', `Upload exceeds the maximum object size of ${limit} bytes.`);
export const rangeNotSatisfiable = (size: number): ApiError =>
  new ApiError(416, 'requestedRangeNotSatisfiable', 'The requested range cannot be satisfied.', {
    'Content-Range': `bytes */${size}`,
  });
export const backendError = (): ApiError => new ApiError(500, 'backendError', 'Backend Error');
