/**
 * runSimulation(params) → results: a pure, deterministic, event-driven comparison of refresh policies.
 *
 * Per policy, one priority queue of events (request arrivals, waiters waking up, holds ending) runs
 * over all users. Each request goes through decide() as the library service would: reuse → hold the
 * current token; refresh → replace it (the SCM revokes the old one) and hold the new one; wait → mark
 * the entry draining, sleep until the reservation ends (or until a release ends it sooner), then
 * decide again. Refreshes are instantaneous: the SCM round trip (~1 s) does not matter at this scale.
 */
import { refreshWindowMs } from "../hand-out-reservation";
import { decide as realDecide } from "../refresh-policy";
import type { Decision, OpportunisticLabel, RefreshPolicy } from "../refresh-policy";
import { EventQueue } from "./event-queue";
import { BITBUCKET_DC, selectPolicies, type PolicySpec } from "./policies";
import { SimulatedStore, TOKEN_LIFETIME_MS, type Revocation } from "./simulated-store";
import {
  LIFETIME_MS,
  MINUTE_MS,
  USER_KINDS,
  WORKLOAD_MIX,
  assignKinds,
  generateRequests,
  initialExpiries,
  type SimRequest,
  type UserKind,
  type Workload,
} from "./user-kinds";
import { minimumWaits } from "./wait-bound";

export interface SimulationParams {
  users: number;
  days: number;
  seed: number;
  /** The arrival model (default "sessions"); see WORKLOADS. */
  workload?: Workload;
  /** Relative weights of the kinds; default: the workload's mix (sessions 300/450/200/50, scattered 500/350/130/20). */
  mix?: Readonly<Record<UserKind, number>>;
  /** Policy ids to run (default: all, in report order). */
  policies?: readonly string[];
  /** Policies not in the catalogue (parameter sweeps); when given, `policies` is ignored. */
  specs?: readonly PolicySpec[];
}

/** Injected so a test can prove the simulation really goes through decide() (wrap it in a spy). */
export interface SimulationDeps {
  decide: typeof realDecide;
}

export interface Metrics {
  users: number;
  userDays: number;
  requests: number;
  handOuts: number;
  /** Hand-outs that wrote nothing: non-releasable, covered by the token version's pin (src/hand-out-reservation.ts). */
  writeFree: number;
  /** writeFree / handOuts. */
  writeFreeShare: number;
  /** SCM refresh calls; = forced + opportunistic + drained + unconditional. */
  refreshes: number;
  /** decide() said forced: the token could not cover the request. */
  forced: number;
  /** decide() label "true" (includes `prepared`). */
  opportunistic: number;
  /** The refresh a drain waited for (decide(): draining and now unreserved). */
  drained: number;
  /** Baseline "every-request" only: a still-valid token refreshed anyway. */
  unconditional: number;
  /** Opportunistic refreshes the store made on its own when a reservation ended (no request). */
  prepared: number;
  /** Holders whose token was revoked before they were done with it. */
  broken: number;
  brokenMinutes: number;
  /** Requests that waited (once per request, however often it re-decided). */
  waits: number;
  /** Refreshes made by a request that had waited (the end of a drain): waits / waitedRefreshes = waiters per drain. */
  waitedRefreshes: number;
  /** … of which the first wait was because the token could not cover L (else: a drain was under way). */
  waitsCannotCover: number;
  waitMinutesTotal: number;
  waitMinutesMax: number;
  waitMinutesAvg: number;
  /** Requests that got no token (decide() said held / not_refreshable / none). */
  failed: number;
  /** Hand-outs whose token expires before now + L (invariant 1): must stay 0. */
  shortHandOuts: number;
  decisions: Record<Decision["action"], number>;
  labels: Record<OpportunisticLabel, number>;
  floorRefreshes: number;
  refreshesPerUserDay: number;
  floorPerUserDay: number;
  /** refreshes / floor refreshes. */
  vsFloor: number;
}

export interface PolicyResult {
  id: string;
  description: string;
  mode: PolicySpec["mode"];
  opportunistic: boolean;
  /** null = whenever unreserved (Gitpod's rule). */
  horizonMinutes: number | null;
  drain: boolean;
  /** The early-drain ramp, null = off. */
  earlyDrain: { rampToSeconds: number; rampEndMinutes: number } | null;
  /** The waiters' bound; null = as long as the drain takes. */
  maxWaitSeconds: number | null;
  release: boolean;
  prepare: boolean;
  wakeOnRelease: boolean;
  /** The reservation slack of hand-outs that must write. */
  slackFraction: number;
  total: Metrics;
  byKind: Record<UserKind, Metrics>;
}

