// Generation and metageneration preconditions. Writes that fail one answer 412
// conditionNotMet; reads answer 412 for a failed *Match and 304 for a failed *NotMatch,
// as Cloud Storage does. Generation 0 stands for "no live object".
import { conditionNotMet, invalid, notModified } from './errors.ts';

export interface Preconditions {
  ifGenerationMatch?: string;
  ifGenerationNotMatch?: string;
  ifMetagenerationMatch?: string;
  ifMetagenerationNotMatch?: string;
}

export interface Versioned {
  generation: number;
  metageneration: number;
}

const KEYS = [
  'GenerationMatch',
  'GenerationNotMatch',
  'MetagenerationMatch',
  'MetagenerationNotMatch',
] as const;
const INT64 = /^-?\d{1,19}$/;

/** A non-negative int64 query parameter, or undefined when absent. */
export function int64Param(query: URLSearchParams, name: string): string | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  const value = raw.trim();
  if (!INT64.test(value) || BigInt(value) < 0n || BigInt(value) > 9223372036854775807n) {
    throw invalid(`Invalid value for parameter '${name}': '${raw}'`);
  }
  return BigInt(value).toString();
}

/** `ifGenerationMatch`… or, with `source`, `ifSourceGenerationMatch`… */
export function parsePreconditions(query: URLSearchParams, source = false): Preconditions {
  const out: Preconditions = {};
  for (const key of KEYS) {
    const value = int64Param(query, source ? `ifSource${key}` : `if${key}`);
    if (value !== undefined) out[`if${key}`] = value;
  }
  return out;
}

const same = (expected: string, actual: number): boolean => BigInt(expected) === BigInt(actual);

/** Throws when `current` (undefined: no live object) does not satisfy `p`. */
export function checkPreconditions(
  p: Preconditions,
  current: Versioned | undefined,
  mode: 'read' | 'write',
): void {
  const generation = current?.generation ?? 0;
  const metageneration = current?.metageneration ?? 0;
  if (p.ifGenerationMatch !== undefined && !same(p.ifGenerationMatch, generation)) throw conditionNotMet();
  if (p.ifMetagenerationMatch !== undefined && (!current || !same(p.ifMetagenerationMatch, metageneration))) {
    throw conditionNotMet();
  }
  const failedNotMatch =
    (p.ifGenerationNotMatch !== undefined && same(p.ifGenerationNotMatch, generation)) ||
    (p.ifMetagenerationNotMatch !== undefined &&
      current !== undefined &&
      same(p.ifMetagenerationNotMatch, metageneration));
  if (failedNotMatch) throw mode === 'read' ? notModified() : conditionNotMet();
}
