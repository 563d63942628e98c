import { expect } from "chai";
import type { DataSource } from "typeorm";
import { createTokenService } from "../../src/create-token-service";
import type { EncryptionKey } from "../../src/crypto/key-ring";
import { KeyRing } from "../../src/crypto/key-ring";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { RefreshRejectedError, type ScmProvider } from "../../src/providers/scm-provider";
import { FakeClock } from "../../src/testing/fake-clock";
import { FakeScmServer } from "../../src/testing/fake-scm";
import { RecordingLogger } from "../../src/testing/recording-logger";
import { TokenCrypto } from "../../src/token-crypto";
import type { TokenService } from "../../src/token-service";
import { closeDataSource, dbKinds, openTestDataSource, rawQuery } from "../support/databases";
import { uniqueUser } from "../support/service-fixture";
import { CLIENT, HOST, RowReader, describeError, eventually, newEncryptionKey, refreshTokenStatus, settle } from "./harness";

/**
 * Two replicas in this process: two TokenService instances (each with its own coordinator, so its own
 * in-process single-flight) on one database. On MariaDB each replica has its own DataSource and pool;
 * the embedded database cannot be shared between DataSources, so there both services share one.
 */

interface Replica {
  service: TokenService;
  flags: StaticFeatureFlags;
  logger: RecordingLogger;
}

interface Pair {
  a: Replica;
  b: Replica;
  scm: FakeScmServer;
  clock: FakeClock;
  rows: RowReader;
  key: EncryptionKey;
  dataSource: DataSource;
  /** Mints a family at the fake SCM and stores it (through replica a). */
  connect(userId: string): Promise<{ accessToken: string; refreshToken?: string; expiresAt?: Date }>;
  close(): Promise<void>;
}

const T0 = "2026-01-01T00:00:00.000Z";

/** Wraps a provider so a test can hold a replica right after the SCM rejected its refresh token. */
class GatedProvider implements ScmProvider {
  readonly host: string;
  readonly requiresOpportunisticRefresh: boolean;
  /** Set by a test: awaited after the SCM rejected a refresh token, before the coordinator sees the rejection. */
  onRejected: (() => Promise<void>) | undefined;

  constructor(private readonly inner: ScmProvider) {
    this.host = inner.host;
    this.requiresOpportunisticRefresh = inner.requiresOpportunisticRefresh;
  }

  async refresh(...args: Parameters<ScmProvider["refresh"]>): ReturnType<ScmProvider["refresh"]> {
    try {
      return await this.inner.refresh(...args);
    } catch (e) {
      if (e instanceof RefreshRejectedError && this.onRejected) await this.onRejected();
      throw e;
    }
  }
}

/** A promise a test resolves by hand, and a signal that someone is waiting on it. */
function gate(): { reached: Promise<void>; wait: () => Promise<void>; release: () => void } {
  let arrive!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((r) => (arrive = r));
  const released = new Promise<void>((r) => (release = r));
  return {
    reached,
    wait: () => {
      arrive();
      return released;
    },
    release,
  };
}

