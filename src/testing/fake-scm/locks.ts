import type { Clock } from "../../clock";

/** How often a lock waiter looks at the clock (real milliseconds). */
const CLOCK_POLL_MS = 5;

/**
 * The two server-side concurrency models:
 * - GitLab/Doorkeeper takes a row lock on the refresh token inside a transaction, so refreshes of
 *   one family are serialized and the loser finds a revoked row (`serialized_one_winner`).
 * - BB DC takes one cluster lock for *every* refresh on the instance and gives up after
 *   `max.lock.timeout.seconds` (`global_lock`).
 */

export type Release = () => void;

/** A FIFO async mutex. */
class Mutex {
  private held = false;
  private readonly waiters: Array<() => void> = [];

  get idle(): boolean {
    return !this.held && this.waiters.length === 0;
  }

  /** Waits for the lock; with `timeout`, gives up (undefined) if `timeout` settles first. */
  async acquire(timeout?: () => { expired: Promise<void>; cancel(): void }): Promise<Release | undefined> {
    if (!this.held) {
      this.held = true;
      return this.releaser();
    }
    let grant!: () => void;
    const granted = new Promise<void>((resolve) => (grant = resolve));
    this.waiters.push(grant);
    if (!timeout) {
      await granted;
      return this.releaser();
    }
    const timer = timeout();
    const won = await Promise.race([granted.then(() => true), timer.expired.then(() => false)]);
    timer.cancel();
    if (won) return this.releaser();
    const index = this.waiters.indexOf(grant);
    if (index >= 0) {
      this.waiters.splice(index, 1);
      return undefined;
    }
    // The lock was handed over in the same tick the timeout fired: take it after all.
    return this.releaser();
  }

  private releaser(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) next(); // ownership passes straight to the next waiter
      else this.held = false;
    };
  }
}

/** One mutex per key (family id, or a single key for the global lock), dropped when idle. */
export class KeyedLocks {
  private readonly locks = new Map<string, Mutex>();

  constructor(private readonly clock: Clock) {}

  /** Waits as long as it takes. */
  async acquire(key: string): Promise<Release> {
    const release = await this.mutex(key).acquire();
    return this.wrap(key, release as Release);
  }

  /** Waits until the injected clock has moved `timeoutMs` past the start of the wait; undefined on timeout. */
  async acquireWithin(key: string, timeoutMs: number): Promise<Release | undefined> {
    const release = await this.mutex(key).acquire(() => this.timeout(timeoutMs));
    return release ? this.wrap(key, release) : undefined;
  }

  private mutex(key: string): Mutex {
    let mutex = this.locks.get(key);
    if (!mutex) {
      mutex = new Mutex();
      this.locks.set(key, mutex);
    }
    return mutex;
  }

  private wrap(key: string, release: Release): Release {
    return () => {
      release();
      if (this.locks.get(key)?.idle) this.locks.delete(key);
    };
  }

  /**
   * Expires once the injected clock has passed now + `ms`. It watches the clock instead of calling
   * `clock.sleep()`, so a waiter never moves a `FakeClock` itself: the timeout fires when the test
   * (or anyone's `sleep()`) advances time past the deadline, or after `ms` of real time on `systemClock`.
   */
  private timeout(ms: number): { expired: Promise<void>; cancel(): void } {
    const deadline = this.clock.now().getTime() + ms;
    let poll: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      const check = () => {
        if (this.clock.now().getTime() < deadline) return;
        clearInterval(poll);
        resolve();
      };
      poll = setInterval(check, CLOCK_POLL_MS);
      poll.unref(); // the waiting HTTP request keeps the process alive, not this timer
      check();
    });
    return { expired, cancel: () => clearInterval(poll) };
  }
}
