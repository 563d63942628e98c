import { expect } from "chai";
import type { DataSource } from "typeorm";
import { createTokenService } from "../../src/create-token-service";
import type { EncryptionKey } from "../../src/crypto/key-ring";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { FakeScmServer } from "../../src/testing/fake-scm";
import type { Token } from "../../src/token";
import type { TokenService } from "../../src/token-service";
import { closeDataSource, openTestDataSource, runDatabaseUrl, serverKinds } from "../support/databases";
import { uniqueUser } from "../support/service-fixture";
import { CLIENT, HOST, RefreshLog, RowReader, delay, eventually, metricSum, newEncryptionKey, seeded } from "./harness";
import { handOutSucceeded, type HandOutReport, type HandOutSpec, type MetricSample, type ReleaseReport, type ReplicaConfig } from "./protocol";
import { killReplicas, nextRound, startReplicas, type Replica } from "./replicas";

/**
 * Issue #9, across processes: many releasable hand-outs, releases at random (seeded) points and forced
 * refreshes racing in 4 replica processes (replica-worker.ts) that share this run's MariaDB database,
 * each with its own TokenService, real clock, opportunistic refresh (20-minute horizon) and drain on.
 * The fake SCM (Bitbucket DC: a refresh revokes the old access token at once) runs here, in the mocha process.
 *
 * Numbers: the stored token has 4 minutes left; holds (clones) ask for 3 minutes, which it covers — longer
 * than the early-drain allowance (at most 120 s), so a hold finds the others' holds too long to wait for
 * and reuses the token (label "reserved"); forced requests ask for 5 minutes, which it cannot cover — so
 * they must refresh while holds are live.
 *
 * What is recorded, per hand-out: its token (the fake's test token, sent back over IPC), its entry version,
 * when it was handed out and when its release started and ended (all holds are 3-minute holds, so none
 * ends by itself within the test); per refresh, the instant the fake SCM was about to commit it (a pause
 * point inside the fake just before the commit — the old access token dies after it) and just after.
 *
 * What is checked:
 * - No unreleased hold's token is ever revoked, except by an `ifHeld: "break"` call: at once whenever a
 *   forced request returns and before each release (every hold whose release was not yet sent must be
 *   live at the fake), and afterwards on the timeline (a refresh that revoked version v began only after
 *   every hold of version v had started its release).
 * - TokenHeldError (maxWaitMs 0, ifHeld "fail") only while holds remain; none once all are released.
 * - Waiting forced requests (a bounded maxWaitMs longer than the holds) return once the last hold is
 *   released, within drainPollMs plus a little — minutes before the holds would have ended.
 * - Exactly one SCM refresh per refreshed version, no invalid_grant, no replay.
 * - ifHeld "break" revokes the held token, and that refresh is counted in
 *   scm_token_reservations_broken_total of the replica that made it, and nowhere else.
 */

const WORKERS = 4;
const MIN = 60_000;
const FLAGS = { opportunisticRefresh: true, horizonMinutes: 20, drain: true };
/** The stored token's remaining life, as the library sees it (within the horizon). */
const SEED_EXPIRES_IN_MS = 4 * MIN;
/** A clone: the stored token covers it. */
const HOLD_MINUTES = 3;
/** More than the stored token covers: a forced refresh. */
const FORCED_MINUTES = 5;
/** Bounded, but longer than any hold: these callers drain instead of failing. */
const WAIT_MS = 200_000;
const DRAIN_POLL_MS = 100;
/** A drained request returns at most this long after the last release ended (poll + lease + SCM round trip). */
const DRAIN_END_SLACK_MS = DRAIN_POLL_MS + 1_500;
const REPORT_TIMEOUT_MS = 20_000;

const HOLDS_PER_WORKER = 6;
const EXTRA_HOLDS_PER_WORKER = 1;
const FAIL_CALLS = 6;
const WAITERS = 3;
const DRAIN_SEEDS = [0x5eed01, 0x5eed02, 0x5eed03];
const BREAK_SEED = 0xb4eac;