export interface SimulationResults {
  params: {
    users: number;
    days: number;
    seed: number;
    workload: Workload;
    mix: Record<UserKind, number>;
    kindCounts: Record<UserKind, number>;
    provider: string;
    tokenLifetimeMinutes: number;
    lifetimeMinutes: Record<keyof typeof LIFETIME_MS, number>;
    releaseModel: string;
    requests: number;
  };
  floor: {
    method: string;
    total: { refreshes: number; perUserDay: number };
    byKind: Record<UserKind, { refreshes: number; perUserDay: number }>;
  };
  /** src/simulation/wait-bound.ts: no drain policy that breaks nothing makes fewer waits on this request stream. */
  waitBound: {
    method: string;
    total: WaitBoundCounts;
    byKind: Record<UserKind, WaitBoundCounts>;
  };
  policies: PolicyResult[];
}

/** The fewest waits possible, and the refreshes of the schedule that reaches them (× the floor). */
export interface WaitBoundCounts {
  waits: number;
  refreshes: number;
  vsFloor: number;
}

interface RawMetrics {
  requests: number;
  handOuts: number;
  writeFree: number;
  refreshes: number;
  forced: number;
  opportunistic: number;
  drained: number;
  unconditional: number;
  prepared: number;
  broken: number;
  brokenMs: number;
  waits: number;
  waitedRefreshes: number;
  waitsCannotCover: number;
  waitMsTotal: number;
  waitMsMax: number;
  failed: number;
  shortHandOuts: number;
  decisions: Record<Decision["action"], number>;
  labels: Record<OpportunisticLabel, number>;
}

function emptyRaw(): RawMetrics {
  return {
    requests: 0,
    handOuts: 0,
    writeFree: 0,
    refreshes: 0,
    forced: 0,
    opportunistic: 0,
    drained: 0,
    unconditional: 0,
    prepared: 0,
    broken: 0,
    brokenMs: 0,
    waits: 0,
    waitedRefreshes: 0,
    waitsCannotCover: 0,
    waitMsTotal: 0,
    waitMsMax: 0,
    failed: 0,
    shortHandOuts: 0,
    decisions: { none: 0, reuse: 0, refresh: 0, wait: 0, held: 0, not_refreshable: 0 },
    labels: { true: 0, false: 0, reserved: 0 },
  };
}

/** A request in flight (possibly waiting). */
interface Pending {
  user: number;
  request: SimRequest;
  waiting: boolean;
  /** Bumped on every (re)scheduled wake-up, so a stale timer is ignored. */
  generation: number;
  untilMs: number;
}

type SimEvent =
  | { type: "arrival"; user: number; index: number }
  | { type: "wake"; pending: Pending; generation: number }
  | { type: "holdEnd"; user: number };

interface Population {
  kinds: UserKind[];
  requests: SimRequest[][];
  /** Each user's stored token's expiry at time 0. */
  initialExpiresAtMs: number[];
}

/**
 * The floor: the fewest refreshes any policy can make on this request stream. A token refreshed at
 * r serves requests at t ≥ r with t + L ≤ r + 60 min, so refreshing lazily — at the first request the
 * current token cannot cover — is optimal (refreshing earlier only moves the coverage window left).
 * That is exactly "cover-only"; the floor ignores reservations, so no policy that never breaks one
 * can beat it.
 */
export function floorRefreshes(requests: readonly SimRequest[], initialExpiresAtMs = -Infinity): number {
  let expiresAtMs = initialExpiresAtMs;
  let refreshes = 0;
  for (const r of requests) {
    if (expiresAtMs < r.atMs + r.lifetimeMs) {
      refreshes++;
      expiresAtMs = r.atMs + TOKEN_LIFETIME_MS;
    }
  }
  return refreshes;
}

