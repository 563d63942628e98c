import { expect } from "chai";
import type { DataSource } from "typeorm";
import { createTokenService } from "../../src/create-token-service";
import { ReauthorizationRequiredError } from "../../src/errors";
import type { EncryptionKey } from "../../src/crypto/key-ring";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { FakeScmServer, type IssuedTokens } from "../../src/testing/fake-scm";
import type { TokenService } from "../../src/token-service";
import { closeDataSource, openTestDataSource, runDatabaseUrl, serverKinds } from "../support/databases";
import { uniqueUser } from "../support/service-fixture";
import { CLIENT, HOST, RowReader, eventually, newEncryptionKey, refreshTokenStatus, settle, tokenHash } from "./harness";
import type { CallResult, CallSpec, ReplicaConfig } from "./protocol";
import { killReplicas, nextRound, runRound, startReplicas, startRound, type Replica } from "./replicas";

/**
 * DESIGN.md invariants 4 and 5 across real processes: 4 replica processes (replica-worker.ts), each with
 * its own TokenService, connection pool and real clock, share this run's MariaDB database; the fake SCM
 * runs here, in the mocha process, and counts what really reached it.
 */

const REPLICAS = 4;
const CALLERS_PER_REPLICA = 25;
const ROUNDS = 20;
/** Rounds of the slow-opportunistic-refresh test (each holds the lease for 2 s), and its callers per process. */
const REUSE_ROUNDS = 2;
const REUSERS_PER_REPLICA = 3;

function summarize(results: CallResult[]): string {
  const counts = new Map<string, number>();
  for (const r of results) {
    const key = r.ok ? `token ${r.tokenHash}` : `${r.name}${r.reason ? `(${r.reason})` : ""}: ${r.message}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${n}× ${k}`).join("; ");
}


/** Retry settings whose budget fits a 1.5 s lease. */
const SHORT_LEASE_RETRY = { maxAttempts: 2, timeoutMs: 300, maxDelayMs: 100, baseDelayMs: 10 };

