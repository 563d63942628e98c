import { randomUUID } from "node:crypto";
import { expect } from "chai";
import type { DataSource } from "typeorm";
import { toSqlDate } from "../../src/storage/sql-values";
import { TokenStore, insertHoldSql, shareLockClause } from "../../src/storage/token-store";
import { createTestTokenService, type TestTokenService } from "../../src/testing/create-test-token-service";
import { closeDataSource, dbKinds, openRawConnection, openTestDataSource, type DbKind, type RawConnection, type ServerKind } from "../support/databases";
import { uniqueUser } from "../support/service-fixture";

/**
 * The hold protocol (src/hand-out-reservation.ts), one interleaving at a time. A releasable hand-out
 * is one INSERT … SELECT that reads the entry row with a shared row lock; a refresh that must not
 * break holders takes its lease with an UPDATE of that row and reads the holds once that UPDATE has
 * committed. The server tests hold one side's statement open in a transaction on a connection of
 * their own and check that the other side waits for it and then sees its write:
 * - a hold insert that meets an uncommitted lease waits, then inserts nothing;
 * - a lease that meets an uncommitted hold insert waits; the refresher then sees the hold, gives the
 *   lease back and hands out the current token.
 * On MariaDB each runs at the server's default isolation (REPEATABLE READ, where an INSERT … SELECT
 * locks the rows it reads anyway) and at READ COMMITTED (where only the lock clause does); PostgreSQL
 * runs at its default, READ COMMITTED. The hook test runs on every kind: a hold that got in between
 * the refresher's read of the holds and its lease.
 */

const MIN = 60_000;
/** One 20-minute horizon for every hand-out (margin off): the tests put the token 19 minutes from expiry. */
const HORIZON_DRAIN = { opportunisticRefresh: true, horizonMinutes: 20, drain: true, horizonMarginMinutes: 0 };
/** How long (real time) a statement must stay blocked to count as waiting for the other side's lock. */
const BLOCKED_MS = 300;

type Isolation = "server default" | "READ COMMITTED";

/** True when `promise` has not settled after `ms` of real time. */
async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setTimeout(resolve, ms));
  return !settled;
}