function runPolicy(spec: PolicySpec, population: Population, decide: typeof realDecide): RawMetrics[] {
  const users = population.kinds.length;
  const raw = population.kinds.map(() => emptyRaw());
  const store = new SimulatedStore(users, population.initialExpiresAtMs);
  const queue = new EventQueue<SimEvent>();
  const waiters: Pending[][] = population.kinds.map(() => []);
  const needHoldEvents = (spec.release && spec.wakeOnRelease) || spec.prepare;
  // An analysis spec may give each user kind its own policy (an oracle that knows who is a bot).
  const policyOf = (user: number): RefreshPolicy => spec.policyByKind?.[population.kinds[user]] ?? spec.policy;
  const windowOf = (user: number): number | undefined => refreshWindowMs(policyOf(user), BITBUCKET_DC);

  const record = (m: RawMetrics, d: Decision): void => {
    m.decisions[d.action]++;
    if ("label" in d) m.labels[d.label]++;
  };
  const revoke = (m: RawMetrics, r: Revocation): void => {
    m.refreshes++;
    m.broken += r.broken;
    m.brokenMs += r.lostMs;
  };

  // `withinCurrent`: decide() said reuse without extending (during a drain): the store reserves exactly now + L.
  const complete = (p: Pending, nowMs: number, withinCurrent = false): void => {
    const m = raw[p.user];
    if (p.waiting) {
      const waitedMs = nowMs - p.request.atMs;
      m.waitMsTotal += waitedMs;
      m.waitMsMax = Math.max(m.waitMsMax, waitedMs);
      const list = waiters[p.user];
      list.splice(list.indexOf(p), 1);
      p.waiting = false;
    }
    const holdMs = spec.release ? Math.min(p.request.releaseAfterMs, p.request.lifetimeMs) : p.request.lifetimeMs;
    const outcome = store.handOut(p.user, nowMs, p.request.lifetimeMs, holdMs, {
      releasable: spec.release,
      withinCurrent,
      refreshWindowMs: windowOf(p.user),
      slackFraction: spec.slackFraction,
    });
    if (!outcome.covers) m.shortHandOuts++;
    if (outcome.writeFree) m.writeFree++;
    m.handOuts++;
    // The reservation may outlast the hold (the slack): the store looks again when it ends.
    if (needHoldEvents) queue.push(Math.max(nowMs + holdMs, outcome.reservedUntilMs ?? 0), { type: "holdEnd", user: p.user });
  };

  const serve = (p: Pending, nowMs: number): void => {
    const m = raw[p.user];
    const state = store.state(p.user, nowMs);
    if (spec.mode === "always") {
      if ((state.expiresAtMs as number) < nowMs + p.request.lifetimeMs) m.forced++;
      else m.unconditional++;
      revoke(m, store.refresh(p.user, nowMs));
      complete(p, nowMs);
      return;
    }
    const d = decide(state, { lifetimeMs: p.request.lifetimeMs, maxWaitMs: spec.maxWaitMs, ifHeld: "fail" }, nowMs, policyOf(p.user), BITBUCKET_DC);
    record(m, d);
    switch (d.action) {
      case "reuse":
        complete(p, nowMs, !d.extendReservation);
        return;
      case "refresh":
        if (d.forced) m.forced++;
        else if (d.label === "true") m.opportunistic++;
        else m.drained++;
        revoke(m, store.refresh(p.user, nowMs));
        if (p.waiting) m.waitedRefreshes++;
        complete(p, nowMs);
        return;
      case "wait":
        if (!p.waiting) {
          p.waiting = true;
          m.waits++;
          if ((state.expiresAtMs as number) < nowMs + p.request.lifetimeMs) m.waitsCannotCover++;
          waiters[p.user].push(p);
        }
        store.setDraining(p.user);
        p.generation++;
        p.untilMs = d.untilMs;
        queue.push(d.untilMs, { type: "wake", pending: p, generation: p.generation });
        return;
      default:
        m.failed++;
        if (p.waiting) waiters[p.user].splice(waiters[p.user].indexOf(p), 1);
        p.waiting = false;
        return;
    }
  };

  // A hold ended: with early release the reservation may now end before the waiters' timers, so wake
  // them (the store notices the release); with `prepare`, refresh now if decide() says so.
  const holdEnded = (user: number, nowMs: number): void => {
    const list = waiters[user];
    if (list.length > 0) {
      if (!spec.wakeOnRelease) return;
      const reservedUntilMs = store.state(user, nowMs).reservedUntilMs ?? -Infinity;
      if (list.every((p) => reservedUntilMs < p.untilMs)) for (const p of [...list]) serve(p, nowMs);
      return;
    }
    if (!spec.prepare) return;
    const state = store.state(user, nowMs);
    if (state.reservedUntilMs !== undefined && state.reservedUntilMs > nowMs) return;
    const m = raw[user];
    const d = decide(state, { lifetimeMs: 0, maxWaitMs: 0, ifHeld: "fail" }, nowMs, policyOf(user), BITBUCKET_DC);
    record(m, d);
    if (d.action === "refresh" && d.label === "true") {
      m.opportunistic++;
      m.prepared++;
      revoke(m, store.refresh(user, nowMs));
    }
  };

  for (let user = 0; user < users; user++) {
    if (population.requests[user].length > 0) queue.push(population.requests[user][0].atMs, { type: "arrival", user, index: 0 });
  }
  for (let event = queue.pop(); event; event = queue.pop()) {
    const { atMs, payload } = event;
    if (payload.type === "arrival") {
      const list = population.requests[payload.user];
      const next = payload.index + 1;
      if (next < list.length) queue.push(list[next].atMs, { type: "arrival", user: payload.user, index: next });
      raw[payload.user].requests++;
      serve({ user: payload.user, request: list[payload.index], waiting: false, generation: 0, untilMs: 0 }, atMs);
    } else if (payload.type === "wake") {
      if (payload.pending.waiting && payload.pending.generation === payload.generation) serve(payload.pending, atMs);
    } else {
      holdEnded(payload.user, atMs);
    }
  }
  return raw;
}

