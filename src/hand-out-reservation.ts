/**
 * How long a non-releasable hand-out reserves the token, and when a hand-out needs no write at all.
 * Pure functions (epoch milliseconds), shared by the service and the simulation.
 *
 * A token version is held by two kinds of hand-outs, and the reservation a refresh must respect is
 * the later of the two: non-releasable hand-outs raise the entry's `reservedUntilDate` and
 * `pinnedUntilDate`; releasable ones each insert a hold (a row of scm_token_hold: version, until),
 * which their release deletes. Neither touches the other's record.
 *
 * Why a write-free hand-out is safe: a non-releasable hand-out raises `pinnedUntilDate` of the
 * token's version, and nothing lowers it while that version is stored — a release only deletes its
 * hold, a refresh that must not break holders needs the reservation to have ended (its lease is
 * taken by a conditional UPDATE that checks it), a drain waits for it. So when the row read says
 * "version v is pinned until P ≥ now + lifetime", that read is the hand-out's commit point: any
 * later refresh of v respects P, and storing a new token (storeToken) after the read is ordered
 * after the hand-out, exactly as if a reserve UPDATE had won just before it. Only a refresh that
 * explicitly breaks reservations (drain off, or ifHeld: "break") can revoke the token earlier — it
 * breaks written reservations the same way, and is counted.
 *
 * Why a hold is safe without touching the entry row: each side writes, then reads the other's write.
 * The hold is one INSERT … SELECT that reads the entry row with a shared row lock and inserts only
 * if version v is still stored and no refresh lease is live. A refresh takes the lease with an
 * UPDATE of that row (an exclusive lock) and, after that UPDATE has committed, reads the live holds
 * of v in a new statement; if there is one, it gives the lease back and does not refresh. Either
 * the insert locked the row first: the lease UPDATE waits until the insert has committed, and the
 * later read sees the hold. Or the lease committed first: the insert's locking read sees the lease
 * and inserts nothing (the hand-out re-reads and waits for the refresh). Both reads must see the
 * latest committed state — hence the lock clause on MySQL/MariaDB (LOCK IN SHARE MODE; without it
 * InnoDB at READ COMMITTED reads a snapshot) and PostgreSQL (FOR SHARE: it waits for a concurrent
 * UPDATE and re-checks the row it committed); SQLite runs one statement at a time. Lease expiry is
 * judged on each process's clock, as for every lease check: clocks must agree to well within the
 * lease (default 60 s).
 */

import type { ProviderTraits, RefreshPolicy } from "./refresh-policy";

/**
 * A hand-out that must write reserves this fraction of its lifetime beyond it, so that the next
 * hand-outs of the same token within that time are write-free. 0.5: a 5-minute hand-out reserves
 * 7.5 minutes, a 10-minute workspace start 15.
 */
export const RESERVATION_SLACK_FRACTION = 0.5;

/** What the reservation rules need to know about a stored entry. */
export interface ReservationState {
  expiresAtMs?: number;
  pinnedUntilMs?: number;
  draining: boolean;
  /** End of the refresh lease, if one was ever taken (a live one: ≥ now). */
  refreshLeaseUntilMs?: number;
}

/**
 * How long before expiry a token may be refreshed opportunistically — the window the slack must stay
 * out of (reservationEndMs's `refreshWindowMs`): the horizon when opportunistic refresh is on for a
 * revoking provider, Infinity for "whenever unreserved", undefined when no opportunistic refresh
 * happens. The widest horizon, not a per-hand-out-kind one: a pin written by an API hand-out must not
 * delay the refresh a later workspace start (with its longer horizon) would make.
 *
 * @example
 * refreshWindowMs({ opportunistic: true, horizonMs: 1_200_000 }, { revokesOnRefresh: true }); // → 1200000
 */
export function refreshWindowMs(policy: Pick<RefreshPolicy, "opportunistic" | "horizonMs">, provider: ProviderTraits): number | undefined {
  return policy.opportunistic && provider.revokesOnRefresh ? (policy.horizonMs ?? Number.POSITIVE_INFINITY) : undefined;
}

/**
 * The end of the reservation a non-releasable hand-out writes: now + lifetime + slack, where the
 * slack never reaches into the last `max(lifetime, refreshWindow)` before the token's expiry — the
 * period in which the token may be refreshed (opportunistically, or because a request of this
 * lifetime cannot be covered) — so the slack never makes a refresh wait or skip. `refreshWindowMs`:
 * the horizon when opportunistic refresh is on (Infinity for "whenever unreserved": then there is
 * no slack at all), undefined when it is off. No slack while draining (it would delay the drained
 * refresh). The result is never below now + lifetime.
 *
 * @example
 * reservationEndMs(0, 300_000, { expiresAtMs: 3_600_000, draining: false }, 1_200_000); // → 450000 (5 min + 2.5 min slack)
 * reservationEndMs(2_100_000, 300_000, { expiresAtMs: 3_600_000, draining: false }, 1_200_000); // → 2400000 (no slack past 40 min)
 */
export function reservationEndMs(nowMs: number, lifetimeMs: number, entry: Pick<ReservationState, "expiresAtMs" | "draining">, refreshWindowMs: number | undefined, slackFraction = RESERVATION_SLACK_FRACTION): number {
  const needed = nowMs + lifetimeMs;
  if (entry.draining || !(slackFraction > 0)) return needed;
  let end = needed + Math.floor(lifetimeMs * slackFraction);
  if (entry.expiresAtMs !== undefined) end = Math.min(end, entry.expiresAtMs - Math.max(lifetimeMs, refreshWindowMs ?? 0));
  return Math.max(needed, end);
}

/**
 * True when a non-releasable hand-out of `lifetimeMs` may be made without writing: the token's
 * current version is already pinned (by an earlier non-releasable hand-out) until at least
 * now + lifetime, the token itself lasts that long, no drain is under way and no refresh lease is
 * live. The caller must also have decided "reuse" (decide() stays the judge of whether to hand the
 * token out at all).
 */
export function coveredWithoutWrite(entry: ReservationState, nowMs: number, lifetimeMs: number): boolean {
  const needed = nowMs + lifetimeMs;
  if (entry.pinnedUntilMs === undefined || entry.pinnedUntilMs < needed) return false;
  if (entry.expiresAtMs !== undefined && entry.expiresAtMs < needed) return false;
  if (entry.draining) return false;
  return entry.refreshLeaseUntilMs === undefined || entry.refreshLeaseUntilMs < nowMs;
}
