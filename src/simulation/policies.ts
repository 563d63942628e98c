/**
 * The policies the simulation compares. Only "every-request" bypasses decide(); every other row is
 * the real src/refresh-policy.ts decide() with a RefreshPolicy, plus what the store does around it:
 * whether callers release early and whether the store prepares a refresh when a
 * reservation ends.
 */
import { RESERVATION_SLACK_FRACTION } from "../hand-out-reservation";
import type { EarlyDrain, ProviderTraits, RefreshPolicy } from "../refresh-policy";
import { MINUTE_MS, type UserKind } from "./user-kinds";

/** Bitbucket Data Center: a refresh revokes the old access token at once. */
export const BITBUCKET_DC: ProviderTraits = { revokesOnRefresh: true };

export interface PolicySpec {
  id: string;
  description: string;
  /** "always" = the refresh-on-every-request baseline (no decide()); "decide" = decide() with `policy`. */
  mode: "always" | "decide";
  policy: RefreshPolicy;
  /** Callers release their hold when done (API call: 2-30 s, clone: 1-6 min) instead of holding L. */
  release: boolean;
  /** When a hold ends and leaves the entry unreserved, the store asks decide() (L = 0) whether to refresh now. */
  prepare: boolean;
  /** The waiter's bound; Infinity = wait as long as the drain takes (always < L). */
  maxWaitMs: number;
  /** A release wakes the entry's waiters at once; false = they sleep until decide()'s untilMs (the promised end). */
  wakeOnRelease: boolean;
  /** The reservation slack of hand-outs that must write (src/hand-out-reservation.ts); default the library's. */
  slackFraction: number;
  /** Analysis only (bench/sweep-policies.ts): a policy per user kind, as if the library knew who is a bot. */
  policyByKind?: Partial<Record<UserKind, RefreshPolicy>>;
}

/** Early drain and the per-kind horizon are off unless the row asks for them (decide()'s defaults would switch them on). */
function spec(id: string, description: string, policy: RefreshPolicy, extra: Partial<PolicySpec> = {}): PolicySpec {
  return {
    id,
    description,
    mode: "decide",
    policy: { earlyDrain: null, horizonMarginMs: null, ...policy },
    release: false,
    prepare: false,
    maxWaitMs: Infinity,
    wakeOnRelease: true,
    slackFraction: RESERVATION_SLACK_FRACTION,
    ...extra,
  };
}

/**
 * The library's defaults (DEFAULT_FLAGS): horizon 20 per hand-out kind (margin 8: API hand-outs 13 min,
 * workspace starts 18), drain, and decide()'s default early drain (DEFAULT_EARLY_DRAIN).
 */
const DEFAULTS: RefreshPolicy = { opportunistic: true, horizonMs: 20 * MINUTE_MS, horizonMarginMs: 8 * MINUTE_MS, drain: true, earlyDrain: undefined };

/** Per hand-out kind: horizon min(20, lifetime + 8) min — API hand-outs 13, workspace starts 18. */
const KIND: RefreshPolicy = { opportunistic: true, horizonMs: 20 * MINUTE_MS, drain: true, horizonMarginMs: 8 * MINUTE_MS };

const horizons = [15, 20, 30, 45];

/** Early-drain ramps tried: the wait allowance reaches `rampToMs` at `rampEndMs` of remaining life. */
const RAMP_GENTLE: EarlyDrain = { rampToMs: MINUTE_MS, rampEndMs: 10 * MINUTE_MS };
const RAMP_STEEP: EarlyDrain = { rampToMs: 3 * MINUTE_MS, rampEndMs: 6 * MINUTE_MS };
/** The same as DEFAULT_EARLY_DRAIN (120 s from 8 minutes left), spelled out so the rows say what they run. */
const RAMP_120: EarlyDrain = { rampToMs: 2 * MINUTE_MS, rampEndMs: 8 * MINUTE_MS };

function early(horizonMinutes: number, ramp: EarlyDrain): RefreshPolicy {
  return { opportunistic: true, horizonMs: horizonMinutes * MINUTE_MS, drain: true, earlyDrain: ramp };
}

