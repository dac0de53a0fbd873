// Patient numbers as the front desk types them: normalised (spaces, dots and dashes a person
// copies from a card go) and checked before anything is derived from them, because the
// patient's pseudonym is derived from the exact string. "1234.56.782" and "123456782" must
// reach the same patient, and a typo must never create an invitation for a patient who does
// not exist. The Dutch BSN is built in; other schemes plug in through `PatientNumberScheme`.

/** A way of writing patient numbers: the hospital's MRN, another country's national number. */
export interface PatientNumberScheme {
  /** Short stable name, e.g. `bsn`; shown to ICT, never to patients. */
  readonly id: string;
  /** The canonical form of `input`, or undefined if it is not a valid number in this scheme. */
  normalise(input: string): string | undefined;
}

/** Characters people type between digits; they carry no meaning in any supported scheme. */
const SEPARATORS = /[\s.\-\u00a0]/g;

/**
 * The Dutch burgerservicenummer: nine digits (eight are allowed and get their leading zero back,
 * as some systems drop it) passing the 11-proof: 9·d1 + 8·d2 + … + 2·d8 − 1·d9 ≡ 0 (mod 11).
 * All zeros passes the arithmetic but is no one's number.
 */
export const bsnScheme: PatientNumberScheme = {
  id: 'bsn',
  normalise(input) {
    const digits = input.replace(SEPARATORS, '');
    if (!/^\d{8,9}$/.test(digits)) return undefined;
    const bsn = digits.padStart(9, '0');
    if (bsn === '000000000') return undefined;
    let sum = 0;
    for (let i = 0; i < 8; i++) sum += Number(bsn[i]) * (9 - i);
    sum -= Number(bsn[8]);
    return sum % 11 === 0 ? bsn : undefined;
  },
};

/**
 * A scheme from a regular expression over the separator-free, upper-cased input (for a
 * hospital's own record numbers, e.g. `/^ZH\d{7}$/`). The pattern must be anchored.
 */
export function patternScheme(id: string, pattern: RegExp): PatientNumberScheme {
  if (!pattern.source.startsWith('^') || !pattern.source.endsWith('$')) {
    throw new Error(`the pattern for ${id} must be anchored with ^ and $`);
  }
  return {
    id,
    normalise(input) {
      const value = input.replace(SEPARATORS, '').toUpperCase();
      return value.length <= 64 && pattern.test(value) ? value : undefined;
    },
  };
}

/** The canonical number under the first scheme that accepts it, or undefined. */
export function normalisePatientNumber(
  input: string,
  schemes: readonly PatientNumberScheme[],
): { scheme: string; value: string } | undefined {
  // Bounded before any scheme looks at it: a pasted document is not a patient number.
  if (input.length > 64) return undefined;
  for (const scheme of schemes) {
    const value = scheme.normalise(input);
    if (value !== undefined) return { scheme: scheme.id, value };
  }
  return undefined;
}
