// gRPC status errors with the codes and, where we know them, the wording of Cloud KMS.
// Handlers throw these; the server turns them into a status and never into a crash.
import { status } from '@grpc/grpc-js';

export class KmsError extends Error {
  override name = 'KmsError';
  readonly code: status;

  constructor(code: status, message: string) {
    super(message);
    this.code = code;
  }
}

export const invalidArgument = (message: string): KmsError => new KmsError(status.INVALID_ARGUMENT, message);
export const failedPrecondition = (message: string): KmsError =>
  new KmsError(status.FAILED_PRECONDITION, message);
export const unimplemented = (message: string): KmsError => new KmsError(status.UNIMPLEMENTED, message);

export const notFound = (kind: string, name: string): KmsError =>
  new KmsError(status.NOT_FOUND, `${kind} ${name} not found.`);

export const alreadyExists = (kind: string, name: string): KmsError =>
  new KmsError(status.ALREADY_EXISTS, `${kind} ${name} already exists.`);

/** Real KMS answers a missing resource and a missing permission alike, so neither leaks. */
export const permissionDenied = (permission: string, resource: string): KmsError =>
  new KmsError(
    status.PERMISSION_DENIED,
    `Permission '${permission}' denied on resource '${resource}' (or it may not exist).`,
  );

export const unauthenticated = (message: string): KmsError => new KmsError(status.UNAUTHENTICATED, message);
