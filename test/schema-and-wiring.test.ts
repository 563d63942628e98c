import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { Container } from "inversify";
import { Registry } from "prom-client";
import { createTokenService } from "../src/create-token-service";
import { TYPES, tokenServiceModule } from "../src/di";
import { ConfigurationError } from "../src/errors";
import { StaticFeatureFlags } from "../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../src/providers/bitbucket-server-provider";
import { FakeClock } from "../src/testing/fake-clock";
import { FakeScmServer } from "../src/testing/fake-scm";
import { TokenService } from "../src/token-service";
import { closeDataSource, dbKinds, openTestDataSource, rawQuery } from "./support/databases";
import { uniqueUser } from "./support/service-fixture";

const keys = () => [{ id: "k1", key: randomBytes(32).toString("base64") }];

for (const kind of dbKinds()) {
  describe(`schema on ${kind}`, () => {
    it("the migrations produce exactly the entities' schema (no pending diff)", async () => {
      const ds = await openTestDataSource(kind);
      try {
        const pending = await ds.driver.createSchemaBuilder().log();
        expect(pending.upQueries.map((q) => q.query)).to.deep.equal([]);
      } finally {
        await closeDataSource(ds);
      }
    });

    it("the (userId, host) lookup is unique: a second row for the same pair is refused", async () => {
      const ds = await openTestDataSource(kind);
      try {
        const insert = (id: string) =>
          rawQuery(ds, "INSERT INTO scm_token_entry (id, userId, host, accessToken, createdAt, updatedAt) VALUES (?, 'u-dup', 'h', 'x', '2026-01-01 00:00:00.000', '2026-01-01 00:00:00.000')", [id]);
        await insert(`a-${kind}-${process.pid}`);
        const error = await insert(`b-${kind}-${process.pid}`).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(Error);
        await rawQuery(ds, "DELETE FROM scm_token_entry WHERE userId = 'u-dup'");
      } finally {
        await closeDataSource(ds);
      }
    });
  });
}

describe("wiring", () => {
  it("tokenServiceModule binds a working TokenService in an inversify container, and parts can be rebound", async () => {
    const clock = new FakeClock("2026-01-01T00:00:00Z");
    const scm = await FakeScmServer.start({ profile: "bitbucket_dc", clock });
    const dataSource = await openTestDataSource("sqljs");
    try {
      const container = new Container({ defaultScope: "Singleton" });
      container.load(
        tokenServiceModule({
          dataSource,
          providers: [new BitbucketServerProvider({ host: "bitbucket.example.com", baseUrl: scm.baseUrl, clientId: "test-client", clientSecret: "test-secret" })],
          encryptionKeys: keys(),
          flags: new StaticFeatureFlags({}),
        }),
      );
      container.rebind(TYPES.Clock).toConstantValue(clock);
      const service = container.get(TokenService);
      expect(container.get(TokenService)).to.equal(service);
      const user = uniqueUser();
      const issued = scm.issueTokens({ userId: user });
      await service.storeToken(user, "bitbucket.example.com", { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt });
      clock.advanceMinutes(58); // the rebound clock is the one the service uses: this forces a refresh
      const token = await service.getTokenForHost(user, "bitbucket.example.com");
      expect(token!.value === issued.accessToken).to.equal(false);
    } finally {
      await closeDataSource(dataSource);
      await scm.close();
    }
  });

  it("createTokenService fails at start-up with instructions for bad configuration", async () => {
    const provider = new BitbucketServerProvider({ host: "bitbucket.example.com", clientId: "c", clientSecret: "s" });
    const attempts: Array<[() => Promise<unknown>, RegExp]> = [
      [() => createTokenService({ providers: [], encryptionKeys: keys() }), /at least one provider/],
      [() => createTokenService({ providers: [provider, provider], encryptionKeys: keys() }), /two providers .* bitbucket\.example\.com/],
      [() => createTokenService({ providers: [provider], encryptionKeys: [] }), /encryptionKeys is empty/],
      [() => createTokenService({ providers: [provider], encryptionKeys: keys(), defaultLifetimeMinutes: -1 }), /defaultLifetimeMinutes/],
      [() => createTokenService({ providers: [provider], encryptionKeys: keys(), databaseUrl: "mssql://x/y" }), /not supported/],
      [async () => new BitbucketServerProvider({ host: "bitbucket.example.com", baseUrl: "http://10.0.0.1", clientId: "c", clientSecret: "s" }), /plain http/],
      [async () => new BitbucketServerProvider({ host: "not a host", clientId: "c", clientSecret: "s" }), /not a host name/],
    ];
    for (const [attempt, message] of attempts) {
      const error = await attempt().then(() => undefined, (e: unknown) => e);
      expect(error, String(message)).to.be.instanceOf(ConfigurationError);
      expect((error as Error).message).to.match(message);
    }
  });

  it("uses the injected registry and prefix, never the global registry", async () => {
    const registry = new Registry();
    const service = await createTokenService({
      providers: [new BitbucketServerProvider({ host: "bitbucket.example.com", clientId: "c", clientSecret: "s" })],
      encryptionKeys: keys(),
      metricsRegistry: registry,
      metricsPrefix: "gitpod_",
    });
    try {
      await service.getTokenForHost(uniqueUser(), "bitbucket.example.com");
      expect(await registry.metrics()).to.contain('gitpod_scm_token_refresh_requests_total{host="bitbucket.example.com",result="no_token",opportunisticRefresh="false"} 1');
      const { register } = await import("prom-client");
      expect(register.getSingleMetric("gitpod_scm_token_refresh_requests_total")).to.equal(undefined);
      expect(service.metricsRegistry).to.equal(registry);
    } finally {
      await service.close();
    }
  });
});
