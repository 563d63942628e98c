import { expect } from "chai";
import { DEFAULT_EARLY_DRAIN, decide, earlyDrainWaitMs, type Decision, type EntryState, type HandOutRequest, type RefreshPolicy } from "../src/refresh-policy";

const MIN = 60_000;
const NOW = Date.parse("2026-01-01T12:00:00Z");
const L5: HandOutRequest = { lifetimeMs: 5 * MIN, maxWaitMs: Infinity, ifHeld: "fail" };
const GITPOD: RefreshPolicy = { opportunistic: true, horizonMs: undefined, drain: false };
const HORIZON_DRAIN: RefreshPolicy = { opportunistic: true, horizonMs: 20 * MIN, drain: true };
const OFF: RefreshPolicy = { opportunistic: false, drain: false };
const NO_EARLY_DRAIN: RefreshPolicy = { ...HORIZON_DRAIN, earlyDrain: null };
/** One horizon for every hand-out (no per-kind margin). */
const UNIFORM: RefreshPolicy = { ...HORIZON_DRAIN, horizonMarginMs: null };
const L10: HandOutRequest = { ...L5, lifetimeMs: 10 * MIN };
/** Horizon per hand-out kind: min(20, lifetime + 8) minutes. */
const KIND: RefreshPolicy = { ...HORIZON_DRAIN, horizonMarginMs: 8 * MIN };
/** The service's defaults (no flags): horizon 20, per hand-out kind with the 8-minute margin, drain, the default early-drain ramp. */
const DEFAULTS: RefreshPolicy = { opportunistic: true, horizonMs: 20 * MIN, horizonMarginMs: 8 * MIN, drain: true };
const SEC = 1_000;
const REVOKES = { revokesOnRefresh: true };
const KEEPS = { revokesOnRefresh: false };

function entry(expiresInMin: number | undefined, reservedForMin?: number, extra: Partial<EntryState> = {}): EntryState {
  return {
    expiresAtMs: expiresInMin === undefined ? undefined : NOW + expiresInMin * MIN,
    reservedUntilMs: reservedForMin === undefined ? undefined : NOW + reservedForMin * MIN,
    refreshable: true,
    draining: false,
    ...extra,
  };
}

interface Row {
  situation: string;
  entry: EntryState | undefined;
  request?: HandOutRequest;
  policy: RefreshPolicy;
  provider?: { revokesOnRefresh: boolean };
  expected: Decision;
}

