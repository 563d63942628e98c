import { expect } from "chai";
import { Container } from "inversify";
import { Counter, Registry } from "prom-client";
import { createTokenService } from "../../src/create-token-service";
import { tokenServiceModule } from "../../src/di";
import { ConfigurationError } from "../../src/errors";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { createTestTokenService } from "../../src/testing/create-test-token-service";
import { TokenService } from "../../src/token-service";
import { closeDataSource, openTestDataSource } from "../support/databases";

/**
 * Several services on one prom-client Registry (e.g. one per tenant, or a blue/green switch in one
 * process): they share the library's metrics instead of failing on prom-client's "already
 * registered", and close() takes off the registry what is no longer used by anyone.
 */
const HOST = "bitbucket.example.com";
const REQUESTS = "scm_token_refresh_requests_total";

function service(registry: Registry, databaseUrl = "sqljs::memory:"): Promise<TokenService> {
  return createTokenService({
    databaseUrl,
    providers: [new BitbucketServerProvider({ host: HOST, baseUrl: "http://127.0.0.1:9", clientId: "c", clientSecret: "s" })],
    encryptionKeys: [{ id: "k", key: Buffer.alloc(32, 3).toString("base64") }],
    metricsRegistry: registry,
  });
}

const libraryMetricNames = (registry: Registry) => registry.getMetricsAsArray().map((m) => m.name).filter((n) => n.startsWith("scm_token_"));

async function noTokenCount(registry: Registry): Promise<number> {
  const metric = registry.getSingleMetric(REQUESTS);
  if (!metric) return -1;
  const values = (await metric.get()).values.filter((v) => v.labels.result === "no_token");
  return values.reduce((sum, v) => sum + v.value, 0);
}

describe("start-up: services sharing a metrics registry", () => {
  it("a second service on the same registry starts, both count into the same metrics, and they stay until the last one closes", async () => {
    const registry = new Registry();
    const first = await service(registry);
    const names = libraryMetricNames(registry);
    expect(names).to.include(REQUESTS);
    const second = await service(registry);
    expect(libraryMetricNames(registry)).to.deep.equal(names);

    expect(await first.getTokenForHost("nobody", HOST)).to.equal(undefined);
    expect(await second.getTokenForHost("nobody", HOST)).to.equal(undefined);
    expect(await noTokenCount(registry)).to.equal(2);

    await first.close();
    expect(libraryMetricNames(registry), "the second service still uses them").to.deep.equal(names);
    expect(await second.getTokenForHost("nobody", HOST)).to.equal(undefined);
    expect(await noTokenCount(registry)).to.equal(3);

    await second.close();
    expect(libraryMetricNames(registry)).to.deep.equal([]);
    await second.close(); // idempotent: nothing to take off twice
    const third = await service(registry); // the registry is usable again
    expect(libraryMetricNames(registry)).to.deep.equal(names);
    await third.close();
  });

  it("close() of the only service takes its metrics off the registry and leaves the application's own metrics", async () => {
    const registry = new Registry();
    new Counter({ name: "app_requests_total", help: "the application's", registers: [registry] });
    const only = await service(registry);
    expect(libraryMetricNames(registry)).to.not.deep.equal([]);
    await only.close();
    expect(registry.getMetricsAsArray().map((m) => m.name)).to.deep.equal(["app_requests_total"]);
  });

  it("a name taken by a different metric (other labels) is a ConfigurationError naming it; nothing of the library stays registered", async () => {
    const registry = new Registry();
    new Counter({ name: "scm_token_handout_wait_seconds", help: "something else", labelNames: ["tenant"], registers: [registry] });
    let error: unknown;
    try {
      await service(registry);
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(ConfigurationError);
    expect((error as Error).message).to.include('"scm_token_handout_wait_seconds"').and.include("metricsPrefix");
    expect(registry.getMetricsAsArray().map((m) => m.name)).to.deep.equal(["scm_token_handout_wait_seconds"]);
  });

  it("a compatible metric the application registered itself is used, and never removed by close()", async () => {
    const registry = new Registry();
    const own = new Counter({ name: REQUESTS, help: "registered by the application", labelNames: ["host", "result", "opportunisticRefresh"], registers: [registry] });
    const s = await service(registry);
    expect(await s.getTokenForHost("nobody", HOST)).to.equal(undefined);
    expect(await noTokenCount(registry)).to.equal(1);
    await s.close();
    expect(registry.getSingleMetric(REQUESTS)).to.equal(own);
    expect(libraryMetricNames(registry)).to.deep.equal([REQUESTS]);
  });

  it("a failed start (unusable database) leaves nothing on the registry", async () => {
    const registry = new Registry();
    let error: unknown;
    try {
      await service(registry, "sqljs:/proc/scm-token-service-test/tokens.sqlite");
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(ConfigurationError);
    expect(libraryMetricNames(registry)).to.deep.equal([]);
  });

  it("a TokenService from tokenServiceModule (inversify) shares the registry with a createTokenService one; its close() takes off what it alone used", async () => {
    const registry = new Registry();
    const dataSource = await openTestDataSource("sqljs");
    try {
      const container = new Container({ defaultScope: "Singleton" });
      container.load(
        tokenServiceModule({
          dataSource,
          providers: [new BitbucketServerProvider({ host: HOST, baseUrl: "http://127.0.0.1:9", clientId: "c", clientSecret: "s" })],
          encryptionKeys: [{ id: "k", key: Buffer.alloc(32, 4).toString("base64") }],
          metricsRegistry: registry,
        }),
      );
      const fromContainer = container.get(TokenService);
      const standalone = await service(registry);
      await standalone.close();
      expect(libraryMetricNames(registry)).to.include(REQUESTS);
      await fromContainer.close();
      expect(libraryMetricNames(registry)).to.deep.equal([]);
    } finally {
      await closeDataSource(dataSource);
    }
  });

  it("createTestTokenService honours serviceOptions.metricsRegistry; two test services share it; close() takes the metrics off", async () => {
    const registry = new Registry();
    const a = await createTestTokenService({ serviceOptions: { metricsRegistry: registry } });
    const b = await createTestTokenService({ serviceOptions: { metricsRegistry: registry } });
    try {
      expect(a.registry).to.equal(registry);
      expect(a.service.metricsRegistry).to.equal(registry);
      expect(await a.service.getTokenForHost("nobody", a.host)).to.equal(undefined);
      expect(await b.service.getTokenForHost("nobody", b.host)).to.equal(undefined);
      expect(await noTokenCount(registry)).to.equal(2);
      expect(await a.metricsText()).to.include(REQUESTS);
    } finally {
      await a.close();
      await b.close();
    }
    expect(libraryMetricNames(registry)).to.deep.equal([]);
  });
});
