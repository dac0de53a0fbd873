// The *_crc32c fields of Cloud KMS. They are google.protobuf.Int64Value wrappers, so "not
// set" (null) differs from a checksum of 0. A request-side checksum that is set must
// match its data, or the call fails with INVALID_ARGUMENT before anything is done.
import { crc32c } from '../../shared/core/checksums/crc32c.ts';
import { invalidArgument } from './errors.ts';

/** An Int64Value as proto-loader decodes it (longs as numbers); null when unset. */
export type Int64Value = { value: number | string } | null;

/** Returns true when the checksum was set and matches; false when it was not set. */
export function verifyCrc32c(
  checksum: Int64Value,
  data: Uint8Array,
  field: string,
  dataField: string,
): boolean {
  if (checksum === null || checksum === undefined) return false;
  const expected = crc32c(data);
  const given = typeof checksum.value === 'string' ? Number(checksum.value) : checksum.value;
  if (given !== expected) {
    throw invalidArgument(`The checksum in field ${field} did not match the data in field ${dataField}.`);
  }
  return true;
}

export function crc32cValue(data: Uint8Array): { value: number } {
  return { value: crc32c(data) };
}
