import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { Registry } from "prom-client";
import type { DataSource } from "typeorm";
import { createTokenService } from "../src/create-token-service";
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
 * defaults are checked here: opportunistic refresh on with a 20-minute horizon, drain on with early
 * drain (a wait of up to 60 s, ramped over the horizon), hand-out lifetimes 5 (API) and 10 (workspace start) minutes.
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
  it("DEFAULT_FLAGS are the recommended policy: opportunistic refresh on, horizon 20 min, drain on, workspace start 10 min", () => {
    expect(DEFAULT_FLAGS).to.deep.equal({ opportunisticRefresh: true, workspaceStartLifetimeMinutes: 10, horizonMinutes: 20, drain: true });
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

      it("refreshes an unreserved token opportunistically once it is within 20 minutes of expiry (label \"true\"), not before", async () => {
        const { user, stored, start } = await connect(d);
        d.clock.set(start + 39 * MIN); // 21 minutes left: outside the horizon
        expect((await d.service.getTokenForHost(user, d.host))!.value === stored).to.equal(true);
        d.clock.set(start + 45 * MIN); // 15 minutes left, the 5-minute reservation of minute 39 is over
        const refreshed = await d.service.getTokenForHost(user, d.host);
        expect(refreshed!.value === stored, "refreshed although it still covered 5 minutes").to.equal(false);
        expect(d.scm.isAccessTokenLive(refreshed!.value)).to.equal(true);
        expect(await handOuts(d)).to.deep.equal({ "still_valid/false": 1, "success/true": 1 });
        expect(d.logger.find("Token refreshed")?.fields.mode).to.equal("opportunistic");
      });

      it("does not refresh a reserved token within the horizon: reuses it (label \"reserved\") and the holder's token stays live", async () => {
        const { user, stored, start } = await connect(d);
        d.clock.set(start + 38 * MIN);
        const clone = await d.service.getTokenForWorkspaceStart(user, d.host); // held until minute 48
        d.clock.set(start + 42 * MIN); // 18 minutes left, within the horizon, but held for 6 more minutes
        const api = await d.service.getTokenForHost(user, d.host);
        expect(api!.value === stored && clone!.value === stored).to.equal(true);
        expect(d.scm.isAccessTokenLive(stored)).to.equal(true);
        expect(d.scm.counters.refreshSuccesses).to.equal(0);
        expect(await handOuts(d)).to.deep.equal({ "still_valid/false": 1, "still_valid/reserved": 1 });
      });

      it("early drain: within the horizon, a holder that is done within the ramp's allowance is waited for, then the token is refreshed", async () => {
        const { user, stored, start } = await connect(d);
        d.clock.set(start + 39 * MIN);
        await d.service.getTokenForHost(user, d.host); // held until minute 44
        d.clock.set(start + 43 * MIN + 45_000); // 16¼ minutes left: the allowance is 22.5 s, the holder is done in 15 s
        const next = await d.service.getTokenForHost(user, d.host);
        expect(next!.value === stored).to.equal(false);
        expect(d.clock.now().getTime(), "refreshed before the holder's reservation ended").to.be.at.least(start + 44 * MIN);
        expect(d.clock.now().getTime()).to.be.below(start + 44 * MIN + 30_000);
        expect(await counter(d, "scm_token_reservations_broken_total")).to.equal(0);
        expect(await handOuts(d)).to.deep.equal({ "still_valid/false": 1, "waited/false": 1 });
        expect(d.logger.find("Token refreshed")?.fields.mode).to.equal("drained");
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
    });
  }
});
