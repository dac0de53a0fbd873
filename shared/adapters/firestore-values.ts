// Reading and writing stored Firestore values strictly, for the Firestore adapters: times are
// Timestamps, and a field that is not what the adapter wrote is an error, never a guess.
import { Timestamp } from '@google-cloud/firestore';

/** The gRPC statuses the Firestore adapters tell apart (google.rpc.Code). */
const GRPC_STATUS = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
} as const;

/** Whether the Firestore client failed with this gRPC status. */
export function hasGrpcStatus(error: unknown, status: keyof typeof GRPC_STATUS): boolean {
  return (error as { code?: unknown } | null)?.code === GRPC_STATUS[status];
}

/** A create() that found the document id taken. */
export function isAlreadyExists(error: unknown): boolean {
  return hasGrpcStatus(error, 'ALREADY_EXISTS');
}

export function ts(date: Date): Timestamp {
  return Timestamp.fromDate(date);
}

export function toDate(value: unknown): Date {
  if (value instanceof Timestamp) return value.toDate();
  throw new Error('a stored timestamp is malformed');
}

export function str(value: unknown): string {
  if (typeof value !== 'string') throw new Error('a stored field is malformed');
  return value;
}