type OkReport = Extract<HandOutReport, { ok: true }>;
type FailedReport = Extract<HandOutReport, { ok: false }>;

interface Hold {
  id: string;
  /** Replica index, or -1 for the mocha process's own service. */
  worker: number;
  /** early: released at a seeded point soon after it is handed out; kept: released in the release phase. */
  plan: "early" | "kept";
  /** Seeded delay before its release (after the hand-out for early holds, before it in the release phase). */
  releaseDelayMs: number;
  report?: OkReport;
  releaseSentAt?: number;
  release?: ReleaseReport;
}

type ForcedKind = "fail" | "wait" | "break" | "after";

interface Forced {
  id: string;
  worker: number;
  kind: ForcedKind;
  report?: HandOutReport;
}

/** One user's token, its hand-outs, releases and forced requests, and what was seen of them. */
class Race {
  readonly holds = new Map<string, Hold>();
  readonly forced = new Map<string, Forced>();
  readonly violations: string[] = [];
  readonly random: () => number;
  readonly t0 = Date.now();
  /** Set when the ifHeld "break" group is sent: from then on, holds of the seed version may be revoked (checked separately). */
  breakSentAt: number | undefined;
  /** Kept holds reported from now on are released at once (after their seeded delay). */
  releasePhase = false;
  private readonly parentTokens = new Map<string, Token>();
  private readonly seenRevoked = new Set<string>();
  private readonly releases: Promise<void>[] = [];
  private counter = 0;

  private constructor(
    readonly name: string,
    readonly userId: string,
    readonly seedVersion: number,
    readonly refreshIndex: number,
    seed: number,
    private readonly env: Env,
  ) {
    this.random = seeded(seed);
  }

  /** Stores a fresh token family for a new user: 4 minutes left as far as the library knows. */
  static async start(name: string, seed: number, env: Env): Promise<Race> {
    const userId = uniqueUser("race");
    const issued = env.scm.issueTokens({ userId });
    await env.local.storeToken(userId, HOST, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: new Date(Date.now() + SEED_EXPIRES_IN_MS), scopes: issued.scopes });
    env.scm.resetCounters();
    const row = await env.rows.read(userId);
    return new Race(name, userId, row.entry.version, env.refreshes.entries.length, seed, env);
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  shuffled<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  at(t: number | undefined): string {
    return t === undefined ? "never" : `+${t - this.t0} ms`;
  }

  /** `count` releasable 3-minute hand-outs for `worker`, each early (released soon) with probability `earlyShare`. */
  planHolds(worker: number, count: number, maxDelayMs: number, earlyShare: number): HandOutSpec[] {
    return Array.from({ length: count }, () => {
      const id = `${worker}-hold-${++this.counter}`;
      const early = this.random() < earlyShare;
      this.holds.set(id, { id, worker, plan: early ? "early" : "kept", releaseDelayMs: early ? this.int(0, 600) : this.int(10, 80) });
      return { id, delayMs: this.int(0, maxDelayMs), lifetimeMinutes: HOLD_MINUTES, releasable: true };
    });
  }

  planForced(worker: number, kind: ForcedKind, delayMs: number): HandOutSpec {
    const id = `${worker}-${kind}-${++this.counter}`;
    this.forced.set(id, { id, worker, kind });
    const base = { id, delayMs, lifetimeMinutes: FORCED_MINUTES, releasable: false };
    if (kind === "wait") return { ...base, maxWaitMs: WAIT_MS };
    return { ...base, maxWaitMs: 0, ifHeld: kind === "break" ? "break" : "fail" };
  }