// DESIGN.md "The decision" plus the horizon/drain rows of issue #9, one row each.
const rows: Row[] = [
  { situation: "no entry", entry: undefined, policy: GITPOD, expected: { action: "none" } },
  { situation: "token never expires", entry: entry(undefined), policy: GITPOD, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "cannot cover, no refresh token", entry: entry(3, undefined, { refreshable: false }), policy: GITPOD, expected: { action: "not_refreshable" } },
  { situation: "cannot cover (forced), unreserved", entry: entry(3), policy: GITPOD, expected: { action: "refresh", label: "false", forced: true, breaksReservation: false } },
  { situation: "cannot cover, reserved, drain off: forced refresh breaks the reservation", entry: entry(3, 2), policy: GITPOD, expected: { action: "refresh", label: "false", forced: true, breaksReservation: true } },
  { situation: "cannot cover, reserved, drain on: wait until the reservation ends", entry: entry(3, 2), policy: HORIZON_DRAIN, expected: { action: "wait", label: "false", untilMs: NOW + 2 * MIN } },
  { situation: "cannot cover, reserved, drain on, cannot wait, ifHeld fail", entry: entry(3, 2), request: { ...L5, maxWaitMs: 0 }, policy: HORIZON_DRAIN, expected: { action: "held", label: "false", untilMs: NOW + 2 * MIN } },
  { situation: "cannot cover, reserved, drain on, cannot wait, ifHeld break", entry: entry(3, 2), request: { ...L5, maxWaitMs: 0, ifHeld: "break" }, policy: HORIZON_DRAIN, expected: { action: "refresh", label: "false", forced: true, breaksReservation: true } },
  { situation: "cannot cover, reserved, provider keeps old tokens: refresh breaks nothing", entry: entry(3, 2), policy: HORIZON_DRAIN, provider: KEEPS, expected: { action: "refresh", label: "false", forced: true, breaksReservation: false } },
  { situation: "opportunistic on, revoking provider, unreserved (Gitpod rule)", entry: entry(50), policy: GITPOD, expected: { action: "refresh", label: "true", forced: false, breaksReservation: false } },
  { situation: "opportunistic on, revoking provider, reserved", entry: entry(50, 3), policy: GITPOD, expected: { action: "reuse", label: "reserved", extendReservation: true } },
  { situation: "reservation ended exactly now counts as unreserved", entry: entry(50, 0), policy: GITPOD, expected: { action: "refresh", label: "true", forced: false, breaksReservation: false } },
  { situation: "horizon: unreserved but outside the horizon", entry: entry(50), policy: HORIZON_DRAIN, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "horizon: unreserved within the horizon", entry: entry(15), policy: UNIFORM, expected: { action: "refresh", label: "true", forced: false, breaksReservation: false } },
  { situation: "horizon: reserved within the horizon", entry: entry(15, 4), policy: UNIFORM, expected: { action: "reuse", label: "reserved", extendReservation: true } },
  { situation: "opportunistic off", entry: entry(50), policy: OFF, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "opportunistic on, provider does not revoke", entry: entry(50), policy: GITPOD, provider: KEEPS, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "opportunistic on, no refresh token", entry: entry(50, undefined, { refreshable: false }), policy: GITPOD, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "draining, reservation over: the drained refresh", entry: entry(30, -1, { draining: true }), policy: HORIZON_DRAIN, expected: { action: "refresh", label: "false", forced: false, breaksReservation: false } },
  { situation: "draining, request fits inside the reservation", entry: entry(30, 8, { draining: true }), policy: HORIZON_DRAIN, expected: { action: "reuse", label: "false", extendReservation: false } },
  { situation: "draining, request would extend the reservation: wait", entry: entry(30, 3, { draining: true }), policy: HORIZON_DRAIN, expected: { action: "wait", label: "false", untilMs: NOW + 3 * MIN } },
  { situation: "draining, would extend, cannot wait: hand out and extend", entry: entry(30, 3, { draining: true }), request: { ...L5, maxWaitMs: 0 }, policy: HORIZON_DRAIN, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "expiry exactly now + L covers", entry: entry(5), policy: OFF, expected: { action: "reuse", label: "false", extendReservation: true } },
  // Early drain (on by default with drain and a horizon): ramp from 0 s at 20 min left to 120 s at 8 min left.
  { situation: "early drain: 9 min left, held for 30 s more (allowance 110 s): wait, then the drained refresh", entry: entry(9, 0.5), policy: HORIZON_DRAIN, expected: { action: "wait", label: "false", untilMs: NOW + 30 * SEC } },
  { situation: "early drain: 9 min left, held for 2 min more (allowance 110 s): reuse, reserved", entry: entry(9, 2), policy: HORIZON_DRAIN, expected: { action: "reuse", label: "reserved", extendReservation: true } },
  { situation: "early drain: 15 min left (allowance 50 s), held for 48 s more: wait", entry: entry(15, 0.8), policy: UNIFORM, expected: { action: "wait", label: "false", untilMs: NOW + 48 * SEC } },
  { situation: "early drain: 15 min left (allowance 50 s), held for 54 s more: reuse, reserved", entry: entry(15, 0.9), policy: UNIFORM, expected: { action: "reuse", label: "reserved", extendReservation: true } },
  { situation: "early drain: never waits longer than the caller's maxWaitMs (reuse instead, no error)", entry: entry(9, 0.5), request: { ...L5, maxWaitMs: 10 * SEC }, policy: HORIZON_DRAIN, expected: { action: "reuse", label: "reserved", extendReservation: true } },
  { situation: "early drain off (null): a short hold within the horizon is reused, reserved", entry: entry(9, 0.5), policy: NO_EARLY_DRAIN, expected: { action: "reuse", label: "reserved", extendReservation: true } },
  { situation: "early drain needs drain: drain off reuses, reserved", entry: entry(9, 0.5), policy: { ...HORIZON_DRAIN, drain: false }, expected: { action: "reuse", label: "reserved", extendReservation: true } },
  { situation: "early drain needs a horizon: Gitpod's rule + drain reuses, reserved", entry: entry(9, 0.5), policy: { ...GITPOD, drain: true }, expected: { action: "reuse", label: "reserved", extendReservation: true } },
  { situation: "early drain: outside the horizon nothing changes", entry: entry(25, 0.1), policy: HORIZON_DRAIN, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "early drain with the per-kind horizon: the ramp starts at the request's horizon (workspace start, 14 min left of 18: allowance 48 s, held 42 s more)", entry: entry(14, 0.7), request: L10, policy: KIND, expected: { action: "wait", label: "false", untilMs: NOW + 42 * SEC } },
  { situation: "… and a holder done later than the allowance (54 s): reuse, reserved", entry: entry(14, 0.9), request: L10, policy: KIND, expected: { action: "reuse", label: "reserved", extendReservation: true } },
  // Per hand-out kind (margin 8 min): the horizon is min(20, lifetime + 8): API 13 min, workspace start 18 min.
  { situation: "per-kind horizon: 5-min hand-out, 15 min left: outside its 13-min horizon", entry: entry(15), policy: KIND, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "per-kind horizon: 5-min hand-out, 13 min left: within", entry: entry(13), policy: KIND, expected: { action: "refresh", label: "true", forced: false, breaksReservation: false } },
  { situation: "per-kind horizon: 10-min workspace start, 15 min left: within its 18-min horizon", entry: entry(15), request: L10, policy: KIND, expected: { action: "refresh", label: "true", forced: false, breaksReservation: false } },
  { situation: "per-kind horizon: 10-min workspace start, 19 min left: outside", entry: entry(19), request: L10, policy: KIND, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "per-kind horizon: capped by the horizon flag (15-min hand-out: 20, not 23)", entry: entry(21), request: { ...L5, lifetimeMs: 15 * MIN }, policy: KIND, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "per-kind horizon: a custom margin (3 min: a 5-min hand-out's horizon is 8, so 9 min left is outside)", entry: entry(9), policy: { ...HORIZON_DRAIN, horizonMarginMs: 3 * MIN }, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "per-kind horizon: off by default: a 5-min hand-out at 15 min left is within the 20-min horizon", entry: entry(15), policy: HORIZON_DRAIN, expected: { action: "refresh", label: "true", forced: false, breaksReservation: false } },
  { situation: "per-kind horizon: no horizon (Gitpod's rule) ignores the margin", entry: entry(50), policy: { ...GITPOD, horizonMarginMs: 3 * MIN }, expected: { action: "refresh", label: "true", forced: false, breaksReservation: false } },
  // The service's defaults (no flags): a 5-minute API hand-out's horizon is 13 min, a 10-minute workspace start's 18;
  // the early-drain ramp runs from each request's own horizon to 120 s at 8 min left.
  { situation: "defaults: API hand-out, 14 min left, unreserved: outside its 13-min horizon, reuse", entry: entry(14), policy: DEFAULTS, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "defaults: API hand-out, 13 min left, unreserved: opportunistic refresh", entry: entry(13), policy: DEFAULTS, expected: { action: "refresh", label: "true", forced: false, breaksReservation: false } },
  { situation: "defaults: workspace start, 17 min left, unreserved: within its 18-min horizon, refresh", entry: entry(17), request: L10, policy: DEFAULTS, expected: { action: "refresh", label: "true", forced: false, breaksReservation: false } },
  { situation: "defaults: workspace start, 19 min left, unreserved: reuse", entry: entry(19), request: L10, policy: DEFAULTS, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "defaults: API hand-out, 12 min left (allowance 24 s), held 20 s more: wait", entry: entry(12, 1 / 3), policy: DEFAULTS, expected: { action: "wait", label: "false", untilMs: NOW + 20 * SEC } },
  { situation: "defaults: API hand-out, 12 min left (allowance 24 s), held 30 s more: reuse, reserved", entry: entry(12, 0.5), policy: DEFAULTS, expected: { action: "reuse", label: "reserved", extendReservation: true } },
  { situation: "defaults: API hand-out, 7 min left (allowance 120 s), held 115 s more: wait", entry: entry(7, 115 / 60), policy: DEFAULTS, expected: { action: "wait", label: "false", untilMs: NOW + 115 * SEC } },
  { situation: "defaults: API hand-out, 7 min left (allowance 120 s), held 125 s more: reuse, reserved", entry: entry(7, 125 / 60), policy: DEFAULTS, expected: { action: "reuse", label: "reserved", extendReservation: true } },
  { situation: "defaults: API hand-out, 16 min left, held: outside its horizon, reuse (label false), no early drain", entry: entry(16, 0.1), policy: DEFAULTS, expected: { action: "reuse", label: "false", extendReservation: true } },
  { situation: "early drain: a custom ramp (180 s from 6 min left)", entry: entry(6, 2.5), policy: { ...HORIZON_DRAIN, earlyDrain: { rampToMs: 180 * SEC, rampEndMs: 6 * MIN } }, expected: { action: "wait", label: "false", untilMs: NOW + 2.5 * MIN } },
];

