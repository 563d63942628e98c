/**
 * Arrival models: who asks for a token, when, for how long, and when they are really done with it.
 *
 * One time zone, a week that starts on Monday 00:00; humans work on weekdays (a little on weekends),
 * bots run around the clock. The arrivals of a user depend only on (seed, user index), never on the
 * policy, so every policy is compared on exactly the same request stream (common random numbers).
 */
import { Prng, deriveSeed } from "./prng";

export const SECOND_MS = 1_000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

export const USER_KINDS = ["idle", "normal", "heavy", "bot"] as const;
export type UserKind = (typeof USER_KINDS)[number];

/** Workspace start: the default workspace-start lifetime of 10 minutes; any other call (API, git credential): 5 minutes. */
export const LIFETIME_MS = { workspace: 10 * MINUTE_MS, api: 5 * MINUTE_MS } as const;
export type RequestType = keyof typeof LIFETIME_MS;

/** One hand-out request. releaseAfterMs is when the caller would release it, if releasing is modelled. */
export interface SimRequest {
  atMs: number;
  type: RequestType;
  lifetimeMs: number;
  releaseAfterMs: number;
}

/**
 * Two arrival models, so that no policy is tuned to one of them:
 * - "sessions": humans work in sessions (clustered requests), a little on weekends; every stored token has expired at the start.
 * - "scattered": humans' requests are scattered over a 9-hour working day, no weekends; continuous
 *   users request every 2-4 minutes (always reserved without early release); every token starts
 *   part-way through its hour.
 */
export const WORKLOADS = ["sessions", "scattered"] as const;
export type Workload = (typeof WORKLOADS)[number];

/** The default population: 30 % idle, 45 % normal, 20 % heavy, 5 % bots. */
export const DEFAULT_MIX: Readonly<Record<UserKind, number>> = { idle: 300, normal: 450, heavy: 200, bot: 50 };

/** Each workload's population mix. */
export const WORKLOAD_MIX: Readonly<Record<Workload, Readonly<Record<UserKind, number>>>> = {
  sessions: DEFAULT_MIX,
  scattered: { idle: 500, normal: 350, heavy: 130, bot: 20 },
};

/** What each kind does in the "sessions" workload; shown in the report so that a reader can judge the model. */
export const KIND_DESCRIPTIONS: Readonly<Record<UserKind, string>> = {
  idle: "weekday: 35 % chance of one session (workspace start + Poisson(1) API calls within 15 min); weekend 5 %",
  normal: "weekday: Poisson(3) sessions of 20-90 min in a 9 h day (workspace start, API call every ~6 min, 30 % a 2nd start); weekend Poisson(0.2)",
  heavy: "weekday: 9-11 h active, API call every ~2 min (Poisson), Poisson(12) workspace starts; weekend 30 % chance of a 3 h block",
  bot: "around the clock: a request every m×U(0.5,1.5) min, m per bot in 2-6 min; 15 % are workspace starts",
};

/** The same for the "scattered" workload. */
export const SCATTERED_KIND_DESCRIPTIONS: Readonly<Record<UserKind, string>> = {
  idle: "weekdays only: Poisson(1) requests scattered over a 9 h day (40 % workspace starts)",
  normal: "weekdays only: Poisson(30) requests scattered over a 9 h day (~1 per 18 min; 15 % workspace starts)",
  heavy: "weekdays only: Poisson(200) requests scattered over a 9 h day (~1 per 2.7 min; 10 % workspace starts)",
  bot: "continuous, around the clock: a request every U(2,4) min (shorter than the 5-min lifetime); 15 % workspace starts",
};

/** Kind descriptions of a workload. */
export function kindDescriptions(workload: Workload): Readonly<Record<UserKind, string>> {
  return workload === "sessions" ? KIND_DESCRIPTIONS : SCATTERED_KIND_DESCRIPTIONS;
}

/** Splits `users` by the mix's proportions (largest remainder), kinds in a fixed order. */
export function assignKinds(users: number, mix: Readonly<Record<UserKind, number>> = DEFAULT_MIX): UserKind[] {
  const total = USER_KINDS.reduce((sum, kind) => sum + mix[kind], 0);
  const exact = USER_KINDS.map((kind) => (users * mix[kind]) / total);
  const counts = exact.map(Math.floor);
  const order = USER_KINDS.map((_, i) => i).sort((a, b) => exact[b] - counts[b] - (exact[a] - counts[a]) || a - b);
  for (let i = 0, left = users - counts.reduce((s, c) => s + c, 0); left > 0; i++, left--) counts[order[i]]++;
  return USER_KINDS.flatMap((kind, i) => Array<UserKind>(counts[i]).fill(kind));
}

function request(rng: Prng, atMs: number, type: RequestType): SimRequest {
  // Early release: an API call is done within seconds, a clone within minutes.
  const releaseAfterMs = type === "api" ? rng.uniform(2, 30) * SECOND_MS : rng.uniform(1, 6) * MINUTE_MS;
  return { atMs: Math.round(atMs), type, lifetimeMs: LIFETIME_MS[type], releaseAfterMs: Math.round(releaseAfterMs) };
}

/** A Poisson process of API calls in [fromMs, toMs). */
function apiCalls(rng: Prng, out: SimRequest[], fromMs: number, toMs: number, meanGapMs: number): void {
  for (let t = fromMs + rng.exponential(meanGapMs); t < toMs; t += rng.exponential(meanGapMs)) out.push(request(rng, t, "api"));
}

function isWeekday(day: number): boolean {
  return day % 7 < 5;
}

