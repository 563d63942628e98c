import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { Registry } from "prom-client";
import type { DataSource } from "typeorm";
import { createTokenService } from "../src/create-token-service";
import { TokenHeldError } from "../src/errors";
import { DEFAULT_FLAGS } from "../src/flags/feature-flags";
import { FakeClock } from "../src/testing/fake-clock";
import { FakeScmServer } from "../src/testing/fake-scm";
import { providerForFakeScm } from "../src/testing/provider-for-fake-scm";
import { RecordingLogger } from "../src/testing/recording-logger";
import type { TokenService } from "../src/token-service";
import { closeDataSource, dbKinds, openTestDataSource } from "./support/databases";
import { uniqueUser } from "./support/service-fixture";

/**
 * What a new user gets out of the box: a service created WITHOUT a `flags` option (no feature flag
 * system at all), so every behaviour below comes from the library's defaults. README's claims about
 * defaults are checked here: opportunistic refresh on with a 20-minute horizon per hand-out kind
 * (lifetime + 8 minutes: a 5-minute API hand-out from 13 minutes left, a 10-minute workspace start
 * from 18), drain on with early drain (a wait of up to 120 s, ramped from each request's horizon to
 * 8 minutes left), waits bounded at 10 minutes (`defaultMaxWaitMs`), hand-out lifetimes 5 (API) and
 * 10 (workspace start) minutes, and a writing hand-out pinning 50 % more than asked, never into the
 * 20-minute refresh window.
 */
const MIN = 60_000;
const START = "2026-01-05T09:00:00.000Z";

interface Defaults {
  service: TokenService;
  scm: FakeScmServer;
  clock: FakeClock;
  logger: RecordingLogger;
  registry: Registry;
  host: string;
  close(): Promise<void>;
}

async function serviceWithDefaults(dataSource: DataSource): Promise<Defaults> {
  const clock = new FakeClock(START);
  const scm = await FakeScmServer.start({ profile: "bitbucket_dc", clock });
  const provider = providerForFakeScm(scm);
  const logger = new RecordingLogger();
  const registry = new Registry();
  // Deliberately no `flags`, no `defaultLifetimeMinutes`, no drain settings: only what every service needs.
  const service = await createTokenService({
    dataSource,
    providers: [provider],
    encryptionKeys: [{ id: "k1", key: randomBytes(32).toString("base64") }],
    clock,
    logger,
    metricsRegistry: registry,
  });
  return { service, scm, clock, logger, registry, host: provider.host, close: () => scm.close() };
}

/** Stores a fresh 60-minute Bitbucket DC token for a new user; returns the user, the token and the clock's start. */
async function connect(d: Defaults): Promise<{ user: string; stored: string; start: number }> {
  const user = uniqueUser("defaults");
  const issued = d.scm.issueTokens({ userId: user });
  await d.service.storeToken(user, d.host, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt, scopes: issued.scopes });
  expect(issued.expiresAt!.getTime() - d.clock.now().getTime(), "the fake issues 60-minute tokens").to.equal(60 * MIN);
  return { user, stored: issued.accessToken, start: d.clock.now().getTime() };
}

/** `scm_token_refresh_requests_total` as { "result/opportunisticRefresh": count }. */
async function handOuts(d: Defaults): Promise<Record<string, number>> {
  const values = (await d.registry.getSingleMetric("scm_token_refresh_requests_total")!.get()).values;
  return Object.fromEntries(values.filter((v) => v.value > 0).map((v) => [`${v.labels.result}/${v.labels.opportunisticRefresh}`, v.value]));
}

async function counter(d: Defaults, name: string): Promise<number> {
  return (await d.registry.getSingleMetric(name)!.get()).values.reduce((sum, v) => sum + v.value, 0);
}

