import type { Clock } from "./clock";
import { TransientScmError, type RefreshedToken, type ScmProvider } from "./providers/scm-provider";

/** How hard to try an SCM that fails transiently. */
export interface RetryOptions {
  /** Attempts in all, the first included (default 3). */
  maxAttempts: number;
  /** Backoff before the 2nd attempt; doubles each time, with jitter (default 200 ms). */
  baseDelayMs: number;
  /** Upper bound for one backoff, also for a server's Retry-After (default 5 s). */
  maxDelayMs: number;
  /** Per-request timeout (default 10 s). */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 5_000, timeoutMs: 10_000 };

/** What happened across the attempts, for error classification by the caller. */
export interface RetryTrail {
  attempts: number;
  /** Some failed attempt may have committed a rotation at the SCM (5xx, timeout, reset). */
  sawAmbiguousFailure: boolean;
}

/**
 * Calls provider.refresh with bounded retries on TransientScmError only; any other error ends the
 * loop at once. Hand-written (about 20 lines) rather than p-retry because the backoff must sleep on
 * the injected clock (tests move time instead of waiting) and must honour Retry-After, and because
 * the caller needs to know whether an attempt was ambiguous.
 */
export async function refreshWithRetries(
  provider: ScmProvider,
  refreshToken: string,
  clock: Clock,
  options: RetryOptions,
  trail: RetryTrail,
): Promise<RefreshedToken> {
  for (;;) {
    trail.attempts++;
    try {
      return await provider.refresh(refreshToken, { now: clock.now(), timeoutMs: options.timeoutMs });
    } catch (e) {
      if (!(e instanceof TransientScmError)) throw e;
      trail.sawAmbiguousFailure ||= e.ambiguous;
      if (trail.attempts >= options.maxAttempts) throw e;
      const backoff = options.baseDelayMs * 2 ** (trail.attempts - 1) * (0.5 + Math.random() / 2);
      await clock.sleep(Math.min(options.maxDelayMs, Math.max(backoff, e.retryAfterMs ?? 0)));
    }
  }
}