function idleDay(rng: Prng, out: SimRequest[], dayStartMs: number, workStartMs: number, weekday: boolean): void {
  if (!rng.chance(weekday ? 0.35 : 0.05)) return;
  const start = dayStartMs + workStartMs + rng.uniform(0, 8 * HOUR_MS);
  out.push(request(rng, start, "workspace"));
  for (let i = rng.poisson(1); i > 0; i--) out.push(request(rng, start + rng.uniform(0, 15 * MINUTE_MS), "api"));
}

function normalDay(rng: Prng, out: SimRequest[], dayStartMs: number, workStartMs: number, weekday: boolean): void {
  for (let s = rng.poisson(weekday ? 3 : 0.2); s > 0; s--) {
    const start = dayStartMs + workStartMs + rng.uniform(0, 9 * HOUR_MS);
    const durationMs = rng.uniform(20, 90) * MINUTE_MS;
    out.push(request(rng, start, "workspace"));
    if (rng.chance(0.3)) out.push(request(rng, start + rng.uniform(0, durationMs), "workspace"));
    apiCalls(rng, out, start, start + durationMs, 6 * MINUTE_MS);
  }
}

function heavyDay(rng: Prng, out: SimRequest[], dayStartMs: number, workStartMs: number, weekday: boolean): void {
  let fromMs: number;
  let toMs: number;
  if (weekday) {
    fromMs = dayStartMs + workStartMs + rng.uniform(-0.5, 0.5) * HOUR_MS;
    toMs = fromMs + rng.uniform(9, 11) * HOUR_MS;
  } else {
    if (!rng.chance(0.3)) return;
    fromMs = dayStartMs + workStartMs + rng.uniform(0, 8 * HOUR_MS);
    toMs = fromMs + 3 * HOUR_MS;
  }
  const starts = rng.poisson((12 * (toMs - fromMs)) / (10 * HOUR_MS));
  for (let i = 0; i < starts; i++) out.push(request(rng, rng.uniform(fromMs, toMs), "workspace"));
  apiCalls(rng, out, fromMs, toMs, 2 * MINUTE_MS);
}

function botRequests(rng: Prng, out: SimRequest[], endMs: number): void {
  const meanGapMs = rng.uniform(2, 6) * MINUTE_MS;
  for (let t = rng.uniform(0, meanGapMs); t < endMs; t += meanGapMs * rng.uniform(0.5, 1.5)) {
    out.push(request(rng, t, rng.chance(0.15) ? "workspace" : "api"));
  }
}

/** "scattered": `count` requests at uniform times in the user's 9-hour working day. */
function scatteredDay(rng: Prng, out: SimRequest[], dayStartMs: number, workStartMs: number, count: number, workspaceShare: number): void {
  for (let i = 0; i < count; i++) out.push(request(rng, dayStartMs + workStartMs + rng.uniform(0, 9 * HOUR_MS), rng.chance(workspaceShare) ? "workspace" : "api"));
}

const SCATTERED_PER_DAY: Readonly<Record<Exclude<UserKind, "bot">, { mean: number; workspaceShare: number }>> = {
  idle: { mean: 1, workspaceShare: 0.4 },
  normal: { mean: 30, workspaceShare: 0.15 },
  heavy: { mean: 200, workspaceShare: 0.1 },
};

function scatteredRequests(kind: UserKind, rng: Prng, out: SimRequest[], days: number): void {
  if (kind === "bot") {
    for (let t = rng.uniform(0, 4 * MINUTE_MS); t < days * DAY_MS; t += rng.uniform(2, 4) * MINUTE_MS) out.push(request(rng, t, rng.chance(0.15) ? "workspace" : "api"));
    return;
  }
  const workStartMs = rng.uniform(7, 10) * HOUR_MS;
  const { mean, workspaceShare } = SCATTERED_PER_DAY[kind];
  for (let day = 0; day < days; day++) {
    if (isWeekday(day)) scatteredDay(rng, out, day * DAY_MS, workStartMs, rng.poisson(mean), workspaceShare);
  }
}

/**
 * Where each user's stored token starts: "sessions" — expired (the last login was days ago);
 * "scattered" — part-way through its hour (expiry uniform in the first 60 minutes).
 */
export function initialExpiries(workload: Workload, users: number, seed: number): number[] {
  if (workload === "sessions") return Array<number>(users).fill(-1);
  return Array.from({ length: users }, (_, user) => Math.round(new Prng(deriveSeed(seed, user, 2)).uniform(0, HOUR_MS)));
}

/**
 * All requests of one user over `days`, sorted by time.
 *
 * @example
 * generateRequests("heavy", 7, 42, 17).length; // ≈ 1,600 (a heavy user's week)
 */
export function generateRequests(kind: UserKind, days: number, seed: number, userIndex: number, workload: Workload = "sessions"): SimRequest[] {
  const rng = new Prng(deriveSeed(seed, userIndex, 1));
  const out: SimRequest[] = [];
  const endMs = days * DAY_MS;
  if (workload === "scattered") {
    scatteredRequests(kind, rng, out, days);
  } else if (kind === "bot") {
    botRequests(rng, out, endMs);
  } else {
    const workStartMs = rng.uniform(7, 10) * HOUR_MS; // the user's usual start of the working day
    const perDay = kind === "idle" ? idleDay : kind === "normal" ? normalDay : heavyDay;
    for (let day = 0; day < days; day++) perDay(rng, out, day * DAY_MS, workStartMs, isWeekday(day));
  }
  // Requests beyond the simulated period are dropped, so a run of d days never sees day d+1.
  return out.filter((r) => r.atMs < endMs).sort((a, b) => a.atMs - b.atMs);
}
