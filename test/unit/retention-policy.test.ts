// Retention policy bounds: defaults are complete and within bounds, every setting refuses a
// value outside its bounds, acknowledged records cannot outlive records, NEN 7513's five-year
// audit minimum cannot be lowered, unknown settings are refused, and changes parse strictly.
import { describe, expect, it } from 'vitest';
import { parsePolicyChanges } from '../../clients/admin/admin.ts';
import {
  changePolicy,
  DEFAULT_RETENTION_POLICY,
  resolvePolicy,
  RETENTION_BOUNDS,
  RETENTION_SETTINGS,
} from '../../shared/retention/policy.ts';

describe('retention policy', () => {
  it('defaults are complete and valid, and a stored partial policy is completed with them', () => {
    expect(resolvePolicy(undefined)).toEqual(DEFAULT_RETENTION_POLICY);
    expect(resolvePolicy({ recordDays: 30 })).toEqual({ ...DEFAULT_RETENTION_POLICY, recordDays: 30 });
  });

  it('refuses each setting just outside its bounds and accepts its bounds', () => {
    for (const name of RETENTION_SETTINGS) {
      const [, min, max] = RETENTION_BOUNDS[name];
      const base = { ...DEFAULT_RETENTION_POLICY, recordDays: 400, acknowledgedRecordDays: 1 };
      expect(changePolicy(base, { [name]: min })[name]).toBe(min);
      expect(changePolicy(base, { [name]: max })[name]).toBe(max);
      expect(() => changePolicy(base, { [name]: min - 1 }), `${name} below`).toThrow();
      expect(() => changePolicy(base, { [name]: max + 1 }), `${name} above`).toThrow();
      expect(() => changePolicy(base, { [name]: min + 0.5 }), `${name} fraction`).toThrow();
    }
  });

  it('keeps acknowledged records no longer than records, and audit entries at least five years', () => {
    expect(() =>
      changePolicy(DEFAULT_RETENTION_POLICY, { recordDays: 10, acknowledgedRecordDays: 14 }),
    ).toThrow();
    expect(() => changePolicy(DEFAULT_RETENTION_POLICY, { auditEntryDays: 365 })).toThrow();
    expect(() => resolvePolicy({ keepForever: 1 })).toThrow();
  });

  it('parses NAME=NUMBER changes strictly', () => {
    expect(parsePolicyChanges(['recordDays=30', 'quarantineDays=7'])).toEqual({
      recordDays: 30,
      quarantineDays: 7,
    });
    for (const bad of ['recordDays', 'recordDays=-1', 'recordDays=1e3', 'nope=3', 'recordDays=30days']) {
      expect(() => parsePolicyChanges([bad]), bad).toThrow(/NAME=NUMBER/);
    }
  });
});