  /** The first clone, in this process, with opportunistic refresh off: else the very first hand-out
   * would refresh the 4-minute token (unreserved, within the horizon) and nothing would be left to force. */
  async parentHold(): Promise<Hold> {
    const id = `parent-hold-${++this.counter}`;
    const hold: Hold = { id, worker: -1, plan: "kept", releaseDelayMs: this.int(10, 80) };
    this.holds.set(id, hold);
    const startedAt = Date.now();
    const token = (await this.env.local.getTokenForHost(this.userId, HOST, { lifetimeMinutes: HOLD_MINUTES, releasable: true }))!;
    this.parentTokens.set(id, token);
    this.onReport(id, handOutSucceeded(token, startedAt));
    return hold;
  }

  /** Arms every replica with its hand-outs, releases them all at once (barrier), and returns their reports as they come. */
  async fire(specsByWorker: HandOutSpec[][]): Promise<Map<string, Promise<HandOutReport>>> {
    const round = nextRound();
    const involved = specsByWorker.flatMap((handOuts, w) => (handOuts.length ? [{ replica: this.env.replicas[w]!, handOuts }] : []));
    for (const { replica, handOuts } of involved) replica.send({ type: "armHandOuts", round, userId: this.userId, handOuts });
    await Promise.all(involved.map(({ replica }) => replica.next("armed", REPORT_TIMEOUT_MS, (m) => m.round === round)));
    const reports = new Map<string, Promise<HandOutReport>>();
    for (const { replica, handOuts } of involved) {
      for (const spec of handOuts) {
        const report = replica.next("handedOut", REPORT_TIMEOUT_MS, (m) => m.id === spec.id).then((m) => {
          this.onReport(spec.id, m.report);
          return m.report;
        });
        report.catch(() => undefined); // awaited by the test; never an unhandled rejection meanwhile
        reports.set(spec.id, report);
      }
    }
    for (const { replica } of involved) replica.send({ type: "go", round });
    return reports;
  }

  private onReport(id: string, report: HandOutReport): void {
    const forced = this.forced.get(id);
    if (forced) {
      forced.report = report;
      this.checkHeldTokensLive(`when forced request ${id} (${forced.kind}) returned ${report.ok ? `a token of version ${report.version}` : report.name}`);
      return;
    }
    const hold = this.holds.get(id)!;
    if (!report.ok) {
      this.violations.push(`hold ${id} failed: ${report.name}${report.reason ? `(${report.reason})` : ""}: ${report.message}`);
      return;
    }
    hold.report = report;
    if (!report.releasable) this.violations.push(`hold ${id} was asked releasable but came back without a hold (version ${report.version})`);
    this.checkHeldTokensLive(`when hold ${id} was handed out`);
    // Holds of a later version (handed out after the refresh, having waited for it) stay until the end.
    if (report.version !== this.seedVersion) return;
    if (hold.plan === "early" || this.releasePhase) this.releaseLater(hold);
  }

  private releaseLater(hold: Hold): void {
    this.releases.push(delay(hold.releaseDelayMs).then(() => this.release(hold)));
  }

  /** Releases one hold (in its replica, or here), after checking once more that its token is still live. */
  async release(hold: Hold): Promise<void> {
    if (hold.releaseSentAt !== undefined || !hold.report) return;
    this.checkHeldTokensLive(`before releasing ${hold.id}`);
    hold.releaseSentAt = Date.now();
    if (hold.worker < 0) {
      const startedAt = Date.now();
      try {
        const released = await this.env.local.releaseReservation(this.parentTokens.get(hold.id)!);
        hold.release = { ok: true, released, startedAt, finishedAt: Date.now() };
      } catch (e) {
        hold.release = { ok: false, name: (e as Error).name, message: (e as Error).message, startedAt, finishedAt: Date.now() };
      }
    } else {
      const replica = this.env.replicas[hold.worker]!;
      replica.send({ type: "release", id: hold.id });
      hold.release = (await replica.next("released", REPORT_TIMEOUT_MS, (m) => m.id === hold.id)).report;
    }
    if (!hold.release.ok || !hold.release.released) this.violations.push(`release of ${hold.id}: ${JSON.stringify(hold.release)}`);
  }

