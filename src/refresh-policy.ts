/**
 * The refresh decision (docs/how-it-works.md, "The decision table") as one pure function. No I/O, no clock, no injection:
 * the service, the simulation (`npm run simulate`) and the table-driven tests all call this same code.
 *
 * Times are epoch milliseconds so the simulation can call it millions of times cheaply.
 */

/** The `opportunisticRefresh` metric label: "true" = refreshed because unreserved; "reserved" =
 * an opportunistic refresh was skipped because the token is reserved; "false" = everything else. */
export type OpportunisticLabel = "true" | "false" | "reserved";

/** What decide() needs to know about a stored entry. */
export interface EntryState {
  /** Access-token expiry; undefined = the token never expires (GitHub OAuth Apps). */
  expiresAtMs?: number;
  /** The latest instant a handed-out copy has been promised to someone. */
  reservedUntilMs?: number;
  /** A refresh token is stored. */
  refreshable: boolean;
  /** A forced refresh is waiting for the reservations to end (drain); new hand-outs must not extend them. */
  draining: boolean;
}

/** What the caller asks for. */
export interface HandOutRequest {
  /** The token must stay valid until at least now + lifetimeMs. */
  lifetimeMs: number;
  /** How long this caller may wait for other holders to finish (drain). Infinity = as long as needed. */
  maxWaitMs: number;
  /** What to do when the token cannot cover the lifetime, is held by others, and waiting is not possible. */
  ifHeld: "fail" | "break";
}

/** Per-user switches (feature flags) and per-service configuration. */
export interface RefreshPolicy {
  /** Flag `opportunistic_token_refresh`. */
  opportunistic: boolean;
  /** Flag `opportunistic_token_refresh_horizon_minutes` in ms: refresh an unreserved token only when
   * its remaining life is below this. undefined = whenever unreserved (Gitpod's rule). */
  horizonMs?: number;
  /**
   * Per hand-out kind (flag `opportunistic_token_refresh_horizon_margin_minutes`, default 8 minutes): a
   * request's horizon is at most its lifetime + this margin, so a 5-minute API hand-out refreshes later
   * (13 min before expiry) than a 10-minute workspace start (18 min), whose clone holds the token for
   * minutes. undefined or null = the same horizon for every request.
   */
  horizonMarginMs?: number | null;
  /** Flag `token_refresh_drain`: a forced refresh waits for reservations instead of revoking a held token. */
  drain: boolean;
  /**
   * Early drain (needs drain and a horizon): inside the horizon, a request that finds the token held
   * starts the drain itself — it waits for the holders and then refreshes — when they will be done
   * within `earlyDrainWaitMs(remaining life)`. The allowance ramps from 0 at the horizon to
   * `rampToMs` at `rampEndMs` of remaining life, so early on only a nearly-free moment is taken and
   * near expiry a short wait is preferred to the long forced drain that would follow. Never waits
   * longer than the request's maxWaitMs. undefined = DEFAULT_EARLY_DRAIN; null = off.
   */
  earlyDrain?: EarlyDrain | null;
}

/** The early-drain ramp: how long a request inside the horizon may wait to let the token be refreshed. */
export interface EarlyDrain {
  /** The allowance reached at `rampEndMs` of remaining life (and kept below it). */
  rampToMs: number;
  /** Remaining life at which the allowance reaches `rampToMs`; the ramp starts at the horizon. */
  rampEndMs: number;
}


/**
 * The recommended ramp: no wait at the horizon, up to 120 s from 8 minutes of remaining life on. The
 * simulation's choice on both workloads: against 60 s from 10 minutes, 7–9 % less waiting in total for
 * about 1 % more refreshes (README, "Which policy, and why").
 */
export const DEFAULT_EARLY_DRAIN: EarlyDrain = { rampToMs: 120_000, rampEndMs: 8 * 60_000 };

/**
 * How long a request may wait for the holders so that the token can be refreshed early, given the
 * token's remaining life: a linear ramp from 0 at the horizon to `rampToMs` at `rampEndMs`.
 *
 * @example
 * earlyDrainWaitMs(15 * 60_000, 20 * 60_000, { rampToMs: 60_000, rampEndMs: 10 * 60_000 }); // → 30000
 */
export function earlyDrainWaitMs(remainingMs: number, horizonMs: number, ramp: EarlyDrain): number {
  if (remainingMs >= horizonMs) return 0;
  if (remainingMs <= ramp.rampEndMs || horizonMs <= ramp.rampEndMs) return ramp.rampToMs;
  return Math.floor((ramp.rampToMs * (horizonMs - remainingMs)) / (horizonMs - ramp.rampEndMs));
}

/** What the provider does to the old access token on refresh. */
export interface ProviderTraits {
  /** true for Bitbucket DC, GitLab, GitHub App user tokens: refresh revokes the old access token at once. */
  revokesOnRefresh: boolean;
}

export type Decision =
  | { action: "none" }
  | { action: "reuse"; label: OpportunisticLabel; extendReservation: boolean }
  | { action: "refresh"; label: OpportunisticLabel; forced: boolean; breaksReservation: boolean }
  | { action: "wait"; label: "false"; untilMs: number }
  | { action: "not_refreshable" }
  | { action: "held"; label: "false"; untilMs: number };