/** Rows in report order: baselines, Gitpod, horizon, horizon + drain, release, then our extra candidates. */
export const POLICIES: readonly PolicySpec[] = [
  spec("every-request", "baseline: refresh on every request (no decide())", { opportunistic: false, drain: false }, { mode: "always" }),
  spec("cover-only", "refresh only when the token cannot cover L (opportunistic off, drain off)", { opportunistic: false, drain: false }),
  spec("gitpod", "Gitpod #19715: opportunistic whenever unreserved, forced refresh revokes", { opportunistic: true, drain: false }),
  ...horizons.map((h) =>
    spec(`h${h}`, `opportunistic only within ${h} min of expiry, no drain`, { opportunistic: true, horizonMs: h * MINUTE_MS, drain: false }),
  ),
  ...horizons.map((h) =>
    spec(`h${h}-drain`, `horizon ${h} min + drain (forced refresh waits for the reservation)`, {
      opportunistic: true,
      horizonMs: h * MINUTE_MS,
      drain: true,
    }),
  ),
  spec("h20-drain-release", "horizon 20 + drain + early release", { opportunistic: true, horizonMs: 20 * MINUTE_MS, drain: true }, { release: true }),
  spec("gitpod-release", "Gitpod's rule + early release", { opportunistic: true, drain: false }, { release: true }),
  spec("cover-only-drain", "extra: no opportunistic refresh, drain on", { opportunistic: false, drain: true }),
  spec("cover-only-drain-slack0", "extra: no opportunistic refresh, drain on, no write-free slack", { opportunistic: false, drain: true }, { slackFraction: 0 }),
  spec("gitpod-drain", "extra: Gitpod's rule + drain", { opportunistic: true, drain: true }),
  ...[10, 12, 15].map((h) =>
    spec(`h${h}-drain-release`, `extra: horizon ${h} + drain + early release`, { opportunistic: true, horizonMs: h * MINUTE_MS, drain: true }, { release: true }),
  ),
  spec(
    "h10-drain-release-sleep",
    "extra: as h10-drain-release, but waiters sleep until decide()'s untilMs instead of waking on release",
    { opportunistic: true, horizonMs: 10 * MINUTE_MS, drain: true },
    { release: true, wakeOnRelease: false },
  ),
  spec("h20-release", "extra: horizon 20 + early release, no drain", { opportunistic: true, horizonMs: 20 * MINUTE_MS, drain: false }, { release: true }),
  spec("h20-drain-prepare", "extra: horizon 20 + drain + refresh prepared when a reservation ends", { opportunistic: true, horizonMs: 20 * MINUTE_MS, drain: true }, { prepare: true }),
  spec(
    "h20-drain-release-prepare",
    "extra: horizon 20 + drain + early release + prepared refresh",
    { opportunistic: true, horizonMs: 20 * MINUTE_MS, drain: true },
    { release: true, prepare: true },
  ),
  ...[12, 15].map((h) =>
    spec(`h${h}-drain-release-prepare`, `extra: horizon ${h} + drain + early release + prepared refresh`, { opportunistic: true, horizonMs: h * MINUTE_MS, drain: true }, { release: true, prepare: true }),
  ),
  spec("defaults", "the library's defaults: horizon per hand-out kind min(20, lifetime + 8) + drain + early drain (wait ≤ 0→120 s, ramped from the horizon to 8 min left)", DEFAULTS),
  spec("defaults-slack0", "the library's defaults, but hand-outs that must write reserve exactly their lifetime (no write-free slack)", DEFAULTS, { slackFraction: 0 }),
  spec("defaults-release", "the library's defaults + early release", DEFAULTS, { release: true }),
  spec("defaults-shipped", "the library's defaults as shipped: callers wait at most 10 min (defaultMaxWaitMs; else TokenHeldError: failed)", DEFAULTS, { maxWaitMs: 600_000 }),
  spec("defaults-wait30", "the library's defaults, callers wait at most 30 s (else TokenHeldError: failed)", DEFAULTS, { maxWaitMs: 30_000 }),
  spec("h20-kind", "horizon per hand-out kind, min(20, lifetime + 8) min + drain, no early drain", KIND),
  spec("h20-kind-early", "horizon per hand-out kind + drain + the previous early drain (wait ≤ 0→60 s, ramped to 10 min left)", { ...KIND, earlyDrain: RAMP_GENTLE }),
  spec("h20-kind-early-release", "horizon per hand-out kind + drain + early drain + early release", { ...KIND, earlyDrain: RAMP_GENTLE }, { release: true }),
  spec("h20-kind-release", "horizon per hand-out kind + drain + early release, no early drain", KIND, { release: true }),
  spec("h20-early", "the previous defaults: horizon 20 + drain + early drain (wait ≤ 0→60 s, ramped over 20→10 min left)", early(20, RAMP_GENTLE)),
  spec("h20-early120", "horizon 20 + drain + the default early drain (wait ≤ 0→120 s, ramped over 20→8 min left)", early(20, RAMP_120)),
  spec("h20-m10-early120", "horizon per hand-out kind min(20, lifetime + 10) + drain + the default early drain", { ...early(20, RAMP_120), horizonMarginMs: 10 * MINUTE_MS }),
  spec("h18-early", "horizon 18 + drain + early drain (wait ≤ 0→60 s, ramped over 18→10 min left)", early(18, RAMP_GENTLE)),
  spec("h15-early", "horizon 15 + drain + early drain (wait ≤ 0→60 s, ramped over 15→10 min left)", early(15, RAMP_GENTLE)),
  spec("h15-early-steep", "horizon 15 + drain + early drain (wait ≤ 0→180 s, ramped over 15→6 min left)", early(15, RAMP_STEEP)),
  spec("h18-early-release", "horizon 18 + drain + early drain + early release", early(18, RAMP_GENTLE), { release: true }),
  spec("h20-early-release", "horizon 20 + drain + early drain + early release", early(20, RAMP_GENTLE), { release: true }),
  spec("h20-early-wait30", "horizon 20 + drain + early drain, callers wait at most 30 s (else TokenHeldError: failed)", early(20, RAMP_GENTLE), { maxWaitMs: 30_000 }),
  spec("h20-drain-wait30", "horizon 20 + drain, callers wait at most 30 s (else TokenHeldError: failed)", { opportunistic: true, horizonMs: 20 * MINUTE_MS, drain: true }, { maxWaitMs: 30_000 }),
  spec("h18-early-wait30", "horizon 18 + drain + early drain, callers wait at most 30 s (else TokenHeldError: failed)", early(18, RAMP_GENTLE), { maxWaitMs: 30_000 }),
];

/** The policies `npm run simulate` runs by default on every workload and seed (the README's table). */
export const README_POLICIES: readonly string[] = [
  "every-request",
  "cover-only",
  "gitpod",
  "h20",
  "h20-drain",
  "h20-early",
  "h20-early120",
  "h20-kind-early",
  "h20-m10-early120",
  "defaults",
  "defaults-slack0",
  "cover-only-drain",
  "cover-only-drain-slack0",
  "h20-drain-prepare",
  "h30-drain",
  "h45-drain",
  "gitpod-drain",
  "h20-drain-wait30",
  "defaults-wait30",
  "defaults-shipped",
  "h20-drain-release",
  "defaults-release",
  "h15-drain-release",
  "gitpod-release",
];

/** Looks policies up by id; throws on an unknown id so a typo in a CLI flag or a test is loud. */
export function selectPolicies(ids?: readonly string[]): PolicySpec[] {
  if (!ids) return [...POLICIES];
  return ids.map((id) => {
    const found = POLICIES.find((p) => p.id === id);
    if (!found) throw new Error(`simulation: unknown policy "${id}"; known: ${POLICIES.map((p) => p.id).join(", ")}`);
    return found;
  });
}
