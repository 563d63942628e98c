import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { Container } from "inversify";
import type { DataSource } from "typeorm";
import { createTokenService } from "../src/create-token-service";
import { TYPES, tokenServiceModule } from "../src/di";
import { StaticFeatureFlags } from "../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../src/providers/bitbucket-server-provider";
import { TokenStore } from "../src/storage/token-store";
import { FakeClock } from "../src/testing/fake-clock";
import { FakeScmServer } from "../src/testing/fake-scm";
import { TokenService } from "../src/token-service";
import { closeDataSource, dbKinds, openTestDataSource } from "./support/databases";
import { uniqueUser } from "./support/service-fixture";

const HOST = "bitbucket.example.com";

/** A store that runs `beforeNextLease` just before the next lease attempt: a deterministic race window. */
class RacingStore extends TokenStore {
  beforeNextLease?: () => Promise<void>;

  override async takeLease(...args: Parameters<TokenStore["takeLease"]>): Promise<boolean> {
    const hook = this.beforeNextLease;
    this.beforeNextLease = undefined;
    if (hook) await hook();
    return super.takeLease(...args);
  }
}

for (const kind of dbKinds()) {
  describe(`refresh guards on ${kind}`, () => {
    let scm: FakeScmServer;
    let dataSource: DataSource;
    afterEach(async () => {
      await scm?.close();
      if (dataSource) await closeDataSource(dataSource);
    });

    it("an opportunistic refresh does not start when a hand-out reserved the token after the refresher read it", async () => {
      const clock = new FakeClock("2026-01-01T00:00:00Z");
      scm = await FakeScmServer.start({ profile: "bitbucket_dc", clock });
      dataSource = await openTestDataSource(kind);
      const encryptionKeys = [{ id: "k", key: randomBytes(32).toString("base64") }];
      const provider = new BitbucketServerProvider({ host: HOST, baseUrl: scm.baseUrl, clientId: "test-client", clientSecret: "test-secret" });

      const store = new RacingStore(dataSource);
      const container = new Container({ defaultScope: "Singleton" });
      container.load(tokenServiceModule({ dataSource, providers: [provider], encryptionKeys, clock, flags: new StaticFeatureFlags({ opportunisticRefresh: true, horizonMinutes: 20, horizonMarginMinutes: 0 }) }));
      container.rebind(TYPES.TokenStore).toConstantValue(store);
      const refresher = container.get(TokenService);
      const other = await createTokenService({ dataSource, providers: [provider], encryptionKeys, clock, flags: new StaticFeatureFlags({ opportunisticRefresh: false }) });

      const user = uniqueUser();
      const issued = scm.issueTokens({ userId: user });
      await refresher.storeToken(user, HOST, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt });
      clock.advanceMinutes(45); // 15 minutes left, unreserved: the refresher decides an opportunistic refresh

      let held: string | undefined;
      store.beforeNextLease = async () => {
        held = (await other.getTokenForHost(user, HOST, { lifetimeMinutes: 10 }))!.value; // reserved until 55
      };
      const token = await refresher.getTokenForHost(user, HOST);

      expect(held === issued.accessToken, "the other caller got the stored token").to.equal(true);
      expect(token!.value === issued.accessToken, "the refresher re-decided: reserved → reuse").to.equal(true);
      expect(scm.counters.refreshSuccesses).to.equal(0);
      expect(scm.isAccessTokenLive(held!)).to.equal(true);
      const metric = (await refresher.metricsRegistry.getSingleMetric("scm_token_refresh_requests_total")!.get()).values;
      expect(metric.map((v) => `${v.labels.result}/${v.labels.opportunisticRefresh}`)).to.deep.equal(["still_valid/reserved"]);
    });
  });
}
