import { expect } from "chai";
import { RESERVATION_SLACK_FRACTION, reservationEndMs } from "../src/hand-out-reservation";
import { decide } from "../src/refresh-policy";
import { EventQueue } from "../src/simulation/event-queue";
import { Prng, deriveSeed } from "../src/simulation/prng";
import { formatReport } from "../src/simulation/report";
import { floorRefreshes, runSimulation, type SimulationParams, type SimulationResults } from "../src/simulation/run-simulation";
import { SimulatedStore, type HandOutMode } from "../src/simulation/simulated-store";
import { DAY_MS, HOUR_MS, MINUTE_MS, USER_KINDS, WORKLOAD_MIX, assignKinds, generateRequests, initialExpiries, type SimRequest } from "../src/simulation/user-kinds";
import { minimumWaits } from "../src/simulation/wait-bound";
import { parseSweepPolicy } from "../bench/lib/sweep-spec";

// 100 users × 2 weekdays: 30 idle, 45 normal, 20 heavy, 5 bots — small enough to run in well under a second per policy.
const SMALL: SimulationParams = { users: 100, days: 2, seed: 42 };

function policy(results: SimulationResults, id: string) {
  const found = results.policies.find((p) => p.id === id);
  if (!found) throw new Error(`no policy ${id} in results`);
  return found;
}

