import { expect } from "chai";
import { Registry } from "prom-client";
import { DataSource } from "typeorm";
import { createTokenService } from "../../src/create-token-service";
import { StorageError } from "../../src/errors";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import type { RefreshContext, RefreshedToken, ScmProvider } from "../../src/providers/scm-provider";
import { dataSourceOptionsFromUrl } from "../../src/storage/data-source";
import { DbFaultProxy } from "../../src/testing/db-fault-proxy";
import { FakeClock } from "../../src/testing/fake-clock";
import { FakeScmServer } from "../../src/testing/fake-scm";
import { RecordingLogger } from "../../src/testing/recording-logger";
import type { TokenService } from "../../src/token-service";
import { CLIENT, HOST, RowReader, describeError, newEncryptionKey, settle } from "../concurrency/harness";
import { closeDataSource, openTestDataSource, runDatabaseUrl, serverKinds, type ServerKind } from "../support/databases";
import { uniqueUser } from "../support/service-fixture";

/**
 * A token the SCM just rotated is never dropped because of a database hiccup: the SCM commits a
 * rotation, then the database is unreachable for longer than the caller waits. The caller gets a
 * transient StorageError; the service keeps storing the new tokens in the background while its
 * refresh lease lasts, so the next call gets them — even after the lease has expired — and the user
 * never has to re-authorise. Real outages (the fake clock does not move sockets), kept short.
 */

const LEASE_MS = 60_000;

/** Runs `hook` once, right after the SCM's first answer reached the service. */
class HookedProvider implements ScmProvider {
  readonly host: string;
  readonly requiresOpportunisticRefresh: boolean;
  afterAnswer: (() => void) | undefined;
  constructor(private readonly inner: ScmProvider) {
    this.host = inner.host;
    this.requiresOpportunisticRefresh = inner.requiresOpportunisticRefresh;
  }
  async refresh(refreshToken: string, context: RefreshContext): Promise<RefreshedToken> {
    const result = await settle(this.inner.refresh(refreshToken, context));
    const hook = this.afterAnswer;
    this.afterAnswer = undefined;
    hook?.();
    if (!result.ok) throw result.error;
    return result.value;
  }
}

interface Rig {
  service: TokenService;
  scm: FakeScmServer;
  clock: FakeClock;
  proxy: DbFaultProxy;
  provider: HookedProvider;
  logger: RecordingLogger;
  registry: Registry;
  rows: RowReader;
  userId: string;
  close(): Promise<void>;
}

async function rig(statementTimeoutMs: number, server: ServerKind): Promise<Rig> {
  await closeDataSource(await openTestDataSource(server, 1)); // makes sure the run's database exists
  const clock = new FakeClock("2026-01-01T00:00:00.000Z");
  const scm = await FakeScmServer.start({ profile: "bitbucket_dc", clock });
  const proxy = await DbFaultProxy.start({ target: runDatabaseUrl(server) });
  const dataSource = new DataSource(dataSourceOptionsFromUrl(proxy.url, { poolSize: 2 }));
  await dataSource.initialize();
  const key = newEncryptionKey();
  const provider = new HookedProvider(new BitbucketServerProvider({ host: HOST, baseUrl: scm.baseUrl, ...CLIENT }));
  const logger = new RecordingLogger();
  const registry = new Registry();
  const service = await createTokenService({
    dataSource,
    providers: [provider],
    encryptionKeys: [key],
    clock,
    logger,
    metricsRegistry: registry,
    retry: { baseDelayMs: 10, timeoutMs: 500 },
    lease: { leaseMs: LEASE_MS, waitForOtherMs: 2_000 },
    statementTimeoutMs,
  });
  const userId = uniqueUser("outage");
  const issued = scm.issueTokens({ userId });
  await service.storeToken(userId, HOST, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt, scopes: issued.scopes });
  clock.advanceMinutes(58); // 2 minutes left: a 5-minute request forces a refresh
  scm.resetCounters();
  return {
    service, scm, clock, proxy, provider, logger, registry, userId,
    rows: new RowReader(dataSource, key),
    async close() {
      proxy.pass();
      await service.close({ pendingCommitsTimeoutMs: 1_000 });
      await scm.close();
      await dataSource.destroy().catch(() => undefined);
      await proxy.close();
    },
  };
}

async function backgroundCommits(registry: Registry, result: string): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === "scm_token_background_commits_total");
  return (metric?.values ?? []).filter((v) => v.labels.result === result).reduce((n, v) => n + v.value, 0);
}