  /** Waits for every release scheduled so far. */
  async releasesDone(): Promise<void> {
    for (let n = 0; n !== this.releases.length; ) {
      n = this.releases.length;
      await Promise.all(this.releases);
    }
  }

  /** Releases every hold not released yet (the end of the round). */
  async releaseAll(): Promise<void> {
    await this.releasesDone();
    await Promise.all([...this.holds.values()].map((h) => this.release(h)));
  }

  /** Every hold whose release has not been sent is unreleased (and unexpired: holds last 3 minutes): its token must be live at the fake. */
  checkHeldTokensLive(when: string): void {
    const now = Date.now();
    for (const hold of this.holds.values()) {
      const r = hold.report;
      if (!r || hold.releaseSentAt !== undefined) continue;
      if (this.breakSentAt !== undefined && r.version === this.seedVersion) continue; // may be broken on purpose
      if (r.reservedUntil && Date.parse(r.reservedUntil) <= now) continue; // ended by itself (never within this test)
      if (!this.env.scm.isAccessTokenLive(r.value) && !this.seenRevoked.has(hold.id)) {
        this.seenRevoked.add(hold.id); // report each hold once, when first seen
        this.violations.push(`${when} (${this.at(now)}): unreleased hold ${hold.id} (worker ${hold.worker}, version ${r.version}, handed out ${this.at(r.finishedAt)}) has a revoked token`);
      }
    }
  }

  okHolds(): (Hold & { report: OkReport })[] {
    return [...this.holds.values()].filter((h): h is Hold & { report: OkReport } => h.report !== undefined);
  }

  reportsOf(kind: ForcedKind): { forced: Forced; report: HandOutReport }[] {
    return [...this.forced.values()].filter((f) => f.kind === kind && f.report).map((f) => ({ forced: f, report: f.report! }));
  }

  /** The refreshes the fake SCM committed during this round, in order: refresh i replaced version seedVersion + i. */
  refreshes(): { beganAt: number; committedAt?: number }[] {
    return this.env.refreshes.entries.slice(this.refreshIndex);
  }

  /**
   * The checks every round makes once all its calls have returned: one SCM refresh per version, one
   * token per version, and on the timeline, no hold revoked before its release began (unless `exempt`).
   */
  async verifyTimeline(exempt: (hold: Hold & { report: OkReport }) => boolean = () => false): Promise<{ finalVersion: number }> {
    const row = await this.env.rows.read(this.userId);
    const refreshes = this.refreshes();
    const finalVersion = row.entry.version;
    expect(refreshes.length, `${this.name}: one SCM refresh per refreshed version`).to.equal(finalVersion - this.seedVersion);
    expect(this.env.scm.counters, `${this.name}: SCM counters`).to.include({ tokenRequests: refreshes.length, refreshSuccesses: refreshes.length, invalidGrants: 0, replays: 0, forks: 0 });
    expect(row.entry.refreshLeaseOwner, `${this.name}: lease released`).to.equal(undefined);
    expect(this.env.scm.isAccessTokenLive(row.accessToken), `${this.name}: the stored token is live`).to.equal(true);

    const valuesByVersion = new Map<number, Set<string>>();
    const allOk = [...this.okHolds().map((h) => h.report), ...[...this.forced.values()].flatMap((f) => (f.report?.ok ? [f.report] : []))];
    for (const r of allOk) valuesByVersion.set(r.version, (valuesByVersion.get(r.version) ?? new Set()).add(r.value));
    for (const [version, values] of valuesByVersion) {
      expect(values.size, `${this.name}: version ${version} is one token`).to.equal(1);
      expect(version, `${this.name}: a handed-out version`).to.be.within(this.seedVersion, finalVersion);
    }
    expect(valuesByVersion.get(finalVersion)?.has(row.accessToken) ?? true, `${this.name}: the latest version handed out is the stored token`).to.equal(true);

    for (const hold of this.okHolds()) {
      const r = hold.report;
      const revokedBy = refreshes[r.version - this.seedVersion];
      if (!revokedBy) {
        if (!this.env.scm.isAccessTokenLive(r.value)) this.violations.push(`hold ${hold.id} (version ${r.version}) is dead though no refresh replaced its version`);
        continue;
      }
      if (exempt(hold)) continue;
      const releaseStartedAt = hold.release?.startedAt;
      if (releaseStartedAt === undefined || releaseStartedAt > revokedBy.beganAt) {
        this.violations.push(
          `hold ${hold.id} (worker ${hold.worker}, version ${r.version}, handed out ${this.at(r.finishedAt)}, held until ${r.reservedUntil}) ` +
            `was revoked by the refresh that began ${this.at(revokedBy.beganAt)}, before its release started (${this.at(releaseStartedAt)})`,
        );
      }
    }
    return { finalVersion };
  }

