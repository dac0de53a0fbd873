import { describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../../shared/adapters/clock.ts';
import type { Clock } from '../../shared/ports/clock.ts';

describe('Clock adapters', () => {
  it('systemClock tells the time, a fresh Date each call', () => {
    const before = Date.now();
    const now = systemClock.now();
    expect(now.getTime()).toBeGreaterThanOrEqual(before);
    expect(systemClock.now()).not.toBe(now);
  });

  it('ManualClock stands still until set or advanced', () => {
    const clock: Clock & ManualClock = new ManualClock('2030-01-01T00:00:00Z');
    expect(clock.now().toISOString()).toBe('2030-01-01T00:00:00.000Z');
    const seen = clock.now();
    seen.setFullYear(1999); // callers own the Date they get
    expect(clock.now().toISOString()).toBe('2030-01-01T00:00:00.000Z');
    clock.advance(90 * 24 * 3600 * 1000 + 1);
    expect(clock.now().toISOString()).toBe('2030-04-01T00:00:00.001Z');
    clock.set(new Date('2031-06-01T12:00:00Z')).advance(-1000);
    expect(clock.now().toISOString()).toBe('2031-06-01T11:59:59.000Z');
    expect(() => clock.set('not a date')).toThrow(RangeError);
    expect(() => clock.advance(Number.NaN)).toThrow(RangeError);
  });
});