/**
 * Decides what a hand-out does. Rows, in order (explained in docs/how-it-works.md):
 *
 * | situation                                                        | action                          | label      |
 * |------------------------------------------------------------------|---------------------------------|------------|
 * | no entry                                                         | none                            | —          |
 * | token never expires                                              | reuse                           | "false"    |
 * | cannot cover now+L, no refresh token                             | not_refreshable                 | —          |
 * | cannot cover, revoking provider, held by others, drain on        | wait until the reservation ends | "false"    |
 * |   … but the wait exceeds maxWaitMs                               | held (error) or forced refresh  | "false"    |
 * | cannot cover (otherwise)                                         | forced refresh                  | "false"    |
 * | draining, unreserved now                                         | refresh (the drained one)       | "false"    |
 * | draining, reserved, request fits inside the reservation          | reuse without extending         | "false"    |
 * | draining, reserved, request would extend it                      | wait until the reservation ends | "false"    |
 * | opportunistic on, revoking provider, within horizon, unreserved  | refresh                         | "true"     |
 * | … reserved, early drain on, holders done within the ramp's wait  | wait until the reservation ends | "false"    |
 * | opportunistic on, revoking provider, within horizon, reserved    | reuse                           | "reserved" |
 * | otherwise                                                        | reuse                           | "false"    |
 *
 * @example
 * decide({ expiresAtMs: now + 3_600_000, refreshable: true, draining: false }, { lifetimeMs: 300_000, maxWaitMs: Infinity, ifHeld: "fail" },
 *        now, { opportunistic: true, horizonMs: 1_200_000, drain: true }, { revokesOnRefresh: true });
 * // → { action: "reuse", label: "false", extendReservation: true }  (60 min left: outside the 20-min horizon)
 */
export function decide(
  entry: EntryState | undefined,
  request: HandOutRequest,
  nowMs: number,
  policy: RefreshPolicy,
  provider: ProviderTraits,
): Decision {
  if (!entry) return { action: "none" };
  if (entry.expiresAtMs === undefined) return { action: "reuse", label: "false", extendReservation: true };

  const neededUntilMs = nowMs + request.lifetimeMs;
  // A hold never outlives the token: once it has expired, a refresh cannot break anyone. (Matters
  // when the SCM issues tokens shorter than the requested lifetime.)
  const reservedUntilMs = Math.min(entry.reservedUntilMs ?? 0, entry.expiresAtMs);
  const heldByOthers = provider.revokesOnRefresh && reservedUntilMs > nowMs;

  if (entry.expiresAtMs < neededUntilMs) {
    if (!entry.refreshable) return { action: "not_refreshable" };
    if (heldByOthers && policy.drain) {
      if (reservedUntilMs - nowMs <= request.maxWaitMs) return { action: "wait", label: "false", untilMs: reservedUntilMs };
      if (request.ifHeld === "fail") return { action: "held", label: "false", untilMs: reservedUntilMs };
    }
    return { action: "refresh", label: "false", forced: true, breaksReservation: heldByOthers };
  }

  if (entry.draining && provider.revokesOnRefresh && entry.refreshable) {
    if (!heldByOthers) return { action: "refresh", label: "false", forced: false, breaksReservation: false };
    if (neededUntilMs <= reservedUntilMs) return { action: "reuse", label: "false", extendReservation: false };
    if (reservedUntilMs - nowMs <= request.maxWaitMs) return { action: "wait", label: "false", untilMs: reservedUntilMs };
    // Cannot wait, but the current token covers the request: hand it out; extending the reservation
    // only delays the drained refresh, it never breaks a holder.
    return { action: "reuse", label: "false", extendReservation: true };
  }

  const marginMs = policy.horizonMarginMs ?? undefined;
  const horizonMs = policy.horizonMs === undefined || marginMs === undefined ? policy.horizonMs : Math.min(policy.horizonMs, request.lifetimeMs + marginMs);
  const withinHorizon = horizonMs === undefined || entry.expiresAtMs - nowMs <= horizonMs;
  if (policy.opportunistic && provider.revokesOnRefresh && entry.refreshable && withinHorizon) {
    const ramp = policy.earlyDrain === undefined ? DEFAULT_EARLY_DRAIN : policy.earlyDrain;
    if (heldByOthers && policy.drain && ramp && horizonMs !== undefined) {
      // Early drain: the holders are done soon, so wait for them now rather than extend the
      // reservation towards a forced drain near expiry (which makes more callers wait, for longer).
      const allowedMs = Math.min(request.maxWaitMs, earlyDrainWaitMs(entry.expiresAtMs - nowMs, horizonMs, ramp));
      if (reservedUntilMs - nowMs <= allowedMs) return { action: "wait", label: "false", untilMs: reservedUntilMs };
    }
    if (heldByOthers) return { action: "reuse", label: "reserved", extendReservation: true };
    return { action: "refresh", label: "true", forced: false, breaksReservation: false };
  }
  return { action: "reuse", label: "false", extendReservation: true };
}