  /** TokenHeldError only while some hold of the seed version may still have held the token during the call. */
  checkHeldErrors(): void {
    const seedHolds = this.okHolds().filter((h) => h.report.version === this.seedVersion);
    const latestHoldEnd = Math.max(...seedHolds.map((h) => Date.parse(h.report.reservedUntil ?? "")));
    for (const f of this.forced.values()) {
      const r = f.report;
      if (!r || r.ok || r.name !== "TokenHeldError") continue;
      const holder = seedHolds.find((h) => h.report.startedAt <= r.finishedAt && (h.release === undefined || h.release.finishedAt >= r.startedAt));
      if (!holder) this.violations.push(`${f.id}: TokenHeldError (${this.at(r.startedAt)}–${this.at(r.finishedAt)}) while no hold was live`);
      const heldUntil = Date.parse(r.heldUntil ?? "");
      if (!(heldUntil > r.startedAt && heldUntil <= latestHoldEnd + 1_000)) {
        this.violations.push(`${f.id}: TokenHeldError names ${r.heldUntil}, not the end of a live hold (latest ${new Date(latestHoldEnd).toISOString()})`);
      }
    }
  }
}

interface Env {
  replicas: Replica[];
  scm: FakeScmServer;
  local: TokenService;
  rows: RowReader;
  refreshes: RefreshLog;
}

function describeReport(r: HandOutReport | undefined): string {
  if (!r) return "no report";
  return r.ok ? `token v${r.version}` : `${r.name}${r.reason ? `(${r.reason})` : ""}: ${r.message}`;
}