describe("decide(): the refresh decision table", () => {
  for (const row of rows) {
    it(row.situation, () => {
      expect(decide(row.entry, row.request ?? L5, NOW, row.policy, row.provider ?? REVOKES)).to.deep.equal(row.expected);
    });
  }

  it("never returns a reuse whose token cannot cover the lifetime", () => {
    for (let exp = -10; exp <= 70; exp += 1) {
      for (const reserved of [undefined, -5, 0, 3, 9]) {
        for (const policy of [GITPOD, HORIZON_DRAIN, OFF, DEFAULTS]) {
          const d = decide(entry(exp, reserved), L5, NOW, policy, REVOKES);
          if (d.action === "reuse") expect(NOW + exp * MIN, `exp ${exp} reserved ${reserved}`).to.be.at.least(NOW + 5 * MIN);
        }
      }
    }
  });
});

describe("earlyDrainWaitMs(): the ramp", () => {
  // The default ramp: 0 s at the horizon, 120 s at 8 min left and below.
  const table: [remainingMin: number, expectedMs: number][] = [
    [25, 0],
    [20, 0],
    [17.5, 25 * SEC],
    [14, 60 * SEC],
    [8, 120 * SEC],
    [3, 120 * SEC],
  ];
  for (const [remaining, expected] of table) {
    it(`${remaining} min left, horizon 20 → ${expected / SEC} s`, () => {
      expect(earlyDrainWaitMs(remaining * MIN, 20 * MIN, DEFAULT_EARLY_DRAIN)).to.equal(expected);
    });
  }

  it("a horizon at or below the ramp's end allows the full wait at once", () => {
    expect(earlyDrainWaitMs(6 * MIN, 8 * MIN, DEFAULT_EARLY_DRAIN)).to.equal(120 * SEC);
  });

  it("an API hand-out's 13-minute horizon ramps over 13 → 8 min left", () => {
    expect(earlyDrainWaitMs(10.5 * MIN, 13 * MIN, DEFAULT_EARLY_DRAIN)).to.equal(60 * SEC);
  });
});

describe("decide(): holds end with the token", () => {
  it("a reservation beyond the token's expiry does not hold an expired token", () => {
    // Token expired a minute ago, reserved until +4 (the SCM issued a token shorter than the lifetime).
    const d = decide(entry(-1, 4), L5, NOW, HORIZON_DRAIN, REVOKES);
    expect(d).to.deep.equal({ action: "refresh", label: "false", forced: true, breaksReservation: false });
  });

  it("waits at most until the token expires", () => {
    const d = decide(entry(3, 8), L5, NOW, HORIZON_DRAIN, REVOKES);
    expect(d).to.deep.equal({ action: "wait", label: "false", untilMs: NOW + 3 * MIN });
  });
});