describe("refresh-policy simulation", () => {
  let results: SimulationResults;
  before(() => {
    results = runSimulation({ ...SMALL, policies: ["cover-only", "gitpod", "h20-drain", "h20-drain-release", "every-request"] });
  });

  describe("building blocks", () => {
    it("the PRNG repeats its sequence for the same seed", () => {
      const a = new Prng(7);
      const b = new Prng(7);
      const seqA = Array.from({ length: 5 }, () => a.next());
      expect(seqA).to.deep.equal(Array.from({ length: 5 }, () => b.next()));
      expect(seqA.every((x) => x >= 0 && x < 1)).to.equal(true);
    });

    it("derived seeds do not collide for neighbouring run seeds and users", () => {
      // A plain XOR of seed and user index once made (seed 2, user 0) equal (seed 3, user 1).
      expect(deriveSeed(2, 0, 1)).to.not.equal(deriveSeed(3, 1, 1));
      expect(deriveSeed(42, 0, 1)).to.not.equal(deriveSeed(43, 1, 1));
    });

    it("the event queue pops by time, and events at the same time in insertion order", () => {
      const queue = new EventQueue<string>();
      queue.push(20, "c");
      queue.push(10, "a");
      queue.push(20, "d");
      queue.push(10, "b");
      const order: string[] = [];
      for (let e = queue.pop(); e; e = queue.pop()) order.push(e.payload);
      expect(order).to.deep.equal(["a", "b", "c", "d"]);
    });

    it("1000 users split into 300 idle, 450 normal, 200 heavy and 50 bots", () => {
      const kinds = assignKinds(1000);
      expect(USER_KINDS.map((k) => kinds.filter((x) => x === k).length)).to.deep.equal([300, 450, 200, 50]);
    });

    it("the store counts a holder as broken when a refresh revokes its token before it is done", () => {
      const store = new SimulatedStore(1);
      store.refresh(0, 0);
      store.handOut(0, 0, 10 * MINUTE_MS, 10 * MINUTE_MS); // a clone until 10:00
      store.handOut(0, 0, 5 * MINUTE_MS, 1 * MINUTE_MS); // an API call released at 01:00
      const revocation = store.refresh(0, 4 * MINUTE_MS);
      expect(revocation).to.deep.equal({ broken: 1, lostMs: 6 * MINUTE_MS });
    });

    it("a released hold no longer reserves the entry", () => {
      const store = new SimulatedStore(1);
      store.refresh(0, 0);
      store.handOut(0, 0, 5 * MINUTE_MS, 10_000);
      expect(store.state(0, 5_000).reservedUntilMs).to.equal(5 * MINUTE_MS);
      expect(store.state(0, 10_000).reservedUntilMs).to.equal(undefined);
    });

    it("the floor counts a stored token that is still valid at the start", () => {
      const api = (atMin: number): SimRequest => ({ atMs: atMin * MINUTE_MS, type: "api", lifetimeMs: 5 * MINUTE_MS, releaseAfterMs: 0 });
      // The stored token expires at 30: requests at 10 and 25 are covered, 26 is not.
      expect(floorRefreshes([api(10), api(25), api(26)], 30 * MINUTE_MS)).to.equal(1);
      expect(floorRefreshes([api(10), api(25), api(26)])).to.equal(1);
      expect(floorRefreshes([api(10), api(25)], 30 * MINUTE_MS)).to.equal(0);
    });

    it("the floor refreshes lazily: once per 60 minutes of covered requests", () => {
      const api = (atMin: number): SimRequest => ({ atMs: atMin * MINUTE_MS, type: "api", lifetimeMs: 5 * MINUTE_MS, releaseAfterMs: 0 });
      // 0 → token until 60; 54 still fits (54+5 ≤ 60); 56 does not → 2nd token until 116; 110 fits; 112 does not.
      expect(floorRefreshes([api(0), api(54), api(56), api(110), api(112)])).to.equal(3);
    });
  });

  describe("write-free hand-outs (the store's pin and slack, src/hand-out-reservation.ts)", () => {
    // A non-releasable hand-out under horizon 20, as the simulation makes them.
    const PINNED: HandOutMode = { releasable: false, withinCurrent: false, refreshWindowMs: 20 * MINUTE_MS, slackFraction: RESERVATION_SLACK_FRACTION };

    it("a hand-out that must write pins the token until reservationEndMs (lifetime + 50 %); the next one inside the pin writes nothing", () => {
      const store = new SimulatedStore(1);
      store.refresh(0, 0); // expires at 60 min
      const first = store.handOut(0, 0, 5 * MINUTE_MS, 5 * MINUTE_MS, PINNED);
      expect(first).to.deep.equal({ covers: true, writeFree: false, reservedUntilMs: reservationEndMs(0, 5 * MINUTE_MS, { expiresAtMs: 60 * MINUTE_MS, draining: false }, 20 * MINUTE_MS) });
      expect(first.reservedUntilMs).to.equal(7.5 * MINUTE_MS);
      expect(store.handOut(0, 2.5 * MINUTE_MS, 5 * MINUTE_MS, 5 * MINUTE_MS, PINNED), "needs 7.5: covered").to.deep.equal({ covers: true, writeFree: true });
      expect(store.state(0, 3 * MINUTE_MS).reservedUntilMs, "a write-free hand-out leaves the reservation alone").to.equal(7.5 * MINUTE_MS);
      expect(store.handOut(0, 2.6 * MINUTE_MS, 5 * MINUTE_MS, 5 * MINUTE_MS, PINNED).writeFree, "needs 7.6: writes").to.equal(false);
    });

    it("the slack never reaches into the refresh window, a drain gets none, and a refresh drops the pin", () => {
      const store = new SimulatedStore(1);
      store.refresh(0, 0);
      expect(store.handOut(0, 36 * MINUTE_MS, 5 * MINUTE_MS, 5 * MINUTE_MS, PINNED).reservedUntilMs, "24 min left: no slack into the last 20").to.equal(41 * MINUTE_MS);
      store.setDraining(0);
      expect(store.handOut(0, 37 * MINUTE_MS, 5 * MINUTE_MS, 5 * MINUTE_MS, PINNED).reservedUntilMs, "draining: exactly the lifetime").to.equal(42 * MINUTE_MS);
      store.refresh(0, 42 * MINUTE_MS);
      expect(store.state(0, 42 * MINUTE_MS).reservedUntilMs, "a new token version has no pin").to.equal(undefined);
      expect(store.handOut(0, 42 * MINUTE_MS, 5 * MINUTE_MS, 5 * MINUTE_MS, PINNED).writeFree).to.equal(false);
    });

    it("the reservation keeps the pin's end after it has passed (as the store's row does), so decide() sees the token unreserved", () => {
      const store = new SimulatedStore(1);
      store.refresh(0, 0);
      store.handOut(0, 0, 5 * MINUTE_MS, 5 * MINUTE_MS, PINNED);
      expect(store.state(0, 10 * MINUTE_MS).reservedUntilMs).to.equal(7.5 * MINUTE_MS);
      expect(decide(store.state(0, 10 * MINUTE_MS), { lifetimeMs: 5 * MINUTE_MS, maxWaitMs: Infinity, ifHeld: "fail" }, 10 * MINUTE_MS, { opportunistic: true, drain: true }, { revokesOnRefresh: true }).action).to.equal("refresh");
    });

    it("with a horizon the slack changes no decision (it stays out of the refresh window) and makes hand-outs write-free; without opportunistic refresh it costs waits", () => {
      for (const workload of ["sessions", "scattered"] as const) {
        const r = runSimulation({ ...SMALL, workload, policies: ["defaults", "defaults-slack0", "cover-only-drain", "cover-only-drain-slack0"] });
        const [slack, none, coverSlack, coverNone] = ["defaults", "defaults-slack0", "cover-only-drain", "cover-only-drain-slack0"].map((id) => policy(r, id).total);
        expect({ ...slack, writeFree: 0, writeFreeShare: 0 }, workload).to.deep.equal({ ...none, writeFree: 0, writeFreeShare: 0 });
        expect(slack.writeFreeShare, workload).to.be.greaterThan(none.writeFreeShare + 0.15);
        expect(slack.writeFreeShare).to.equal(Math.round((slack.writeFree / slack.handOuts) * 1000) / 1000);
        expect(coverSlack.waits, `${workload}: the slack delays forced drains when the window is only the lifetime`).to.be.greaterThan(coverNone.waits);
        expect(coverSlack.broken + coverNone.broken).to.equal(0);
      }
    });

    it("releasable hand-outs are never write-free (their hold is written anyway)", () => {
      const t = policy(runSimulation({ ...SMALL, policies: ["defaults-release"] }), "defaults-release").total;
      expect(t.writeFree).to.equal(0);
      expect(t.handOuts).to.be.greaterThan(0);
    });
  });

  describe("the lower bound on waits (src/simulation/wait-bound.ts)", () => {
    const api = (atMin: number): SimRequest => ({ atMs: atMin * MINUTE_MS, type: "api", lifetimeMs: 5 * MINUTE_MS, releaseAfterMs: 0 });

    it("a token held without a break needs one wait per refresh after the first", () => {
      const always = Array.from({ length: 59 }, (_, i) => api(i * 3)); // every 3 minutes until 174 (covered until 179): never unreserved
      expect(minimumWaits(always, -1)).to.deep.equal({ waits: 2, refreshes: 3 });
    });

    it("a gap of at least the lifetime lets a refresh wait for nobody", () => {
      // Held from 0 to 53, a gap 53-56, held 56 to 120: refresh at 56 (free) covers to 116; 116 is held → one wait.
      const requests = [...Array.from({ length: 17 }, (_, i) => api(i * 3)), ...Array.from({ length: 22 }, (_, i) => api(56 + i * 3))];
      expect(minimumWaits(requests, -1)).to.deep.equal({ waits: 1, refreshes: 3 });
      expect(minimumWaits([api(0), api(30), api(70)], -1), "sparse requests: never held when it matters").to.deep.equal({ waits: 0, refreshes: 2 });
    });

    it("no simulated policy that breaks nothing makes fewer waits, in total or for any user kind, on either workload", () => {
      for (const workload of ["sessions", "scattered"] as const) {
        const r = runSimulation({ ...SMALL, workload, policies: ["cover-only-drain", "h20-drain", "h20-early", "defaults", "h45-drain", "gitpod-drain"] });
        expect(r.waitBound.total.waits, workload).to.be.greaterThan(0);
        for (const p of r.policies) {
          expect(p.total.broken, p.id).to.equal(0);
          expect(p.total.waits, `${workload} ${p.id}`).to.be.at.least(r.waitBound.total.waits);
          for (const kind of USER_KINDS) expect(p.byKind[kind].waits, `${workload} ${p.id} ${kind}`).to.be.at.least(r.waitBound.byKind[kind].waits);
        }
      }
    });
  });

  describe("the scattered workload", () => {
    it("1000 users split into 500 idle, 350 normal, 130 heavy and 20 continuous users", () => {
      const kinds = assignKinds(1000, WORKLOAD_MIX.scattered);
      expect(USER_KINDS.map((k) => kinds.filter((x) => x === k).length)).to.deep.equal([500, 350, 130, 20]);
    });

    it("continuous users request every 2-4 minutes around the clock: always within the 5-minute lifetime", () => {
      const requests = generateRequests("bot", 7, 42, 0, "scattered");
      const gaps = requests.slice(1).map((r, i) => r.atMs - requests[i].atMs);
      expect(Math.min(...gaps)).to.be.at.least(2 * MINUTE_MS - 1);
      expect(Math.max(...gaps)).to.be.at.most(4 * MINUTE_MS + 1);
      expect(requests.some((r) => r.atMs >= 5 * DAY_MS), "they work on weekends too").to.equal(true);
    });

    it("humans request only on weekdays, inside a 9-hour working day, not in sessions", () => {
      for (const kind of ["normal", "heavy"] as const) {
        const requests = generateRequests(kind, 7, 42, 3, "scattered");
        expect(requests.every((r) => r.atMs < 5 * DAY_MS), `${kind}: no weekend`).to.equal(true);
        const byDay = new Map<number, number[]>();
        for (const r of requests) byDay.set(Math.floor(r.atMs / DAY_MS), [...(byDay.get(Math.floor(r.atMs / DAY_MS)) ?? []), r.atMs]);
        for (const times of byDay.values()) expect(Math.max(...times) - Math.min(...times)).to.be.at.most(9 * HOUR_MS);
      }
    });

    it("stored tokens start part-way through their hour; in the sessions workload they start expired", () => {
      const scattered = initialExpiries("scattered", 200, 42);
      expect(scattered.every((e) => e >= 0 && e <= HOUR_MS)).to.equal(true);
      expect(new Set(scattered).size).to.be.greaterThan(150);
      expect(initialExpiries("sessions", 3, 42)).to.deep.equal([-1, -1, -1]);
    });

    it("is deterministic, and horizon 20 + drain breaks nothing and every hand-out covers its lifetime", () => {
      const params: SimulationParams = { ...SMALL, workload: "scattered", policies: ["cover-only", "h20-drain", "h20-early", "h20-drain-release"] };
      const first = runSimulation(params);
      expect(runSimulation(params)).to.deep.equal(first);
      expect(first.params.workload).to.equal("scattered");
      expect(policy(first, "cover-only").total.refreshes).to.equal(first.floor.total.refreshes);
      for (const p of first.policies.slice(1)) {
        expect(p.total.broken, p.id).to.equal(0);
        expect(p.total.shortHandOuts + p.total.failed, p.id).to.equal(0);
      }
    });
  });

  describe("early drain", () => {
    let both: SimulationResults[];
    before(() => {
      both = (["sessions", "scattered"] as const).map((workload) => runSimulation({ ...SMALL, workload, policies: ["h20-drain", "h20-early", "h20-early-wait30"] }));
    });

    it("shortens the mean wait of horizon 20 + drain on both workloads, breaking nothing", () => {
      for (const results of both) {
        const before = policy(results, "h20-drain").total;
        const after = policy(results, "h20-early").total;
        expect(after.broken, results.params.workload).to.equal(0);
        expect(after.waitMinutesAvg, results.params.workload).to.be.below(before.waitMinutesAvg);
      }
    });

    it("waits at most the caller's bound when it starts a drain early (30 s)", () => {
      for (const results of both) {
        const capped = policy(results, "h20-early-wait30").total;
        expect(capped.waitMinutesMax, results.params.workload).to.be.at.most(0.5);
      }
    });
  });

  describe("horizon per hand-out kind", () => {
    it("with early release, refreshes less than one 20-minute horizon for every hand-out, on both workloads, breaking nothing", () => {
      for (const workload of ["sessions", "scattered"] as const) {
        const results = runSimulation({ ...SMALL, workload, policies: ["h20-drain-release", "h20-kind-early-release"] });
        const uniform = policy(results, "h20-drain-release").total;
        const perKind = policy(results, "h20-kind-early-release").total;
        expect(perKind.refreshes, workload).to.be.below(uniform.refreshes);
        expect(perKind.broken + perKind.failed + perKind.shortHandOuts, workload).to.equal(0);
      }
    });
  });

  describe("a policy per user kind (the oracle of bench/policy-frontier.ts)", () => {
    it("applies each kind's own policy to that kind only, and the sweep ids parse into it", () => {
      const uniform = parseSweepPolicy("h20");
      const oracle = parseSweepPolicy("h20@heavy=h60");
      expect(oracle.policyByKind?.heavy?.horizonMs).to.equal(60 * MINUTE_MS);
      const results = runSimulation({ ...SMALL, specs: [uniform, oracle] });
      const [u, o] = results.policies;
      // Heavy users refresh earlier (more refreshes, fewer waits); every other kind decides exactly as before.
      expect(o.byKind.heavy.refreshes).to.be.above(u.byKind.heavy.refreshes);
      expect(o.byKind.heavy.waits).to.be.below(u.byKind.heavy.waits);
      for (const kind of ["idle", "normal", "bot"] as const) expect(o.byKind[kind], kind).to.deep.equal(u.byKind[kind]);
      expect(o.total.broken + o.total.shortHandOuts).to.equal(0);
    });

    it("refuses a sweep id naming an unknown kind", () => {
      expect(() => parseSweepPolicy("h20@robot=h60")).to.throw(/@<idle\|normal\|heavy\|bot>=<policy>/);
    });
  });

  describe("determinism", () => {
    it("gives deep-equal results and an identical report for the same seed", () => {
      const again = runSimulation({ ...SMALL, policies: ["cover-only", "gitpod", "h20-drain", "h20-drain-release", "every-request"] });
      expect(again).to.deep.equal(results);
      expect(formatReport(again)).to.equal(formatReport(results));
    });

    it("gives different results for a different seed", () => {
      const other = runSimulation({ ...SMALL, seed: 43, policies: ["cover-only", "gitpod", "h20-drain", "h20-drain-release", "every-request"] });
      expect(other.params.requests).to.not.equal(results.params.requests);
      expect(other.policies).to.not.deep.equal(results.policies);
    });
  });

  describe("broken reservations", () => {
    it("Gitpod's rule breaks reservations of heavy users", () => {
      expect(policy(results, "gitpod").byKind.heavy.broken).to.be.greaterThan(0);
    });

    it("horizon 20 + drain breaks none, for every kind", () => {
      const p = policy(results, "h20-drain");
      for (const kind of USER_KINDS) expect(p.byKind[kind].broken, kind).to.equal(0);
    });

    it("horizon 20 + drain + early release breaks none and makes nobody wait, bots included", () => {
      const p = policy(results, "h20-drain-release");
      for (const kind of USER_KINDS) {
        expect(p.byKind[kind].broken, `${kind} broken`).to.equal(0);
        expect(p.byKind[kind].waits, `${kind} waits`).to.equal(0);
      }
    });

    it("no policy hands out a token that cannot cover its lifetime, and no request fails", () => {
      for (const p of results.policies) {
        expect(p.total.shortHandOuts, p.id).to.equal(0);
        expect(p.total.failed, p.id).to.equal(0);
      }
    });
  });

  describe("refresh counts", () => {
    it("cover-only makes exactly the floor's refreshes", () => {
      expect(policy(results, "cover-only").total.refreshes).to.equal(results.floor.total.refreshes);
    });

    it("horizon 20 + drain stays within 15 % of the floor", () => {
      const p = policy(results, "h20-drain").total;
      expect(p.refreshes).to.be.at.least(Math.floor(0.97 * p.floorRefreshes)); // waits shift requests later, so slightly below is possible
      expect(p.vsFloor).to.be.at.most(1.15);
    });

    it("Gitpod's rule refreshes more often than horizon 20 + drain", () => {
      expect(policy(results, "gitpod").total.refreshes).to.be.greaterThan(policy(results, "h20-drain").total.refreshes);
    });
  });

  describe("goes through the real decide()", () => {
    it("calls decide() once per decision it counts, and never for the every-request baseline", () => {
      let calls = 0;
      const spy: typeof decide = (...args) => {
        calls++;
        return decide(...args);
      };
      const spied = runSimulation({ ...SMALL, policies: ["gitpod", "h20-drain", "every-request"] }, { decide: spy });
      const counted = spied.policies.reduce((sum, p) => sum + Object.values(p.total.decisions).reduce((s, n) => s + n, 0), 0);
      expect(calls).to.equal(counted);
      expect(Object.values(policy(spied, "every-request").total.decisions).every((n) => n === 0)).to.equal(true);
      expect(spied).to.deep.equal(runSimulation({ ...SMALL, policies: ["gitpod", "h20-drain", "every-request"] }));
    });

    it("Gitpod's labels match decide()'s rows: \"true\" = opportunistic refreshes, \"reserved\" = reserved reuses", () => {
      const t = policy(results, "gitpod").total;
      expect(t.labels.true).to.equal(t.opportunistic).and.to.be.greaterThan(0);
      expect(t.labels.reserved).to.be.greaterThan(0);
      expect(t.labels.reserved).to.equal(t.decisions.reuse); // with the flag on and no horizon, every reuse of a valid token is "reserved"
      expect(t.labels.false).to.equal(t.forced);
    });

    it("with opportunistic refresh off, decide() never says \"true\" or \"reserved\"", () => {
      const t = policy(results, "cover-only").total;
      expect(t.labels.true + t.labels.reserved).to.equal(0);
      expect(t.forced).to.equal(t.refreshes);
    });

    it("a decide() that never refreshes makes no refreshes, and the short hand-outs show up", () => {
      const lazy: typeof decide = () => ({ action: "reuse", label: "false", extendReservation: true });
      const t = policy(runSimulation({ ...SMALL, policies: ["h20-drain"] }, { decide: lazy }), "h20-drain").total;
      expect(t.refreshes).to.equal(0);
      expect(t.shortHandOuts).to.equal(t.handOuts);
    });
  });
});