for (const server of serverKinds()) describe(`concurrency: releases, hand-outs and forced refreshes racing in separate processes (${server})`, function () {
  this.timeout(30_000);
  let key: EncryptionKey;
  let dataSource: DataSource | undefined;
  let replicas: Replica[] = [];
  let scm: FakeScmServer | undefined;
  let local: TokenService | undefined;
  let env: Env;
  let requestCounter = 0;

  before(async function () {
    key = newEncryptionKey();
    dataSource = await openTestDataSource(server);
    [replicas, scm] = await Promise.all([startReplicas(WORKERS, key.key, "race"), FakeScmServer.start({ profile: "bitbucket_dc" })]);
    scm.setLatency(20); // the refresh is in flight for at least 20 ms: wider windows for the races
    const config: ReplicaConfig = {
      databaseUrl: runDatabaseUrl(server),
      scmBaseUrl: scm.baseUrl,
      host: HOST,
      flags: FLAGS,
      drainPollMs: DRAIN_POLL_MS,
      lease: { waitForOtherMs: 10_000 },
      retry: { timeoutMs: 5_000 },
    };
    await Promise.all(replicas.map((r) => r.configure(config)));
    local = await createTokenService({
      dataSource,
      providers: [new BitbucketServerProvider({ host: HOST, baseUrl: scm.baseUrl, ...CLIENT })],
      encryptionKeys: [key],
      flags: new StaticFeatureFlags({ ...FLAGS, opportunisticRefresh: false }),
      drainPollMs: DRAIN_POLL_MS,
    });
    env = { replicas, scm, local, rows: new RowReader(dataSource, key), refreshes: new RefreshLog(scm) };
  });

  after(async () => {
    await killReplicas(replicas);
    await scm?.close();
    if (dataSource) await closeDataSource(dataSource);
  });

  async function metrics(): Promise<MetricSample[][]> {
    return Promise.all(
      replicas.map(async (r) => {
        const requestId = ++requestCounter;
        r.send({ type: "readMetrics", requestId });
        return (await r.next("metrics", REPORT_TIMEOUT_MS, (m) => m.requestId === requestId)).samples;
      }),
    );
  }

  function delta(before: MetricSample[][], afterwards: MetricSample[][], name: string, labels: Record<string, string> = {}): number[] {
    return afterwards.map((samples, w) => metricSum(samples, name, labels) - metricSum(before[w]!, name, labels));
  }

  for (const seed of DRAIN_SEEDS) {
    it(`seed ${seed.toString(16)}: ${WORKERS} processes × ${HOLDS_PER_WORKER + EXTRA_HOLDS_PER_WORKER} releasable hand-outs, seeded releases, ${FAIL_CALLS} fail-fast and ${WAITERS} waiting forced requests: no held token revoked, waiters return once the last hold is released, one refresh`, async () => {
      const metricsBefore = await metrics();
      const race = await Race.start(`drain round ${seed.toString(16)}`, seed, env);
      const S = race.seedVersion;

      // Phase 1: the first clone (this process), then every replica's hand-outs at seeded instants; about
      // half are released at seeded points soon after, the rest are kept until the release phase.
      const anchor = await race.parentHold();
      expect(anchor.report?.version).to.equal(S);
      const phase1 = await race.fire(replicas.map((_, w) => race.planHolds(w, HOLDS_PER_WORKER, 200, 0.5)));
      await Promise.all(phase1.values());
      expect(race.violations, race.violations.join("\n")).to.deep.equal([]);
      for (const [id, report] of phase1) expect(await report, `${id}: ${describeReport(await report)}`).to.include({ ok: true, version: S });

      // Phase 2: forced requests race with the early releases and with more hand-outs. Fail-fast ones must
      // get TokenHeldError (kept holds remain); waiting ones drain (and mark the entry draining).
      const phase2Specs: HandOutSpec[][] = replicas.map((_, w) => race.planHolds(w, EXTRA_HOLDS_PER_WORKER, 300, 0.5));
      for (let i = 0; i < FAIL_CALLS; i++) {
        const w = race.int(0, WORKERS - 1);
        phase2Specs[w]!.push(race.planForced(w, "fail", race.int(0, 300)));
      }
      for (const w of race.shuffled(replicas.map((_, i) => i)).slice(0, WAITERS)) phase2Specs[w]!.push(race.planForced(w, "wait", race.int(0, 200)));
      const phase2 = await race.fire(phase2Specs);
      const failFast = [...race.forced.values()].filter((f) => f.kind === "fail");
      await Promise.all(failFast.map((f) => phase2.get(f.id)));
      expect(race.violations, race.violations.join("\n")).to.deep.equal([]);
      for (const forced of failFast) expect(forced.report, `${forced.id}: ${describeReport(forced.report)}`).to.include({ ok: false, name: "TokenHeldError" });
      await eventually("a waiting forced request to mark the entry draining", async () => ((await env.rows.read(race.userId)).entry.drainingSince ? true : undefined));

      // Phase 3: release the kept holds one by one at seeded points (the first clone among them); halfway,
      // one more fail-fast request must still get TokenHeldError.
      race.releasePhase = true;
      const kept = race.shuffled(race.okHolds().filter((h) => h.plan === "kept" && h.report.version === S));
      for (const [i, hold] of kept.entries()) {
        if (i === Math.floor(kept.length / 2)) {
          const w = race.int(0, WORKERS - 1);
          const spec = race.planForced(w, "fail", 0);
          const mid = await (await race.fire(replicas.map((_, j) => (j === w ? [spec] : [])))).get(spec.id)!;
          expect(mid, `halfway through the releases (${kept.length - i} kept holds left): ${describeReport(mid)}`).to.include({ ok: false, name: "TokenHeldError" });
        }
        await delay(hold.releaseDelayMs);
        await race.release(hold);
      }
      await Promise.all(phase2.values()); // hand-outs that came during the drain return once it is over
      await race.releasesDone();
      expect(race.violations, race.violations.join("\n")).to.deep.equal([]);

      // The waiting requests: a fresh token, once the last hold of the old one was released, long before the holds' end.
      const seedHolds = race.okHolds().filter((h) => h.report.version === S);
      const lastReleaseStart = Math.max(...seedHolds.map((h) => h.release!.startedAt));
      const lastReleaseEnd = Math.max(...seedHolds.map((h) => h.release!.finishedAt));
      const firstHoldEnd = Math.min(...seedHolds.map((h) => Date.parse(h.report.reservedUntil!)));
      const waits = race.reportsOf("wait");
      expect(waits).to.have.length(WAITERS);
      for (const { forced, report } of waits) {
        expect(report, `${forced.id}: ${describeReport(report)}`).to.include({ ok: true, version: S + 1 });
        const r = report as OkReport;
        expect(r.finishedAt, `${forced.id} returned after the last release started`).to.be.at.least(lastReleaseStart);
        expect(r.finishedAt - lastReleaseEnd, `${forced.id} returned within ${DRAIN_END_SLACK_MS} ms of the last release`).to.be.below(DRAIN_END_SLACK_MS);
        expect(r.finishedAt, `${forced.id} returned long before the holds would have ended`).to.be.below(firstHoldEnd - MIN);
      }

      // Phase 4: with every hold released, fail-fast requests succeed at once.
      const phase4 = await race.fire(replicas.map((_, w) => [race.planForced(w, "after", 0)]));
      for (const [id, p] of phase4) expect(await p, id).to.include({ ok: true, version: S + 1 });

      race.checkHeldTokensLive("at the end of the round");
      race.checkHeldErrors();
      const { finalVersion } = await race.verifyTimeline();
      expect(finalVersion, "exactly one refresh").to.equal(S + 1);
      const refresh = race.refreshes()[0]!;
      expect(refresh.beganAt, "the refresh began only after the last release started").to.be.at.least(lastReleaseStart);
      expect(race.violations, race.violations.join("\n")).to.deep.equal([]);

      const metricsAfter = await metrics();
      expect(delta(metricsBefore, metricsAfter, "scm_token_reservations_broken_total"), "no reservation broken in any process").to.deep.equal(replicas.map(() => 0));
      expect(metricSum(await localSamples(), "scm_token_reservations_broken_total"), "nor in this process").to.equal(0);
      const waited = delta(metricsBefore, metricsAfter, "scm_token_refresh_requests_total", { result: "waited" }).reduce((a, b) => a + b, 0);
      expect(waited, "the waiting requests are counted as waited").to.be.at.least(WAITERS);
      const reserved = delta(metricsBefore, metricsAfter, "scm_token_refresh_requests_total", { opportunisticRefresh: "reserved" }).reduce((a, b) => a + b, 0);
      expect(reserved, "phase-1 hand-outs skipped the opportunistic refresh because the token was held").to.be.at.least(WORKERS * HOLDS_PER_WORKER);

      await race.releaseAll();
      expect(race.violations, race.violations.join("\n")).to.deep.equal([]);
    });
  }

  it("ifHeld \"break\" (two processes at once) revokes the held token in one refresh, counted in scm_token_reservations_broken_total of the process that made it; fail-fast requests racing it get TokenHeldError or the new token", async () => {
    const metricsBefore = await metrics();
    const race = await Race.start("break round", BREAK_SEED, env);
    const S = race.seedVersion;
    await race.parentHold();
    const phase1 = await race.fire(replicas.map((_, w) => race.planHolds(w, 4, 200, 0.25)));
    await Promise.all(phase1.values());
    expect(race.violations, race.violations.join("\n")).to.deep.equal([]);
    for (const [id, report] of phase1) expect(await report, `${id}: ${describeReport(await report)}`).to.include({ ok: true, version: S });
    await race.releasesDone();
    race.checkHeldTokensLive("before the break group");

    // The explicit break group: two processes at the same instant. The others fire fail-fast requests and one waits.
    const [b1, b2, ...others] = race.shuffled(replicas.map((_, i) => i));
    const specs: HandOutSpec[][] = replicas.map(() => []);
    specs[b1!]!.push(race.planForced(b1!, "break", 0));
    specs[b2!]!.push(race.planForced(b2!, "break", 0));
    for (const w of others) specs[w]!.push(race.planForced(w, "fail", race.int(0, 30)), race.planForced(w, "fail", race.int(0, 30)));
    specs[others[0]!]!.push(race.planForced(others[0]!, "wait", 0));
    race.breakSentAt = Date.now();
    const fired = await race.fire(specs);
    await Promise.all(fired.values());

    const { finalVersion } = await race.verifyTimeline((hold) => hold.report.version === S);
    expect(finalVersion, "the two break calls made one refresh between them").to.equal(S + 1);
    const refresh = race.refreshes()[0]!;
    expect(refresh.beganAt, "the refresh that revoked the held token is the break group's").to.be.at.least(race.breakSentAt);
    for (const { forced, report } of race.reportsOf("break")) expect(report, `${forced.id}: ${describeReport(report)}`).to.include({ ok: true, version: S + 1 });
    for (const { forced, report } of race.reportsOf("wait")) {
      expect(report, `${forced.id}: ${describeReport(report)}`).to.include({ ok: true, version: S + 1 });
      expect((report as OkReport).finishedAt - (report as OkReport).startedAt, "the waiter did not wait for the broken holds").to.be.below(5_000);
    }
    // The database holds the new version before either break call returns (the refresher commits it; the other waits for it).
    const newVersionStoredBy = Math.min(...race.reportsOf("break").map(({ report }) => report.finishedAt));
    for (const { forced, report } of race.reportsOf("fail")) {
      if (report.ok) expect(report.version, forced.id).to.equal(S + 1);
      else {
        expect(report.name, `${forced.id}: ${describeReport(report)}`).to.equal("TokenHeldError");
        expect((report as FailedReport).startedAt, `${forced.id}: TokenHeldError only before the new version was stored`).to.be.at.most(newVersionStoredBy);
      }
    }
    const broken = race.okHolds().filter((h) => h.releaseSentAt === undefined);
    expect(broken.length, "holds were live when the break group fired").to.be.greaterThan(0);
    for (const hold of broken) expect(env.scm.isAccessTokenLive(hold.report.value), `${hold.id}: broken on purpose`).to.equal(false);
    race.checkHeldErrors();
    expect(race.violations, race.violations.join("\n")).to.deep.equal([]);

    const metricsAfter = await metrics();
    const brokenCounts = delta(metricsBefore, metricsAfter, "scm_token_reservations_broken_total");
    const successes = delta(metricsBefore, metricsAfter, "scm_token_refresh_requests_total", { result: "success" });
    const breaker = brokenCounts.findIndex((n) => n === 1);
    expect(brokenCounts.reduce((a, b) => a + b, 0), `broken per process ${JSON.stringify(brokenCounts)}`).to.equal(1);
    expect([b1, b2], "counted in a process of the break group").to.include(breaker);
    expect(successes[breaker], "the process that counted it is the one that refreshed").to.equal(1);

    await race.releaseAll();
    expect(race.violations, race.violations.join("\n")).to.deep.equal([]);
  });

  async function localSamples(): Promise<MetricSample[]> {
    const json = await local!.metricsRegistry.getMetricsAsJSON();
    return json.flatMap((m) => m.values.map((v) => ({ name: m.name, labels: { ...v.labels } as Record<string, string | number>, value: v.value })));
  }
});