for (const kind of dbKinds()) {
  describe(`concurrency: two replicas in one process on ${kind}`, function () {
    this.timeout(30_000);
    let pair: Pair | undefined;
    const gatedProviders: GatedProvider[] = [];
    afterEach(async () => {
      await pair?.close();
      pair = undefined;
      gatedProviders.length = 0;
    });

    async function openPair(options: { lease?: { leaseMs?: number; waitForOtherMs?: number }; flagsA?: Record<string, unknown>; flagsB?: Record<string, unknown> } = {}): Promise<Pair> {
      const clock = new FakeClock(T0);
      const scm = await FakeScmServer.start({ profile: "bitbucket_dc", clock });
      const key = newEncryptionKey();
      const sources: DataSource[] = kind !== "sqljs" ? [await openTestDataSource(kind, 5), await openTestDataSource(kind, 5)] : [await openTestDataSource("sqljs")];
      const replica = async (dataSource: DataSource, flagValues: Record<string, unknown> = {}): Promise<Replica> => {
        const provider = new GatedProvider(new BitbucketServerProvider({ host: HOST, baseUrl: scm.baseUrl, ...CLIENT }));
        gatedProviders.push(provider);
        const flags = new StaticFeatureFlags(flagValues);
        const logger = new RecordingLogger();
        const service = await createTokenService({
          dataSource,
          providers: [provider],
          encryptionKeys: [key],
          clock,
          flags,
          logger,
          retry: { baseDelayMs: 10, timeoutMs: 2_000, maxDelayMs: 1_000 }, // budget 8 s: fits the 10 s lease below
          lease: { waitForOtherMs: 5_000, ...options.lease },
        });
        return { service, flags, logger };
      };
      const a = await replica(sources[0]!, options.flagsA);
      const b = await replica(sources[sources.length - 1]!, options.flagsB);
      const created: Pair = {
        a,
        b,
        scm,
        clock,
        key,
        dataSource: sources[0]!,
        rows: new RowReader(sources[0]!, key),
        async connect(userId) {
          const issued = scm.issueTokens({ userId });
          await a.service.storeToken(userId, HOST, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt, scopes: issued.scopes });
          return issued;
        },
        async close() {
          await scm.close();
          for (const ds of sources) await closeDataSource(ds);
        },
      };
      pair = created;
      return created;
    }

    it("50 concurrent callers split across both replicas: one refresh at the SCM, one token for all (10 rounds)", async () => {
      const p = await openPair();
      p.scm.setLatency(30);
      for (let round = 0; round < 10; round++) {
        const userId = uniqueUser("xr");
        const issued = await p.connect(userId);
        p.clock.advanceMinutes(58); // 2 minutes left: a 5-minute request forces a refresh
        p.scm.resetCounters();
        const calls = Array.from({ length: 50 }, (_, i) => settle((i % 2 === 0 ? p.a : p.b).service.getTokenForHost(userId, HOST)));
        const results = await Promise.all(calls);
        const failures = results.filter((r) => !r.ok).map((r) => describeError((r as { error: unknown }).error));
        expect(failures, `round ${round}`).to.deep.equal([]);
        const row = await p.rows.read(userId);
        const values = new Set(results.map((r) => (r.ok ? r.value?.value : undefined)));
        expect([...values].length, `round ${round}: one token`).to.equal(1);
        expect(values.has(row.accessToken), `round ${round}: the stored one`).to.equal(true);
        expect(row.accessToken).to.not.equal(issued.accessToken);
        expect(p.scm.isAccessTokenLive(row.accessToken)).to.equal(true);
        expect(refreshTokenStatus(p.scm, row.refreshToken)).to.equal("active");
        expect(p.scm.counters, `round ${round}`).to.include({ tokenRequests: 1, refreshSuccesses: 1, invalidGrants: 0 });
      }
    });

    it("while one replica's refresh is held at the SCM, every caller on both replicas waits (none fails, no second request), then all get its token", async () => {
      const p = await openPair();
      const userId = uniqueUser("xr-held");
      await p.connect(userId);
      p.clock.advanceMinutes(58);
      const held = p.scm.pauseAt("afterValidate");
      let settled = 0;
      const calls = Array.from({ length: 50 }, (_, i) =>
        settle((i % 2 === 0 ? p.a : p.b).service.getTokenForHost(userId, HOST)).finally(() => {
          settled++;
        }),
      );
      await held.reached;
      // Wait (bounded) until both replicas' losers have had time to find the lease: the row shows it.
      const leased = await eventually("the lease in the row", async () => (await p.rows.read(userId)).entry.refreshLeaseOwner);
      expect(leased).to.be.a("string");
      expect(settled, "nobody gave up or got a token while the refresh is in flight").to.equal(0);
      expect(p.scm.counters.tokenRequests, "one request in flight").to.equal(1);
      held.release();
      const results = await Promise.all(calls);
      const row = await p.rows.read(userId);
      for (const r of results) expect(r.ok && r.value?.value === row.accessToken, r.ok ? "other token" : describeError((r as { error: unknown }).error)).to.equal(true);
      expect(p.scm.counters).to.include({ tokenRequests: 1, refreshSuccesses: 1, invalidGrants: 0 });
    });

    it("a caller that only needs to reuse the token waits for the other replica's opportunistic refresh (SCM answers in 1 s) instead of failing", async () => {
      // Replica a: opportunistic refresh on. Replica b: off, so its callers simply reuse a token that covers them.
      const p = await openPair({ flagsA: { opportunisticRefresh: true }, flagsB: { opportunisticRefresh: false } });
      const userId = uniqueUser("xr-reuse");
      const issued = await p.connect(userId);
      p.clock.advanceMinutes(48); // 12 minutes left: within a 5-minute hand-out's 13-minute horizon, unreserved
      p.scm.setLatency(1_000);
      const refreshing = settle(p.a.service.getTokenForHost(userId, HOST));
      await eventually("the opportunistic refresh to hold the lease", async () => ((await p.rows.read(userId)).entry.refreshLeaseOwner && p.scm.counters.tokenRequests === 1 ? true : undefined));
      const reusing = await settle(p.b.service.getTokenForHost(userId, HOST, { lifetimeMinutes: 5 }));
      const refreshed = await refreshing;
      expect(refreshed.ok, refreshed.ok ? "" : describeError((refreshed as { error: unknown }).error)).to.equal(true);
      expect(reusing.ok, reusing.ok ? "" : `${describeError((reusing as { error: unknown }).error)}: ${((reusing as { error: Error }).error).message}`).to.equal(true);
      const row = await p.rows.read(userId);
      expect(row.accessToken).to.not.equal(issued.accessToken);
      expect((reusing as { value: { value: string } }).value.value, "the reuse caller gets the new token, not the revoked one").to.equal(row.accessToken);
      expect(p.scm.counters).to.include({ tokenRequests: 1, refreshSuccesses: 1 });
    });

    it("a stale writer never overwrites a newer token: every conditional write with an old version is refused and leaves the row as it was", async () => {
      const p = await openPair();
      const userId = uniqueUser("xr-stale");
      await p.connect(userId);
      const stale = (await p.rows.read(userId)).entry; // replica a's view: version 1
      p.clock.advanceMinutes(58);
      const fresh = await p.b.service.getTokenForHost(userId, HOST); // replica b refreshes: version 2
      const before = await rawQuery(p.dataSource, "SELECT * FROM scm_token_entry WHERE id = ?", [stale.id]);
      expect(before[0].version).to.equal(stale.version + 1);

      const crypto = new TokenCrypto(new KeyRing([p.key]));
      const now = p.clock.now();
      const store = p.rows.store;
      const later = new Date(now.getTime() + 3_600_000);
      expect(
        await store.commitRefresh(
          stale.id,
          stale.version,
          {
            accessTokenCiphertext: crypto.encrypt("access", userId, HOST, "stale-access-token"),
            refreshTokenCiphertext: crypto.encrypt("refresh", userId, HOST, "stale-refresh-token"),
            scopes: ["REPO_READ"],
            expiryDate: later,
            reservedUntilDate: later,
          },
          now,
        ),
        "commitRefresh",
      ).to.equal(false);
      expect(await store.reserve(stale.id, stale.version, later, now, { pin: true, duringDrain: false }), "reserve").to.equal(false);
      expect(await store.reserve(stale.id, stale.version, later, now, { pin: true, duringDrain: true }), "reserve during a drain").to.equal(false);
      expect(await store.reserve(stale.id, stale.version, later, now, { pin: false, duringDrain: false }), "reserve the row for 0.1 replicas").to.equal(false);
      expect(await store.insertHold(stale.id, stale.version, later, now, { duringDrain: false }), "insertHold").to.equal(undefined);
      expect(await store.insertHold(stale.id, stale.version, later, now, { duringDrain: true }), "insertHold during a drain").to.equal(undefined);
      expect(await store.takeLease(stale.id, stale.version, "stale-owner", later, now), "takeLease").to.equal(false);
      expect(await store.markDraining(stale.id, stale.version, now), "markDraining").to.equal(false);
      expect(await store.markReauthorizationRequired(stale.id, stale.version, "invalid_grant"), "markReauthorizationRequired").to.equal(false);

      const after = await rawQuery(p.dataSource, "SELECT * FROM scm_token_entry WHERE id = ?", [stale.id]);
      expect(after).to.deep.equal(before);
      const again = await p.a.service.getTokenForHost(userId, HOST);
      expect(again!.value).to.equal(fresh!.value);
    });

    it("a user who re-authorises (storeToken on replica b) while replica a's refresh is in flight keeps the new authorisation; a's refreshed token is discarded", async () => {
      const p = await openPair();
      const userId = uniqueUser("xr-reauth");
      await p.connect(userId);
      p.clock.advanceMinutes(58);
      const held = p.scm.pauseAt("afterValidate");
      const refreshing = settle(p.a.service.getTokenForHost(userId, HOST));
      await held.reached;
      const reauthorised = p.scm.issueTokens({ userId }); // a new authorization-code flow: a new family
      await p.b.service.storeToken(userId, HOST, { value: reauthorised.accessToken, refreshToken: reauthorised.refreshToken, expiryDate: reauthorised.expiresAt, scopes: reauthorised.scopes });
      held.release();
      const result = await refreshing;
      expect(result.ok, result.ok ? "" : describeError((result as { error: unknown }).error)).to.equal(true);
      expect((result as { value: { value: string } }).value.value).to.equal(reauthorised.accessToken);
      const row = await p.rows.read(userId);
      expect(row.accessToken).to.equal(reauthorised.accessToken);
      expect(row.refreshToken).to.equal(reauthorised.refreshToken);
      expect(row.entry.reauthorizationReason).to.equal(undefined);
      expect(p.a.logger.find("Refreshed token discarded: the entry changed while refreshing (a newer token was stored)")).to.not.equal(undefined);
    });

    it("invalid_grant is believed only after re-reading: a replica that took over an expired lease and lost the rotation to the (slow, still alive) holder uses the holder's token", async () => {
      const p = await openPair({ lease: { leaseMs: 10_000 } });
      const userId = uniqueUser("xr-reread");
      await p.connect(userId);
      p.clock.advanceMinutes(58);
      // Replica a's refresh: the SCM commits the rotation, then its response is held.
      const heldA = p.scm.pauseAt("afterCommit");
      const callA = settle(p.a.service.getTokenForHost(userId, HOST));
      await heldA.reached;
      // a's lease expires (by the shared clock); b presumes a dead, takes the lease over and sends the old
      // refresh token: invalid_grant. b is held right after the rejection, before it looks at the row.
      p.clock.advance(11_000);
      const rejectedB = gate();
      gatedProviders[1]!.onRejected = rejectedB.wait;
      const callB = settle(p.b.service.getTokenForHost(userId, HOST));
      await rejectedB.reached;
      expect(p.scm.counters).to.include({ tokenRequests: 2, refreshSuccesses: 1, invalidGrants: 1 });
      // a's response arrives and a commits; only then does b look at the row.
      heldA.release();
      const resultA = await callA;
      expect(resultA.ok, resultA.ok ? "" : describeError((resultA as { error: unknown }).error)).to.equal(true);
      rejectedB.release();
      const resultB = await callB;
      expect(resultB.ok, resultB.ok ? "" : describeError((resultB as { error: unknown }).error)).to.equal(true);
      const row = await p.rows.read(userId);
      expect((resultA as { value: { value: string } }).value.value).to.equal(row.accessToken);
      expect((resultB as { value: { value: string } }).value.value, "b uses the sibling's token").to.equal(row.accessToken);
      expect(row.entry.reauthorizationReason, "not marked").to.equal(undefined);
      expect(refreshTokenStatus(p.scm, row.refreshToken)).to.equal("active");
    });
  });
}
