// Reading and writing stored Firestore values strictly, for the Firestore adapters: times are
// Timestamps, and a field that is not what the adapter wrote is an error, never a guess.
import { Timestamp } from '@google-cloud/firestore';

/** gRPC status ALREADY_EXISTS, as Firestore's create() reports a taken document id. */
const ALREADY_EXISTS = 6;

export function isAlreadyExists(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === ALREADY_EXISTS;
}

/** gRPC status FAILED_PRECONDITION, as Firestore reports a write whose precondition failed. */
const FAILED_PRECONDITION = 9;

export function isFailedPrecondition(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === FAILED_PRECONDITION;
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
