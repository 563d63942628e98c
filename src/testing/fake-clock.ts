import type { Clock } from "../clock";

interface Sleeper {
  wakeAt: number;
  resolve: () => void;
}

/**
 * A clock that only moves when told to. Share one instance between the token service and a
 * `FakeScmServer` so that both agree on what "now" is.
 *
 * `sleep()` (used by retry backoff and by waiters polling for a sibling's refresh) resolves when
 * `advance()` / `set()` moves the clock past its wake-up time. With `autoAdvance: true` a sleep
 * moves the clock forward by itself instead, which keeps retry loops in tests instant.
 *
 * @example
 * const clock = new FakeClock(new Date("2026-01-01T00:00:00Z"));
 * clock.advanceMinutes(55);
 * clock.now().toISOString(); // "2026-01-01T00:55:00.000Z"
 */
export class FakeClock implements Clock {
  private current: number;
  private sleepers: Sleeper[] = [];
  private readonly autoAdvance: boolean;

  constructor(start: Date | string | number = "2026-01-01T00:00:00.000Z", options: { autoAdvance?: boolean } = {}) {
    this.current = new Date(start).getTime();
    this.autoAdvance = options.autoAdvance ?? true;
  }

  now(): Date {
    return new Date(this.current);
  }

  sleep(ms: number): Promise<void> {
    if (this.autoAdvance) {
      this.current += Math.max(0, ms);
      this.wakeDue();
      // Yield to the event loop so that I/O started by others can make progress.
      return new Promise((resolve) => setImmediate(resolve));
    }
    // A sleep that is due already (0 ms, or a deadline the clock was set past while the caller
    // computed it) ends on the next turn, as a real timer would; it must not wait for the next set().
    if (!(ms > 0)) return new Promise((resolve) => setImmediate(resolve));
    return new Promise((resolve) => {
      this.sleepers.push({ wakeAt: this.current + ms, resolve });
    });
  }

  /** Moves the clock forward by `ms` milliseconds and wakes due sleepers. */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`FakeClock.advance: ms must be a finite number >= 0, got ${ms}`);
    this.current += ms;
    this.wakeDue();
  }

  advanceMinutes(minutes: number): void {
    this.advance(minutes * 60_000);
  }

  /** Sets the clock to an absolute instant (never backwards). */
  set(instant: Date | string | number): void {
    const target = new Date(instant).getTime();
    if (target < this.current) throw new RangeError("FakeClock.set: cannot move backwards");
    this.current = target;
    this.wakeDue();
  }

  private wakeDue(): void {
    const due = this.sleepers.filter((s) => s.wakeAt <= this.current);
    this.sleepers = this.sleepers.filter((s) => s.wakeAt > this.current);
    for (const s of due) s.resolve();
  }
}
