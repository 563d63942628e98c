import { expect } from "chai";
import type { DataSource } from "typeorm";
import { StorageError, TokenHeldError } from "../../src/errors";
import { toStorageError } from "../../src/storage/sql-runner";
import type { TokenStore } from "../../src/storage/token-store";
import { createTestTokenService, type TestTokenService } from "../../src/testing/create-test-token-service";
import type { DbFaultProxy } from "../../src/testing/db-fault-proxy";
import { closeDataSource, dbKinds, openTestDataSource, rawQuery, serverKinds } from "../support/databases";
import { reservationOf, serviceOn, uniqueUser } from "../support/service-fixture";
import { openDataSourceBehindProxy } from "./db-faults";
import { eventually } from "./harness";

/**
 * A releasable hand-out whose hold INSERT committed but whose answer never reached the service (the
 * connection dropped after the commit, or the statement deadline passed): the caller gets a transient
 * StorageError and never learns the hold's id, so nobody could release the hold, and it would keep a
 * refresh that must not break holders waiting (or failing with TokenHeldError) for the hand-out's
 * whole lifetime. The service deletes it (the id is chosen before the statement is sent) before the
 * error reaches the caller; the error stays what it was.
 *
 * Two ways to lose the answer: on every database kind, a wrapper around the store's insertHold that
 * lets the statement run and commit, then throws the StorageError a lost connection gives
 * (PROTOCOL_CONNECTION_LOST, made by the runner's own toStorageError); on the database servers, a
 * DbFaultProxy that black-holes the database's answers only, so the INSERT really commits and the
 * statement deadline (STATEMENT_TIMEOUT) fires.
 */

const MIN = 60_000;
/** The failed hand-out's lifetime: without the fix, its hold blocks refreshes this long. */
const HOLD_MINUTES = 10;
/** More than the stored token has left (30 minutes): the request must refresh. */
const FORCED_MINUTES = 45;
/** The proxied services' statement deadline (real time). */
const DEADLINE_MS = 500;

function storeOf(t: TestTokenService): TokenStore {
  return (t.service as unknown as { store: TokenStore }).store;
}

/** Every hold row of the entry, live or not (what a release could still delete). */
async function holdRows(ds: DataSource, entryId: string): Promise<number> {
  const [row] = await rawQuery<Array<{ n: number | string }>>(ds, "SELECT COUNT(*) AS n FROM scm_token_hold WHERE entryId = ?", [entryId]);
  return Number(row?.n ?? 0);
}

/** The error a lost connection gives, as the runner makes it (transient, outcome unknown). */
function connectionLost(): StorageError {
  return toStorageError("write a token entry", Object.assign(new Error("Connection lost: The server closed the connection."), { code: "PROTOCOL_CONNECTION_LOST", fatal: true }));
}

interface LostAnswer {
  /** The hold the statement inserted (its id, which the caller never saw). */
  holdId?: string;
  entryId?: string;
  /** The error the caller should get, unchanged. */
  thrown?: StorageError;
}

/** The next hold INSERT runs and commits, then its answer is "lost": a transient StorageError instead. */
function loseAnswerOfNextHoldInsert(store: TokenStore): LostAnswer {
  const original = store.insertHold.bind(store);
  const lost: LostAnswer = {};
  store.insertHold = async (entryId, version, until, now, mode, id) => {
    store.insertHold = original;
    lost.entryId = entryId;
    lost.holdId = await original(entryId, version, until, now, mode, id);
    expect(lost.holdId, "the hold was inserted").to.be.a("string");
    throw (lost.thrown = connectionLost());
  };
  return lost;
}

/** The store's deleteHold fails from now on, with a message that names the hold (which must not reach a log). */
function failDeletes(store: TokenStore): { attempts: string[] } {
  const attempts: string[] = [];
  store.deleteHold = async (holdId) => {
    attempts.push(holdId);
    throw toStorageError("write a token entry", Object.assign(new Error(`connect ECONNREFUSED (while deleting '${holdId}')`), { code: "ECONNREFUSED" }));
  };
  return { attempts };
}

/** Nothing of the user's tokens, the entry, the hold or the user in the log. */
function expectNoSecretsLogged(t: TestTokenService, secrets: Array<string | undefined>): void {
  const text = t.logger.text();
  for (const secret of secrets) {
    expect(secret, "a value to look for").to.be.a("string");
    expect(text, "a token, id or user in the log").not.to.include(secret!);
  }
}

const ABANDON_WARNING = "Could not delete the hold of a failed releasable hand-out; it ends by itself at the end of the hand-out's lifetime, and until then a refresh that must not break holders waits for it";

/** A forced refresh (no waiting) of a revoking provider's token: must not be blocked by a hold. */
async function expectRefreshNotBlocked(t: TestTokenService, user: string, before: string): Promise<void> {
  const refreshesBefore = t.scm.counters.refreshSuccesses;
  const fresh = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: FORCED_MINUTES, maxWaitMs: 0 });
  expect(fresh?.value, "a refreshed token").to.be.a("string").and.not.equal(before);
  expect(t.scm.isAccessTokenLive(fresh!.value)).to.equal(true);
  expect(t.scm.counters.refreshSuccesses - refreshesBefore, "one refresh").to.equal(1);
}