for (const server of serverKinds()) describe(`trust: a rotation survives a database outage (${server} behind a fault proxy)`, function () {
  this.timeout(30_000);

  it("a 3 s outage right after the SCM rotated: the caller gets a transient StorageError, the rotation is stored in the background, the next call gets it", async () => {
    const r = await rig(1_000, server);
    try {
      r.provider.afterAnswer = () => r.proxy.cut(3_000);
      const started = Date.now();
      const main = await settle(r.service.getTokenForHost(r.userId, HOST));
      const answeredMs = Date.now() - started;
      expect(main.ok).to.equal(false);
      expect(main.ok ? undefined : main.error).to.be.instanceOf(StorageError);
      expect((main as { error: StorageError }).error.transient).to.equal(true);
      expect(answeredMs, "the caller is answered long before the outage ends").to.be.below(2_500);
      expect(r.scm.counters.refreshSuccesses).to.equal(1);

      await r.proxy.passing();
      expect(await r.service.flushPendingCommits(10_000)).to.equal(0);
      const storedAfterMs = Date.now() - started;

      // Even once the lease has long expired, the next call finds the new token: no re-authorisation.
      r.clock.advance(LEASE_MS + 1_000);
      const next = await settle(r.service.getTokenForHost(r.userId, HOST));
      expect(next.ok, next.ok ? "" : describeError(next.error)).to.equal(true);
      expect(r.scm.isAccessTokenLive((next as { value: { value: string } }).value.value)).to.equal(true);
      expect(r.scm.counters.refreshSuccesses, "no second rotation").to.equal(1);

      expect(await backgroundCommits(r.registry, "stored")).to.equal(1);
      expect(storedAfterMs, "stored within ~2 s of the database's return").to.be.below(3_000 + 2_500);
      const stored = await r.rows.read(r.userId);
      expect(r.scm.isAccessTokenLive(stored.accessToken), "the stored access token is the SCM's new one").to.equal(true);
      expect(r.scm.refreshTokenStatus(stored.refreshToken!)).to.equal("active");

      const log = r.logger.text();
      expect(log).not.to.include(stored.accessToken);
      expect(log).not.to.include(stored.refreshToken!);
      expect(r.logger.find("Stored the refreshed token in the background after a database failure")).to.not.equal(undefined);
    } finally {
      await r.close();
    }
  });

  it("hand-outs during the background commit wait for it (the lease) and get the new token", async () => {
    const r = await rig(1_000, server);
    try {
      r.provider.afterAnswer = () => r.proxy.cut(1_500);
      const main = await settle(r.service.getTokenForHost(r.userId, HOST));
      expect(main.ok).to.equal(false);
      await r.proxy.passing();
      // The database is back; the background commit may not have landed yet. A hand-out now waits for the lease.
      const next = await settle(r.service.getTokenForHost(r.userId, HOST));
      expect(next.ok, next.ok ? "" : describeError(next.error)).to.equal(true);
      expect(r.scm.isAccessTokenLive((next as { value: { value: string } }).value.value)).to.equal(true);
      expect(r.scm.counters.refreshSuccesses).to.equal(1);
    } finally {
      await r.close();
    }
  });

  it("a commit applied whose answer was lost (answers black-holed past the deadline) is recognised as stored, not discarded", async () => {
    const r = await rig(300, server);
    try {
      r.provider.afterAnswer = () => {
        r.proxy.blackHole({ answersOnly: true });
        setTimeout(() => r.proxy.pass(), 450);
      };
      const main = await settle(r.service.getTokenForHost(r.userId, HOST));
      expect(main.ok, main.ok ? "" : describeError(main.error)).to.equal(true);
      expect(r.scm.counters.refreshSuccesses).to.equal(1);
      expect(r.logger.find("Refreshed token discarded: the entry changed while refreshing (a newer token was stored)")).to.equal(undefined);
      expect(r.logger.find("Token refreshed"), "the refresh is reported as this call's").to.not.equal(undefined);
      const stored = await r.rows.read(r.userId);
      expect((main as { value: { value: string } }).value.value).to.equal(stored.accessToken);
    } finally {
      await r.close();
    }
  });

  it("an outage longer than the lease: the background commit gives up when the lease ends, with an error log and gave_up counted", async () => {
    const r = await rig(1_000, server);
    try {
      r.provider.afterAnswer = () => r.proxy.cut(); // until pass()
      const main = await settle(r.service.getTokenForHost(r.userId, HOST));
      expect(main.ok ? undefined : main.error).to.be.instanceOf(StorageError);
      r.clock.advance(LEASE_MS + 1_000); // the lease ends on the service's clock
      expect(await r.service.flushPendingCommits(5_000)).to.equal(0);
      expect(await backgroundCommits(r.registry, "gave_up")).to.equal(1);
      const gaveUp = r.logger.records.find((x) => x.level === "error" && x.message.startsWith("Gave up storing the refreshed token: the refresh lease ended"));
      expect(gaveUp?.fields).to.include({ host: HOST });
    } finally {
      await r.close();
    }
  });

  it("close() waits (bounded) for a background commit, so a graceful shutdown does not drop the rotation", async () => {
    const r = await rig(1_000, server);
    try {
      r.provider.afterAnswer = () => r.proxy.cut(2_000);
      const main = await settle(r.service.getTokenForHost(r.userId, HOST));
      expect(main.ok).to.equal(false);
      const closing = Date.now();
      await r.service.close({ pendingCommitsTimeoutMs: 10_000 });
      expect(Date.now() - closing).to.be.below(10_000);
      // (close() takes the service's metrics off the registry: the log tells.)
      expect(r.logger.find("Stored the refreshed token in the background after a database failure")).to.not.equal(undefined);
      const stored = await r.rows.read(r.userId);
      expect(r.scm.isAccessTokenLive(stored.accessToken)).to.equal(true);
    } finally {
      await r.close();
    }
  });
});