async function counter(t: TestTokenService, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = t.registry.getSingleMetric(name);
  if (!metric) return 0;
  return (await metric.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((sum, v) => sum + v.value, 0);
}

const READ_COMMITTED = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";

/** A service on a one-connection pool of this run's database (MariaDB at READ COMMITTED when asked), its store, and a user whose token has 19 minutes left: unreserved and within the horizon, so a hand-out refreshes it. */
async function setUp(kind: DbKind, isolation: Isolation): Promise<{ t: TestTokenService; ds: DataSource; store: TokenStore; user: string; stored: string }> {
  const ds = await openTestDataSource(kind, 1);
  // One connection: the session setting holds for every statement the service sends.
  if (isolation === "READ COMMITTED") {
    await ds.query(READ_COMMITTED);
    expect(await ds.query("SELECT @@tx_isolation AS level"), "the pool's one connection runs at READ COMMITTED").to.deep.equal([{ level: "READ-COMMITTED" }]);
  }
  const t = await createTestTokenService({ dataSource: ds, flags: HORIZON_DRAIN });
  const user = uniqueUser("hold-protocol");
  const start = t.clock.now().getTime();
  const issued = await t.connectUser(user);
  t.clock.set(start + 41 * MIN);
  return { t, ds, store: new TokenStore(ds), user, stored: issued.accessToken };
}

/** Records every statement the service's store sends from now on (whitespace-normalised). */
function recordStatements(t: TestTokenService): string[] {
  const store = (t.service as unknown as { store: TokenStore }).store;
  type Send = (operation: string, sql: string, params: unknown[]) => Promise<unknown>;
  const runner = (store as unknown as { sql: { rows: Send; affected: Send } }).sql;
  const sent: string[] = [];
  for (const method of ["rows", "affected"] as const) {
    const send = runner[method].bind(runner);
    runner[method] = (operation, sql, params) => {
      sent.push(normalize(sql));
      return send(operation, sql, params);
    };
  }
  return sent;
}

function normalize(sql: string): string {
  return sql.replace(/\s+/g, " ").trim();
}

async function rawConnection(kind: ServerKind, isolation: Isolation): Promise<RawConnection> {
  const raw = await openRawConnection(kind);
  if (isolation === "READ COMMITTED") {
    await raw.query(READ_COMMITTED);
    expect((await raw.query("SELECT @@tx_isolation AS level")).rows).to.deep.equal([{ level: "READ-COMMITTED" }]);
  }
  return raw;
}

for (const kind of dbKinds()) {
  const server = kind === "sqljs" ? undefined : kind;
  const isolations: Isolation[] = kind === "mariadb" ? ["server default", "READ COMMITTED"] : ["server default"];

  describe(`the hold protocol on ${kind}`, function () {
    this.timeout(20_000);
    let cleanUp: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const step of cleanUp.reverse()) await step().catch(() => undefined);
      cleanUp = [];
    });

    async function fixture(isolation: Isolation) {
      const f = await setUp(kind, isolation);
      cleanUp.push(async () => {
        await f.t.close();
        await closeDataSource(f.ds);
      });
      return f;
    }

    it("no hold is inserted while a refresh lease is live, nor during a drain; both are once they are gone", async () => {
      const { t, store, user } = await fixture("server default");
      const entry = (await store.find(user, t.host))!;
      const now = t.clock.now();
      const until = new Date(now.getTime() + 10 * MIN);
      expect(await store.takeLease(entry.id, entry.version, "refresher", new Date(now.getTime() + MIN), now)).to.equal(true);
      expect(await store.insertHold(entry.id, entry.version, until, now, { duringDrain: false }), "lease live").to.equal(undefined);
      expect(await store.insertHold(entry.id, entry.version, until, now, { duringDrain: true }), "lease live, during a drain").to.equal(undefined);
      await store.releaseLease(entry.id, "refresher");
      await store.markDraining(entry.id, entry.version, now);
      expect(await store.insertHold(entry.id, entry.version, until, now, { duringDrain: false }), "a drain began after the caller's read").to.equal(undefined);
      expect(await store.insertHold(entry.id, entry.version, until, now, { duringDrain: true }), "the caller read the drain").to.be.a("string");
      expect((await store.liveHolds(entry.id, entry.version, now)).count).to.equal(1);
    });

    it("a releasable hand-out sends the read and one INSERT … SELECT (with the dialect's shared lock); its release one DELETE", async () => {
      const { t, ds } = await fixture("server default");
      const user = uniqueUser("statements");
      await t.connectUser(user); // 60 minutes left: outside the horizon, nothing to refresh
      const sent = recordStatements(t);
      const read = `FROM scm_token_entry WHERE userId = ? AND host = ?`;
      const insert = normalize(insertHoldSql(shareLockClause(ds.options.type), false));
      expect(insert.endsWith({ sqljs: "drainingSince IS NULL", mariadb: "LOCK IN SHARE MODE", postgres: "FOR SHARE" }[kind])).to.equal(true);
      for (let i = 0; i < 2; i++) {
        const token = await t.service.getTokenForHost(user, t.host, { releasable: true });
        expect(sent.length, sent.join("\n")).to.equal(2);
        expect(sent[0]!.startsWith("SELECT ") && sent[0]!.endsWith(read), sent[0]).to.equal(true);
        expect(sent[1]).to.equal(insert);
        sent.length = 0;
        expect(await t.service.releaseReservation(token!)).to.equal(true);
        expect(sent).to.deep.equal(["DELETE FROM scm_token_hold WHERE id = ?"]);
        sent.length = 0;
      }
    });

    it("a refresher that finds a hold after taking the lease gives the lease back; this and the next hand-out get the current token", async () => {
      const { t, store, user, stored } = await fixture("server default");
      // The service's own store: a hold gets in after its read of the holds, just before its lease.
      const serviceStore = (t.service as unknown as { store: TokenStore }).store;
      const takeLease = serviceStore.takeLease.bind(serviceStore);
      let holdId: string | undefined;
      serviceStore.takeLease = async (id, version, ...rest) => {
        serviceStore.takeLease = takeLease;
        const now = t.clock.now();
        holdId = await store.insertHold(id, version, new Date(now.getTime() + 10 * MIN), now, { duringDrain: false });
        return takeLease(id, version, ...rest);
      };
      const token = await t.service.getTokenForHost(user, t.host);
      expect(holdId, "the hook inserted a hold").to.be.a("string");
      expect(token!.value === stored, "no refresh: the current token").to.equal(true);
      expect(t.scm.counters.tokenRequests, "the SCM was not called").to.equal(0);
      expect(t.scm.isAccessTokenLive(stored)).to.equal(true);
      const entry = (await store.find(user, t.host))!;
      expect(entry.refreshLeaseOwner, "the lease was given back").to.equal(undefined);
      expect(await counter(t, "scm_token_refresh_requests_total", { opportunisticRefresh: "reserved" }), "counted as skipped because held").to.equal(1);
      expect((await t.service.getTokenForHost(user, t.host, { releasable: true }))!.value === stored, "the next hand-out: the current token").to.equal(true);
      // Once every hold is gone (the hook's deleted, the last hand-out released), the token is refreshed.
      await store.deleteHold(holdId!);
      const pinned = (await store.find(user, t.host))!;
      expect(pinned.pinnedUntilDate, "the first hand-out pinned the token").to.not.equal(undefined);
      t.clock.set(pinned.pinnedUntilDate!.getTime() + 1);
      const fresh = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 1 });
      expect(fresh!.value === stored, "unheld within the horizon: refreshed").to.equal(false);
    });

    if (!server) return;

    for (const isolation of isolations) {
      it(`a hold insert that meets an uncommitted lease UPDATE waits for it, then inserts nothing (${isolation})`, async () => {
        const { t, store, user } = await fixture(isolation);
        const entry = (await store.find(user, t.host))!;
        const now = t.clock.now();
        const raw = await openRawConnection(server);
        cleanUp.push(() => raw.close());
        await raw.query("BEGIN");
        const leased = await raw.query("UPDATE scm_token_entry SET refreshLeaseOwner = ?, refreshLeaseUntil = ? WHERE id = ? AND version = ?", ["refresher", toSqlDate(new Date(now.getTime() + MIN)), entry.id, entry.version]);
        expect(leased.affected).to.equal(1);
        const insert = store.insertHold(entry.id, entry.version, new Date(now.getTime() + 10 * MIN), now, { duringDrain: false });
        expect(await pendingAfter(insert, BLOCKED_MS), "the hold insert waits for the lease's row lock").to.equal(true);
        await raw.query("COMMIT");
        expect(await insert, "then it sees the lease and inserts nothing").to.equal(undefined);
        expect((await store.liveHolds(entry.id, entry.version, now)).count).to.equal(0);

        // A lease that is rolled back lets the waiting insert through.
        await store.releaseLease(entry.id, "refresher");
        await raw.query("BEGIN");
        await raw.query("UPDATE scm_token_entry SET refreshLeaseOwner = ?, refreshLeaseUntil = ? WHERE id = ? AND version = ?", ["refresher", toSqlDate(new Date(now.getTime() + MIN)), entry.id, entry.version]);
        const second = store.insertHold(entry.id, entry.version, new Date(now.getTime() + 10 * MIN), now, { duringDrain: false });
        expect(await pendingAfter(second, BLOCKED_MS)).to.equal(true);
        await raw.query("ROLLBACK");
        expect(await second, "no lease after all: the hold is in").to.be.a("string");
      });

      it(`a lease UPDATE that meets an uncommitted hold insert waits for it; the refresher then sees the hold, gives the lease back and hands out the current token (${isolation})`, async () => {
        const { t, ds, store, user, stored } = await fixture("server default");
        const entry = (await store.find(user, t.host))!;
        const now = t.clock.now();
        const raw = await rawConnection(server, isolation);
        cleanUp.push(() => raw.close());
        await raw.query("BEGIN");
        const hold = randomUUID();
        const inserted = await raw.query(insertHoldSql(shareLockClause(ds.options.type), false), [hold, toSqlDate(new Date(now.getTime() + 10 * MIN)), entry.id, entry.version, toSqlDate(now)]);
        expect(inserted.affected, "the hold is inserted (not committed yet)").to.equal(1);
        // Unreserved (the hold is not committed) and within the horizon: the hand-out goes for a refresh.
        const handOut = t.service.getTokenForHost(user, t.host);
        expect(await pendingAfter(handOut, BLOCKED_MS), "the lease UPDATE waits for the hold's row lock").to.equal(true);
        await raw.query("COMMIT");
        const token = await handOut;
        expect(token!.value === stored, "the current token, not a refreshed one").to.equal(true);
        expect(t.scm.counters.tokenRequests, "the SCM was not called").to.equal(0);
        expect(t.scm.isAccessTokenLive(stored), "the hold's token lives").to.equal(true);
        expect((await store.find(user, t.host))!.refreshLeaseOwner, "the lease was given back").to.equal(undefined);
        expect(await counter(t, "scm_token_refresh_requests_total", { opportunisticRefresh: "reserved" })).to.equal(1);
      });
    }
  });
}