for (const server of serverKinds()) describe(`concurrency: replicas in separate processes share one database (${server})`, function () {
  this.timeout(60_000);
  let key: EncryptionKey;
  let dataSource: DataSource | undefined;
  let rows: RowReader;
  let replicas: Replica[] = [];
  const servers: FakeScmServer[] = [];

  before(async function () {
    key = newEncryptionKey();
    dataSource = await openTestDataSource(server); // creates and migrates the run's database first
    rows = new RowReader(dataSource, key);
    replicas = await startReplicas(REPLICAS, key.key);
  });

  after(async () => {
    await killReplicas(replicas);
    await Promise.all(servers.map((s) => s.close()));
    if (dataSource) await closeDataSource(dataSource);
  });

  async function startScm(...args: Parameters<typeof FakeScmServer.start>): Promise<FakeScmServer> {
    const scm = await FakeScmServer.start(...args);
    servers.push(scm);
    return scm;
  }

  /** A service in this process on the same database and key (stores tokens; plays one more replica). */
  function localService(scm: FakeScmServer, lease?: ReplicaConfig["lease"]): Promise<TokenService> {
    return createTokenService({
      dataSource: dataSource!,
      providers: [new BitbucketServerProvider({ host: HOST, baseUrl: scm.baseUrl, ...CLIENT })],
      encryptionKeys: [key],
      lease,
      retry: lease?.leaseMs ? SHORT_LEASE_RETRY : undefined,
    });
  }

  async function seed(service: TokenService, scm: FakeScmServer, userId: string, expiresInMs: number): Promise<IssuedTokens> {
    const issued = scm.issueTokens({ userId });
    // The library believes the token expires in `expiresInMs` (the SCM would accept it longer).
    await service.storeToken(userId, HOST, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: new Date(Date.now() + expiresInMs), scopes: issued.scopes });
    return issued;
  }

  describe(`one refresh for ${REPLICAS} processes × ${CALLERS_PER_REPLICA} concurrent callers, ${ROUNDS} rounds`, () => {
    let scm: FakeScmServer;
    let seeder: TokenService;

    before(async () => {
      scm = await startScm({ profile: "bitbucket_dc" });
      scm.setLatency(30); // widen the race window: the refresh is in flight for at least 30 ms
      const config: ReplicaConfig = { databaseUrl: runDatabaseUrl(server), scmBaseUrl: scm.baseUrl, host: HOST, lease: { waitForOtherMs: 10_000 }, retry: { timeoutMs: 5_000 } };
      await Promise.all(replicas.map((r) => r.configure(config)));
      seeder = await localService(scm);
    });

    /** Runs ROUNDS rounds; each round a new user whose stored token needs a refresh. */
    async function rounds(expiresInMs: number, callsFor: (replica: number) => CallSpec[], check: (round: number, results: CallResult[], issued: IssuedTokens, userId: string) => Promise<void>): Promise<void> {
      for (let round = 0; round < ROUNDS; round++) {
        const userId = uniqueUser("mp");
        const issued = await seed(seeder, scm, userId, expiresInMs);
        scm.resetCounters();
        const results = (await runRound(replicas, userId, callsFor)).flat();
        expect(results, `round ${round}`).to.have.length(REPLICAS * CALLERS_PER_REPLICA);
        await check(round, results, issued, userId);
      }
    }

    /** Every caller got the token that is now stored, it is live at the SCM, and its refresh token too. */
    async function expectAllGotStoredToken(round: number, results: CallResult[], userId: string): Promise<string> {
      const failures = results.filter((r) => !r.ok);
      expect(failures.length, `round ${round}: ${summarize(results)}`).to.equal(0);
      const row = await rows.read(userId);
      const hashes = new Set(results.map((r) => (r.ok ? r.tokenHash : null)));
      expect([...hashes], `round ${round}: every caller gets the stored token (${summarize(results)})`).to.deep.equal([tokenHash(row.accessToken)]);
      expect(scm.isAccessTokenLive(row.accessToken), `round ${round}: handed-out token live at the SCM`).to.equal(true);
      expect(refreshTokenStatus(scm, row.refreshToken), `round ${round}: stored refresh token`).to.equal("active");
      expect(row.entry.refreshLeaseOwner, `round ${round}: lease released`).to.equal(undefined);
      return row.accessToken;
    }

    it("a forced refresh (stored expiry 2 min < requested 5 min): exactly one refresh at the SCM, every caller gets the same new token, no invalid_grant", async () => {
      await rounds(
        2 * 60_000,
        () => Array.from({ length: CALLERS_PER_REPLICA }, () => ({ lifetimeMinutes: 5, opportunistic: false })),
        async (round, results, issued, userId) => {
          const value = await expectAllGotStoredToken(round, results, userId);
          expect(value, `round ${round}`).to.not.equal(issued.accessToken);
          expect(scm.counters, `round ${round}`).to.include({ tokenRequests: 1, refreshSuccesses: 1, invalidGrants: 0, replays: 0, forks: 0 });
        },
      );
    });

    it("opportunistic callers (token within the 20-min horizon, unreserved) racing forced callers: still exactly one refresh, one token", async () => {
      await rounds(
        10 * 60_000,
        // Even callers: opportunistic refresh on, 5 minutes (the token covers them, but it is unreserved and within the horizon).
        // Odd callers: flag off, 15 minutes (the token cannot cover them: forced refresh).
        () => Array.from({ length: CALLERS_PER_REPLICA }, (_, i) => (i % 2 === 0 ? { lifetimeMinutes: 5, opportunistic: true } : { lifetimeMinutes: 15, opportunistic: false })),
        async (round, results, issued, userId) => {
          const value = await expectAllGotStoredToken(round, results, userId);
          expect(value, `round ${round}`).to.not.equal(issued.accessToken);
          expect(scm.counters, `round ${round}`).to.include({ tokenRequests: 1, refreshSuccesses: 1, invalidGrants: 0, replays: 0, forks: 0 });
        },
      );
    });

    it("callers that only need to reuse the token, while another process holds the lease for a slow opportunistic refresh (SCM answers in 2 s): they wait for it and all get the new token", async () => {
      // Phase 1: one opportunistic caller in one process takes the lease (the token is unreserved and
      // within the horizon) and waits 2 s for the SCM. Phase 2, once the lease is visible in the row:
      // every process fires callers whose token still covers them (flag off: plain reuse). They cannot
      // reserve the old token (it is about to be revoked), so they must wait for the new one.
      // Few callers here on purpose: with 25 per process on this test's 2-CPU machines, the callers slow
      // each other down so much that a caller that busy-loops instead of waiting may not be caught.
      scm.setLatency(2_000);
      try {
        for (let round = 0; round < REUSE_ROUNDS; round++) {
          const userId = uniqueUser("mp-reuse");
          const issued = await seed(seeder, scm, userId, 10 * 60_000);
          scm.resetCounters();
          const refresher = await startRound([replicas[0]!], userId, () => [{ lifetimeMinutes: 5, opportunistic: true }]);
          await eventually("the opportunistic refresh to hold the lease", async () => ((await rows.read(userId)).entry.refreshLeaseOwner && scm.counters.tokenRequests === 1 ? true : undefined));
          const reusers = await startRound(replicas, userId, () => Array.from({ length: REUSERS_PER_REPLICA }, () => ({ lifetimeMinutes: 5, opportunistic: false })));
          const results = [...(await refresher.results).flat(), ...(await reusers.results).flat()];
          const value = await expectAllGotStoredToken(round, results, userId);
          expect(value, `round ${round}: the refresh happened`).to.not.equal(issued.accessToken);
          expect(scm.counters, `round ${round}`).to.include({ tokenRequests: 1, refreshSuccesses: 1, invalidGrants: 0, replays: 0 });
        }
      } finally {
        scm.setLatency(30);
      }
    });
  });

  describe("the lease holder is SIGKILLed after the SCM committed the rotation and before the store commit", () => {
    const LEASE_MS = 1_500;
    // A lease must outlive the retry budget (createTokenService checks it): 2 × 300 ms + 100 ms < 1.5 s.
    const CALL: CallSpec = { lifetimeMinutes: 5, opportunistic: false };

    function aliveReplicas(needed: number): Replica[] {
      const alive = replicas.filter((r) => r.alive);
      if (alive.length < needed) throw new Error(`need ${needed} live replicas, have ${alive.length}`);
      return alive.slice(0, needed);
    }

    /** Starts one call on `victim`, holds its refresh at the SCM after the commit, SIGKILLs it, then lets the SCM answer into the void. */
    async function killHolderMidRefresh(scm: FakeScmServer, victim: Replica, userId: string): Promise<Date> {
      const held = scm.pauseAt("afterCommit");
      const round = nextRound();
      victim.send({ type: "arm", round, userId, calls: [CALL] });
      await victim.next("armed", 10_000, (m) => m.round === round);
      victim.send({ type: "go", round });
      await Promise.race([held.reached, victim.exited.then(() => Promise.reject(new Error("victim died before reaching the SCM")))]);
      expect(scm.counters.refreshSuccesses, "the SCM committed the rotation").to.equal(1);
      const leased = await rows.read(userId);
      expect(leased.entry.refreshLeaseOwner, "the victim holds the lease").to.be.a("string");
      expect(leased.entry.refreshLeaseUntil!.getTime()).to.be.greaterThan(Date.now());
      await victim.kill();
      held.release(); // the SCM now answers on a socket whose client is dead
      return leased.entry.refreshLeaseUntil!;
    }

    it("rotating SCM (bitbucket_dc): the next replica takes the lease over only after it expired, gets ReauthorizationRequiredError(lost_rotation); the entry is marked and later calls fail fast without calling the SCM", async () => {
      const scm = await startScm({ profile: "bitbucket_dc" });
      const [victim, heir, bystander] = aliveReplicas(3);
      const config: ReplicaConfig = { databaseUrl: runDatabaseUrl(server), scmBaseUrl: scm.baseUrl, host: HOST, lease: { leaseMs: LEASE_MS, waitForOtherMs: 10_000 }, retry: SHORT_LEASE_RETRY };
      await Promise.all([victim, heir, bystander].map((r) => r.configure(config)));
      const local = await localService(scm, { leaseMs: LEASE_MS, waitForOtherMs: 10_000 });
      const userId = uniqueUser("kill-rot");
      const issued = await seed(local, scm, userId, 2 * 60_000);

      const leaseUntil = await killHolderMidRefresh(scm, victim, userId);
      expect(scm.isAccessTokenLive(issued.accessToken), "the rotation revoked the stored access token").to.equal(false);
      expect(refreshTokenStatus(scm, issued.refreshToken), "and used up the stored refresh token").to.equal("rotated");

      const [[taken]] = await runRound([heir], userId, () => [CALL]);
      expect(taken, JSON.stringify(taken)).to.include({ ok: false, name: "ReauthorizationRequiredError", reason: "lost_rotation" });
      expect(taken.finishedAt, "took over only after the lease expired").to.be.at.least(leaseUntil.getTime());
      expect(scm.counters).to.include({ tokenRequests: 2, refreshSuccesses: 1, invalidGrants: 1, forks: 0 });

      const marked = await rows.read(userId);
      expect(marked.entry.reauthorizationReason).to.equal("lost_rotation");
      expect(marked.entry.refreshLeaseOwner, "lease cleared").to.equal(undefined);
      expect(marked.refreshToken, "the stored refresh token is kept (not erased)").to.equal(issued.refreshToken);

      const [later] = await runRound([bystander], userId, () => Array.from({ length: 5 }, () => CALL));
      for (const r of later) expect(r, JSON.stringify(r)).to.include({ ok: false, name: "ReauthorizationRequiredError", reason: "marked", oauthError: "lost_rotation" });
      const here = await settle(local.getTokenForHost(userId, HOST));
      expect(here.ok).to.equal(false);
      expect((here as { error: unknown }).error).to.be.instanceOf(ReauthorizationRequiredError).with.property("reason", "marked");
      expect(scm.counters.tokenRequests, "marked entries fail fast: no further SCM calls").to.equal(2);
    });

    it("non-rotating SCM (keeps_old_access_tokens, rotateRefreshToken: false): the next replica takes over after expiry and hands out a fresh token", async () => {
      const scm = await startScm({ profile: "keeps_old_access_tokens", overrides: { rotateRefreshToken: false, tokenPath: "/rest/oauth2/latest/token" } });
      const [victim, heir] = aliveReplicas(2);
      const config: ReplicaConfig = { databaseUrl: runDatabaseUrl(server), scmBaseUrl: scm.baseUrl, host: HOST, lease: { leaseMs: LEASE_MS, waitForOtherMs: 10_000 }, retry: SHORT_LEASE_RETRY };
      await Promise.all([victim, heir].map((r) => r.configure(config)));
      const local = await localService(scm);
      const userId = uniqueUser("kill-keep");
      const issued = await seed(local, scm, userId, 2 * 60_000);

      const leaseUntil = await killHolderMidRefresh(scm, victim, userId);
      expect(refreshTokenStatus(scm, issued.refreshToken), "a non-rotating SCM keeps the refresh token usable").to.equal("active");

      const [taken] = await runRound([heir], userId, () => [CALL, CALL, CALL]);
      const row = await rows.read(userId);
      for (const r of taken) {
        expect(r, JSON.stringify(r)).to.include({ ok: true, tokenHash: tokenHash(row.accessToken) });
        expect(r.finishedAt, "took over only after the lease expired").to.be.at.least(leaseUntil.getTime());
      }
      expect(row.accessToken).to.not.equal(issued.accessToken);
      expect(scm.isAccessTokenLive(row.accessToken)).to.equal(true);
      expect(row.refreshToken).to.equal(issued.refreshToken);
      expect(row.entry.reauthorizationReason).to.equal(undefined);
      expect(row.entry.refreshLeaseOwner).to.equal(undefined);
      // The lost refresh and the one take-over refresh; nothing else.
      expect(scm.counters).to.include({ tokenRequests: 2, refreshSuccesses: 2, invalidGrants: 0 });
    });
  });
});
