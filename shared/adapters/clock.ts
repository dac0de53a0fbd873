// Clock adapters: the real time, and a clock tests (and time-jump scenarios such as expiry)
// set and advance by hand.
import type { Clock } from '../ports/clock.ts';

export const systemClock: Clock = Object.freeze({ now: () => new Date() });

/** A clock that stands still until told otherwise. */
export class ManualClock implements Clock {
  #ms: number;

  constructor(start: Date | number | string = Date.UTC(2030, 0, 1)) {
    this.#ms = ManualClock.#toMs(start);
  }

  now(): Date {
    return new Date(this.#ms);
  }

  set(time: Date | number | string): this {
    this.#ms = ManualClock.#toMs(time);
    return this;
  }

  /** Moves forward (or back, with a negative value) by `ms` milliseconds. */
  advance(ms: number): this {
    if (!Number.isFinite(ms)) throw new RangeError('advance() needs a finite number of milliseconds');
    return this.set(this.#ms + ms);
  }

  static #toMs(time: Date | number | string): number {
    const ms = time instanceof Date ? time.getTime() : typeof time === 'number' ? time : Date.parse(time);
    if (!Number.isFinite(ms)) throw new RangeError('ManualClock needs a valid time');
    return ms;
  }
}
