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
  /** Flag `token_refresh_drain`: a forced refresh waits for reservations instead of revoking a held token. */
  drain: boolean;
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

  const withinHorizon = policy.horizonMs === undefined || entry.expiresAtMs - nowMs <= policy.horizonMs;
  if (policy.opportunistic && provider.revokesOnRefresh && entry.refreshable && withinHorizon) {
    if (heldByOthers) return { action: "reuse", label: "reserved", extendReservation: true };
    return { action: "refresh", label: "true", forced: false, breaksReservation: false };
  }
  return { action: "reuse", label: "false", extendReservation: true };
}
