/**
 * Where the library gets "now" from. Injected everywhere so that tests, the demo and the
 * simulation can move time without sleeping.
 *
 * @example
 * const clock: Clock = systemClock;
 * clock.now(); // Date
 */
export interface Clock {
  /** The current instant. */
  now(): Date;
  /**
   * Resolves after `ms` milliseconds of *this clock's* time. The system clock uses a timer;
   * `FakeClock` resolves when a test advances it.
   */
  sleep(ms: number): Promise<void>;
}

/** The real clock: `Date` and `setTimeout`. */
export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};