describe("defaults: a service created without flags", () => {
  it("DEFAULT_FLAGS are the recommended policy: opportunistic refresh on, horizon 20 min with an 8-minute margin per hand-out kind, drain on, workspace start 10 min", () => {
    expect(DEFAULT_FLAGS).to.deep.equal({ opportunisticRefresh: true, workspaceStartLifetimeMinutes: 10, horizonMinutes: 20, drain: true, horizonMarginMinutes: 8 });
  });

  for (const kind of dbKinds()) {
    describe(`on ${kind}`, () => {
      let dataSource: DataSource;
      let d: Defaults;
      before(async () => {
        dataSource = await openTestDataSource(kind);
      });
      after(async () => closeDataSource(dataSource));
      beforeEach(async () => {
        d = await serviceWithDefaults(dataSource);
      });
      afterEach(async () => d.close());

      it("hands out API tokens for 5 minutes and workspace-start tokens for 10", async () => {
        const { user, stored, start } = await connect(d);
        const api = await d.service.getTokenForHost(user, d.host);
        expect(api!.value === stored).to.equal(true);
        expect(api!.reservedUntilDate!.getTime() - start).to.equal(5 * MIN);
        const clone = await d.service.getTokenForWorkspaceStart(user, d.host);
        expect(clone!.value === stored).to.equal(true);
        expect(clone!.reservedUntilDate!.getTime() - start).to.equal(10 * MIN);
      });

      it("a 5-minute API hand-out refreshes an unreserved token opportunistically from 13 minutes left (label \"true\"), not at 14", async () => {
        const early = await connect(d);
        const late = await connect(d);
        d.clock.set(early.start + 46 * MIN); // 14 minutes left: inside the 20-minute horizon, outside the API hand-out's 13
        expect((await d.service.getTokenForHost(early.user, d.host))!.value === early.stored, "refreshed at 14 minutes left").to.equal(true);
        d.clock.set(late.start + 47 * MIN); // 13 minutes left
        const refreshed = await d.service.getTokenForHost(late.user, d.host);
        expect(refreshed!.value === late.stored, "not refreshed at 13 minutes left").to.equal(false);
        expect(d.scm.isAccessTokenLive(refreshed!.value)).to.equal(true);
        expect(await handOuts(d)).to.deep.equal({ "still_valid/false": 1, "success/true": 1 });
        expect(d.logger.find("Token refreshed")?.fields.mode).to.equal("opportunistic");
      });

      it("a 10-minute workspace start refreshes an unreserved token from 18 minutes left, not at 19", async () => {
        const early = await connect(d);
        const late = await connect(d);
        d.clock.set(early.start + 41 * MIN); // 19 minutes left
        expect((await d.service.getTokenForWorkspaceStart(early.user, d.host))!.value === early.stored, "refreshed at 19 minutes left").to.equal(true);
        d.clock.set(late.start + 42 * MIN); // 18 minutes left
        expect((await d.service.getTokenForWorkspaceStart(late.user, d.host))!.value === late.stored, "not refreshed at 18 minutes left").to.equal(false);
        expect(await handOuts(d)).to.deep.equal({ "still_valid/false": 1, "success/true": 1 });
      });

      it("does not refresh a reserved token within the horizon: reuses it (label \"reserved\") and the holder's token stays live", async () => {
        const { user, stored, start } = await connect(d);
        d.clock.set(start + 40 * MIN);
        const clone = await d.service.getTokenForWorkspaceStart(user, d.host); // 20 minutes left: outside its 18; held until minute 50
        d.clock.set(start + 48 * MIN); // 12 minutes left, within the API hand-out's 13; held 2 more minutes, beyond the 24 s early-drain allowance
        const api = await d.service.getTokenForHost(user, d.host);
        expect(api!.value === stored && clone!.value === stored).to.equal(true);
        expect(d.scm.isAccessTokenLive(stored)).to.equal(true);
        expect(d.scm.counters.refreshSuccesses).to.equal(0);
        expect(await handOuts(d)).to.deep.equal({ "still_valid/false": 1, "still_valid/reserved": 1 });
      });

      it("early drain: within the horizon, a holder that is done within the ramp's allowance is waited for, then the token is refreshed", async () => {
        const { user, stored, start } = await connect(d);
        d.clock.set(start + 44 * MIN);
        await d.service.getTokenForHost(user, d.host); // 16 minutes left: outside the API hand-out's horizon; held until minute 49
        d.clock.set(start + 48 * MIN + 30_000); // 11½ minutes left: the allowance (0 s at 13, 120 s at 8) is 36 s, the holder is done in 30 s
        const next = await d.service.getTokenForHost(user, d.host);
        expect(next!.value === stored).to.equal(false);
        expect(d.clock.now().getTime(), "refreshed before the holder's reservation ended").to.be.at.least(start + 49 * MIN);
        expect(d.clock.now().getTime()).to.be.below(start + 49 * MIN + 30_000);
        expect(await counter(d, "scm_token_reservations_broken_total")).to.equal(0);
        expect(await handOuts(d)).to.deep.equal({ "still_valid/false": 1, "waited/false": 1 });
        expect(d.logger.find("Token refreshed")?.fields.mode).to.equal("drained");
      });

      it("early drain waits at most 120 s: a holder done in 114 s is waited for, one done in 150 s is not (reuse, label \"reserved\")", async () => {
        const waits = await connect(d);
        const reuses = await connect(d);
        const start = waits.start;
        d.clock.set(start + 39 * MIN + 54_000); // 20.1 minutes left: outside every horizon; a 15.6-minute hand-out holds until 55.5
        for (const u of [waits, reuses]) await d.service.getTokenForHost(u.user, d.host, { lifetimeMinutes: 15.6 });
        d.clock.set(start + 53 * MIN); // 7 minutes left: the allowance is 120 s, the holder needs 150 s more
        expect((await d.service.getTokenForHost(reuses.user, d.host))!.value === reuses.stored).to.equal(true);
        expect(d.clock.now().getTime(), "did not wait").to.equal(start + 53 * MIN);
        d.clock.set(start + 53 * MIN + 36_000); // 6.4 minutes left: the holder needs 114 s more
        expect((await d.service.getTokenForHost(waits.user, d.host))!.value === waits.stored).to.equal(false);
        expect(d.clock.now().getTime(), "waited for the holder").to.be.at.least(start + 55 * MIN + 30_000);
        expect(await handOuts(d)).to.deep.equal({ "still_valid/false": 2, "still_valid/reserved": 1, "waited/false": 1 });
        expect(await counter(d, "scm_token_reservations_broken_total")).to.equal(0);
      });

      it("a forced refresh of a held token drains: it waits for the holder, then refreshes, and breaks nobody", async () => {
        const { user, stored, start } = await connect(d);
        d.clock.set(start + 39 * MIN);
        await d.service.getTokenForHost(user, d.host); // held until minute 44
        d.clock.set(start + 43 * MIN + 40_000); // 16m20s left; the next call needs 17 minutes: the token cannot cover it
        const later = await d.service.getTokenForHost(user, d.host, { lifetimeMinutes: 17 });
        expect(later!.value === stored).to.equal(false);
        expect(d.clock.now().getTime(), "refreshed before the holder's reservation ended").to.be.at.least(start + 44 * MIN);
        expect(await counter(d, "scm_token_reservations_broken_total")).to.equal(0);
        expect(await handOuts(d)).to.deep.equal({ "still_valid/false": 1, "waited/false": 1 });
        expect(d.scm.counters.refreshSuccesses).to.equal(1);
      });

      it("waits at most 10 minutes (defaultMaxWaitMs): a holder done in 9½ minutes is waited for; one done in 10½ fails the hand-out at once with TokenHeldError", async () => {
        const waits = await connect(d);
        const fails = await connect(d);
        const start = waits.start;
        // An 8-minute hand-out at 60 minutes left pins the token for 12 (8 + 50 % slack).
        for (const u of [waits, fails]) await d.service.getTokenForHost(u.user, d.host, { lifetimeMinutes: 8 });
        d.clock.set(start + 90_000); // a 60-minute hand-out cannot be covered; the holder is done in 10½ minutes
        const error = await d.service.getTokenForHost(fails.user, d.host, { lifetimeMinutes: 60 }).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(TokenHeldError);
        expect((error as TokenHeldError).heldUntil.getTime()).to.equal(start + 12 * MIN);
        expect(d.clock.now().getTime(), "failed at once, without waiting").to.equal(start + 90_000);
        expect(d.scm.isAccessTokenLive(fails.stored)).to.equal(true);
        d.clock.set(start + 150_000); // done in 9½ minutes: within the bound
        const later = await d.service.getTokenForHost(waits.user, d.host, { lifetimeMinutes: 60 });
        expect(later!.value === waits.stored).to.equal(false);
        expect(d.clock.now().getTime(), "waited for the holder").to.be.at.least(start + 12 * MIN);
        expect(d.scm.counters.refreshSuccesses).to.equal(1);
      });

      it("a hand-out that must write pins 50 % more than asked, so the next ones write nothing — but never into the 20-minute refresh window", async () => {
        const { user, start } = await connect(d);
        await d.service.getTokenForHost(user, d.host); // 60 minutes left: pinned until 7½ minutes
        d.clock.set(start + 2 * MIN + 30_000); // needs 7½: covered by the pin
        await d.service.getTokenForHost(user, d.host);
        expect(await counter(d, "scm_token_handouts_write_free_total")).to.equal(1);
        d.clock.set(start + 2 * MIN + 31_000); // needs 7½ minutes + 1 s: writes
        await d.service.getTokenForHost(user, d.host);
        expect(await counter(d, "scm_token_handouts_write_free_total")).to.equal(1);
        d.clock.set(start + 36 * MIN); // 24 minutes left: the slack would reach 43½, into the last 20 minutes; pinned until 41
        await d.service.getTokenForHost(user, d.host);
        d.clock.set(start + 36 * MIN + 1_000); // needs 41 minutes + 1 s: not covered, writes
        await d.service.getTokenForHost(user, d.host);
        expect(await counter(d, "scm_token_handouts_write_free_total")).to.equal(1);
      });
    });
  }
});