for (const kind of dbKinds()) {
  describe(`a releasable hand-out whose hold INSERT committed but whose answer was lost (${kind})`, () => {
    let t: Awaited<ReturnType<typeof serviceOn>> | undefined;
    afterEach(async () => {
      await t?.close();
      t = undefined;
    });

    /** A user whose token (Bitbucket DC: a refresh revokes it) has 30 minutes left. */
    async function connected(options: Parameters<typeof serviceOn>[1] = {}) {
      t = await serviceOn(kind, options);
      const user = uniqueUser("hold-lost");
      const issued = await t.connectUser(user);
      t.clock.set(issued.expiresAt!.getTime() - 30 * MIN);
      return { t, user, issued, store: storeOf(t) };
    }

    it("the hold is deleted before the caller gets its (unchanged) error, and a refresh that must not break holders is not blocked", async () => {
      const { t, user, issued, store } = await connected();
      const lost = loseAnswerOfNextHoldInsert(store);
      const error = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: HOLD_MINUTES, releasable: true }).catch((e: unknown) => e);
      expect(error, "the caller's error is the statement's, unchanged").to.equal(lost.thrown);
      expect((error as StorageError).transient).to.equal(true);
      expect(await holdRows(t.dataSource, lost.entryId!), "the hold is gone").to.equal(0);
      expect((await reservationOf(t, user)).holds, "no live hold").to.equal(0);
      await expectRefreshNotBlocked(t, user, issued.accessToken);
      expect(t.logger.find(ABANDON_WARNING)).to.equal(undefined);
    });

    it("the compensating DELETE fails too: the caller's error is unchanged, a warning without ids or tokens, the hold ends by itself at the hand-out's lifetime", async () => {
      const { t, user, issued, store } = await connected();
      const lost = loseAnswerOfNextHoldInsert(store);
      const deletes = failDeletes(store);
      const error = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: HOLD_MINUTES, releasable: true }).catch((e: unknown) => e);
      expect(error, "the caller's error is the statement's, not the DELETE's").to.equal(lost.thrown);
      expect(deletes.attempts, "one DELETE of the hold the statement inserted").to.deep.equal([lost.holdId]);

      const warnings = t.logger.filter(ABANDON_WARNING);
      expect(warnings).to.have.length(1);
      expect(warnings[0]!.level).to.equal("warn");
      expect(warnings[0]!.fields).to.deep.equal({ host: t.host, error: "StorageError", driverCode: "ECONNREFUSED" });
      expectNoSecretsLogged(t, [lost.holdId, lost.entryId, issued.accessToken, issued.refreshToken, user]);

      // The window left: the hold blocks a refresh that must not break holders until it ends.
      const held = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: FORCED_MINUTES, maxWaitMs: 0 }).catch((e: unknown) => e);
      expect(held).to.be.instanceOf(TokenHeldError);
      t.clock.advance(HOLD_MINUTES * MIN + 1);
      await expectRefreshNotBlocked(t, user, issued.accessToken);
    });

    it("a failure that is not transient (the server refused the statement: nothing was inserted) deletes nothing", async () => {
      const { t, user, store } = await connected();
      const refused = toStorageError("write a token entry", Object.assign(new Error("Table 'scm_token_hold' doesn't exist"), { code: "ER_NO_SUCH_TABLE", errno: 1146 }));
      expect(refused.transient).to.equal(false);
      store.insertHold = async () => {
        throw refused;
      };
      const deletes: string[] = [];
      store.deleteHold = async (holdId) => {
        deletes.push(holdId);
        return false;
      };
      const error = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: HOLD_MINUTES, releasable: true }).catch((e: unknown) => e);
      expect(error).to.equal(refused);
      expect(deletes).to.deep.equal([]);
    });

    it("legacyReplicas: the row reservation after the hold fails; the hold (certainly in) is deleted and the caller gets the reservation's error", async () => {
      const { t, user, issued, store } = await connected({ serviceOptions: { legacyReplicas: true } });
      let entryId: string | undefined;
      const insertHold = store.insertHold.bind(store);
      store.insertHold = async (id, version, until, now, mode, holdId) => {
        entryId = id;
        return insertHold(id, version, until, now, mode, holdId);
      };
      const thrown = connectionLost();
      const reserve = store.reserve.bind(store);
      store.reserve = async () => {
        store.reserve = reserve; // once
        throw thrown;
      };
      const error = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: HOLD_MINUTES, releasable: true }).catch((e: unknown) => e);
      expect(error).to.equal(thrown);
      expect(await holdRows(t.dataSource, entryId!), "the hold is gone").to.equal(0);
      await expectRefreshNotBlocked(t, user, issued.accessToken);
    });
  });
}

