// Patient numbers at the front desk: the BSN's 11-proof accepts real-shaped numbers in the ways
// people write them and refuses typos (one digit changed, two swapped), and a hospital's own
// scheme plugs in beside it.
import { describe, expect, it } from 'vitest';
import {
  bsnScheme,
  normalisePatientNumber,
  patternScheme,
} from '../../clients/connector/console/patient-number.ts';

// Test numbers that pass the 11-proof (none belongs to a known person; 111222333 is the
// Dutch government's own example).
const VALID = ['111222333', '123456782', '010000008'];

describe('BSN 11-proof', () => {
  it('accepts valid numbers however they are written and returns nine digits', () => {
    for (const bsn of VALID) expect(bsnScheme.normalise(bsn)).toBe(bsn);
    expect(bsnScheme.normalise('1234.56.782')).toBe('123456782');
    expect(bsnScheme.normalise(' 123 456 782 ')).toBe('123456782');
    expect(bsnScheme.normalise('123-456-782')).toBe('123456782');
    // Eight digits: a system dropped the leading zero.
    expect(bsnScheme.normalise('10000008')).toBe('010000008');
  });

  it('refuses every single-digit typo and every adjacent swap of a valid number', () => {
    for (const bsn of VALID) {
      for (let i = 0; i < 9; i++) {
        for (let d = 0; d <= 9; d++) {
          if (String(d) === bsn[i]) continue;
          const typo = bsn.slice(0, i) + d + bsn.slice(i + 1);
          expect(bsnScheme.normalise(typo), typo).toBeUndefined();
        }
      }
      for (let i = 0; i < 8; i++) {
        if (bsn[i] === bsn[i + 1]) continue;
        const swapped = bsn.slice(0, i) + bsn[i + 1] + bsn[i] + bsn.slice(i + 2);
        // Neighbouring weights differ by 1 (by 3 at the last pair): a swap moves the sum by 1–27, never 11 or 22.
        expect(bsnScheme.normalise(swapped), swapped).toBeUndefined();
      }
    }
  });

  it('refuses what is not a BSN at all', () => {
    for (const input of [
      '',
      '000000000',
      '12345678901',
      '1234567',
      'abcdefghi',
      '12345678x',
      '１２３４５６７８２',
    ]) {
      expect(bsnScheme.normalise(input), input).toBeUndefined();
    }
  });
});

describe('pluggable schemes', () => {
  const mrn = patternScheme('zh-mrn', /^ZH\d{7}$/);

  it('tries each scheme in order and says which one matched', () => {
    expect(normalisePatientNumber('123456782', [bsnScheme, mrn])).toEqual({
      scheme: 'bsn',
      value: '123456782',
    });
    expect(normalisePatientNumber('zh-1234567', [bsnScheme, mrn])).toEqual({
      scheme: 'zh-mrn',
      value: 'ZH1234567',
    });
    expect(normalisePatientNumber('zh-1234567', [bsnScheme])).toBeUndefined();
    expect(normalisePatientNumber('1'.repeat(65), [bsnScheme, mrn])).toBeUndefined();
  });

  it('insists the pattern is anchored (an unanchored one would accept any text containing a match)', () => {
    expect(() => patternScheme('loose', /ZH\d{7}/)).toThrow(/anchored/);
  });
});