function add(into: RawMetrics, from: RawMetrics): void {
  for (const key of Object.keys(from) as (keyof RawMetrics)[]) {
    if (key === "decisions" || key === "labels") continue;
    if (key === "waitMsMax") into.waitMsMax = Math.max(into.waitMsMax, from.waitMsMax);
    else into[key] += from[key];
  }
  for (const a of Object.keys(from.decisions) as Decision["action"][]) into.decisions[a] += from.decisions[a];
  for (const l of Object.keys(from.labels) as OpportunisticLabel[]) into.labels[l] += from.labels[l];
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

function finish(raw: RawMetrics, users: number, days: number, floor: number): Metrics {
  const userDays = users * days;
  const { brokenMs, waitMsTotal, waitMsMax, ...counts } = raw;
  return {
    users,
    userDays,
    ...counts,
    brokenMinutes: round3(brokenMs / MINUTE_MS),
    waitMinutesTotal: round3(waitMsTotal / MINUTE_MS),
    waitMinutesMax: round3(waitMsMax / MINUTE_MS),
    waitMinutesAvg: raw.waits === 0 ? 0 : round3(waitMsTotal / raw.waits / MINUTE_MS),
    floorRefreshes: floor,
    refreshesPerUserDay: userDays === 0 ? 0 : round3(raw.refreshes / userDays),
    floorPerUserDay: userDays === 0 ? 0 : round3(floor / userDays),
    vsFloor: floor === 0 ? 0 : round3(raw.refreshes / floor),
    writeFreeShare: raw.handOuts === 0 ? 0 : round3(raw.writeFree / raw.handOuts),
  };
}

function validate(params: SimulationParams): void {
  if (!Number.isInteger(params.users) || params.users < 1) throw new Error(`simulation: users must be a positive integer, got ${params.users}`);
  if (!Number.isInteger(params.days) || params.days < 1) throw new Error(`simulation: days must be a positive integer, got ${params.days}`);
  if (!Number.isInteger(params.seed) || params.seed < 0 || params.seed > 0xffffffff) {
    throw new Error(`simulation: seed must be an integer in 0..4294967295, got ${params.seed}`);
  }
}

/**
 * Runs every selected policy on the same seeded population and returns comparable metrics.
 *
 * @example
 * const results = runSimulation({ users: 100, days: 2, seed: 42, policies: ["gitpod", "h20-drain"] });
 * results.policies[1].total.broken; // → 0
 */
export function runSimulation(params: SimulationParams, deps: SimulationDeps = { decide: realDecide }): SimulationResults {
  validate(params);
  const specs = params.specs ? [...params.specs] : selectPolicies(params.policies);
  const workload = params.workload ?? "sessions";
  const mix = { ...(params.mix ?? WORKLOAD_MIX[workload]) };
  const kinds = assignKinds(params.users, mix);
  const population: Population = {
    kinds,
    requests: kinds.map((kind, user) => generateRequests(kind, params.days, params.seed, user, workload)),
    initialExpiresAtMs: initialExpiries(workload, params.users, params.seed),
  };

  const byKindOf = <T>(make: (kind: UserKind) => T): Record<UserKind, T> =>
    Object.fromEntries(USER_KINDS.map((kind) => [kind, make(kind)])) as Record<UserKind, T>;
  const kindCounts = byKindOf((kind) => kinds.filter((k) => k === kind).length);
  const floors = population.requests.map((requests, user) => floorRefreshes(requests, population.initialExpiresAtMs[user]));
  const floorByKind = byKindOf((kind) => floors.reduce((sum, f, user) => (kinds[user] === kind ? sum + f : sum), 0));
  const floorTotal = floors.reduce((sum, f) => sum + f, 0);
  const bounds = population.requests.map((requests, user) => minimumWaits(requests, population.initialExpiresAtMs[user]));
  const boundOf = (users: (user: number) => boolean, floor: number): WaitBoundCounts => {
    let waits = 0;
    let refreshes = 0;
    bounds.forEach((b, user) => {
      if (!users(user)) return;
      waits += b.waits;
      refreshes += b.refreshes;
    });
    return { waits, refreshes, vsFloor: floor === 0 ? 0 : round3(refreshes / floor) };
  };

  const policies = specs.map((spec): PolicyResult => {
    const raw = runPolicy(spec, population, deps.decide);
    const rawByKind = byKindOf(() => emptyRaw());
    raw.forEach((m, user) => add(rawByKind[kinds[user]], m));
    const rawTotal = emptyRaw();
    for (const kind of USER_KINDS) add(rawTotal, rawByKind[kind]);
    return {
      id: spec.id,
      description: spec.description,
      mode: spec.mode,
      opportunistic: spec.policy.opportunistic,
      horizonMinutes: spec.policy.horizonMs === undefined ? null : spec.policy.horizonMs / MINUTE_MS,
      drain: spec.policy.drain,
      earlyDrain: spec.policy.earlyDrain ? { rampToSeconds: spec.policy.earlyDrain.rampToMs / 1000, rampEndMinutes: spec.policy.earlyDrain.rampEndMs / MINUTE_MS } : null,
      maxWaitSeconds: Number.isFinite(spec.maxWaitMs) ? spec.maxWaitMs / 1000 : null,
      release: spec.release,
      prepare: spec.prepare,
      wakeOnRelease: spec.wakeOnRelease,
      slackFraction: spec.slackFraction,
      total: finish(rawTotal, params.users, params.days, floorTotal),
      byKind: byKindOf((kind) => finish(rawByKind[kind], kindCounts[kind], params.days, floorByKind[kind])),
    };
  });

  return {
    params: {
      users: params.users,
      days: params.days,
      seed: params.seed,
      workload,
      mix,
      kindCounts,
      provider: "Bitbucket Data Center (refresh revokes the old access token at once)",
      tokenLifetimeMinutes: TOKEN_LIFETIME_MS / MINUTE_MS,
      lifetimeMinutes: { workspace: LIFETIME_MS.workspace / MINUTE_MS, api: LIFETIME_MS.api / MINUTE_MS },
      releaseModel: "when modelled: API calls release after U(2,30) s, workspace clones after U(1,6) min",
      requests: population.requests.reduce((sum, list) => sum + list.length, 0),
    },
    floor: {
      method: "lazy greedy on the request stream (refresh at the first request the token cannot cover); provably minimal, equals cover-only",
      total: { refreshes: floorTotal, perUserDay: round3(floorTotal / (params.users * params.days)) },
      byKind: byKindOf((kind) => ({
        refreshes: floorByKind[kind],
        perUserDay: kindCounts[kind] === 0 ? 0 : round3(floorByKind[kind] / (kindCounts[kind] * params.days)),
      })),
    },
    waitBound: {
      method:
        "fewest waits of any drain policy that breaks nothing, knowing every future request: a refresh while a request that arrived earlier is not done needs that request to wait (src/simulation/wait-bound.ts)",
      total: boundOf(() => true, floorTotal),
      byKind: byKindOf((kind) => boundOf((user) => kinds[user] === kind, floorByKind[kind])),
    },
    policies,
  };
}