for (const kind of serverKinds()) {
  describe(`a releasable hand-out whose hold INSERT committed while the database's answers were black-holed (${kind} behind a fault proxy)`, function () {
    this.timeout(20_000);
    let proxy: DbFaultProxy | undefined;
    let dataSource: DataSource | undefined;
    let direct: DataSource | undefined;
    let t: TestTokenService | undefined;

    beforeEach(async () => {
      ({ proxy, dataSource } = await openDataSourceBehindProxy(kind));
      direct = await openTestDataSource(kind, 1); // beside the proxy: sees what the server committed
      t = await createTestTokenService({ dataSource, serviceOptions: { statementTimeoutMs: DEADLINE_MS } });
    });
    afterEach(async () => {
      proxy?.pass();
      await t?.close();
      await dataSource?.destroy().catch(() => undefined);
      await proxy?.close();
      if (direct) await closeDataSource(direct);
    });

    /**
     * The next hold INSERT is sent with the database's answers black-holed: it commits, the statement
     * deadline passes. Then, before the service goes on, the network heals (`after: "heal"`) or the
     * database becomes unreachable (`after: "cut"`).
     */
    function blackHoleNextHoldInsert(after: "heal" | "cut"): LostAnswer & { committed?: boolean } {
      const store = storeOf(t!);
      const original = store.insertHold.bind(store);
      const lost: LostAnswer & { committed?: boolean } = {};
      store.insertHold = async (entryId, version, until, now, mode, id) => {
        store.insertHold = original;
        lost.entryId = entryId;
        lost.holdId = id;
        proxy!.blackHole({ answersOnly: true });
        try {
          return await original(entryId, version, until, now, mode, id);
        } catch (e) {
          lost.thrown = e as StorageError;
          // The statement did reach the server and commit: the case this test is about.
          lost.committed = await eventually("the hold to be committed", async () => ((await holdRows(direct!, entryId)) === 1 ? true : undefined), 3_000);
          if (after === "heal") proxy!.pass();
          else proxy!.cut();
          throw e;
        }
      };
      return lost;
    }

    async function connected() {
      const user = uniqueUser("hold-blackhole");
      const issued = await t!.connectUser(user);
      t!.clock.set(issued.expiresAt!.getTime() - 30 * MIN);
      return { t: t!, user, issued };
    }

    it("the deadline passes after the commit: the hold is deleted, the caller gets its STATEMENT_TIMEOUT, a refresh is not blocked", async () => {
      const { t, user, issued } = await connected();
      const lost = blackHoleNextHoldInsert("heal");
      const error = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: HOLD_MINUTES, releasable: true }).catch((e: unknown) => e);
      expect(lost.committed, "the INSERT committed").to.equal(true);
      expect(error, "the caller's error is the statement's, unchanged").to.equal(lost.thrown);
      expect((error as StorageError).driverCode).to.equal("STATEMENT_TIMEOUT");
      expect((error as StorageError).transient).to.equal(true);
      expect(await holdRows(direct!, lost.entryId!), "the hold is gone").to.equal(0);
      await expectRefreshNotBlocked(t, user, issued.accessToken);
      expect(t.logger.find(ABANDON_WARNING)).to.equal(undefined);
    });

    it("the database is unreachable right after: the DELETE fails too, the caller still gets its STATEMENT_TIMEOUT within two deadlines, a warning without ids or tokens; the hold ends by itself", async () => {
      const { t, user, issued } = await connected();
      const lost = blackHoleNextHoldInsert("cut");
      const started = Date.now();
      const error = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: HOLD_MINUTES, releasable: true }).catch((e: unknown) => e);
      const elapsedMs = Date.now() - started;
      expect(lost.committed, "the INSERT committed").to.equal(true);
      expect(error, "the caller's error is the statement's, not the DELETE's").to.equal(lost.thrown);
      expect((error as StorageError).driverCode).to.equal("STATEMENT_TIMEOUT");
      expect(elapsedMs, "the DELETE adds at most its own deadline").to.be.below(2 * DEADLINE_MS + 3_000);
      const warnings = t.logger.filter(ABANDON_WARNING);
      expect(warnings).to.have.length(1);
      expect(warnings[0]!.level).to.equal("warn");
      expect(warnings[0]!.fields).to.include({ host: t.host, error: "StorageError" });
      expectNoSecretsLogged(t, [lost.holdId, lost.entryId, issued.accessToken, issued.refreshToken, user]);
      expect(await holdRows(direct!, lost.entryId!), "the hold is still there").to.equal(1);

      proxy!.pass();
      const held = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: FORCED_MINUTES, maxWaitMs: 0 }).catch((e: unknown) => e);
      expect(held, "until it ends, the hold blocks a refresh that must not break holders").to.be.instanceOf(TokenHeldError);
      t.clock.advance(HOLD_MINUTES * MIN + 1);
      await expectRefreshNotBlocked(t, user, issued.accessToken);
    });
  });
}
