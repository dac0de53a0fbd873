/** The time, as the services see it. Adapters: `systemClock`, and `ManualClock` for tests. */
export interface Clock {
  /** A fresh Date each call; callers may keep or change it. */
  now(): Date;
}
