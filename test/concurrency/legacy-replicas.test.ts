import { expect } from "chai";
import { ConfigurationError } from "../../src/errors";
import { fromSqlDate, toSqlDate } from "../../src/storage/sql-values";
import type { TokenStore } from "../../src/storage/token-store";
import { createTestTokenService, type TestTokenService } from "../../src/testing/create-test-token-service";
import { dbKinds, rawQuery } from "../support/databases";
import { serviceOn, uniqueUser } from "../support/service-fixture";

/**
 * A rolling upgrade from 0.1: replicas of 0.1 know only the entry row's reservation (reservedUntilDate)
 * and take their refresh lease when it has ended; they never read the holds releasable hand-outs of
 * this version write. The statements a 0.1 replica sends are written out here (they are not in the
 * library any more): its lease UPDATE (the same conditional UPDATE as today's takeLease) and its
 * release's recomputation of the reservation from the pin and the live holds.
 */

const MIN = 60_000;
/** One 20-minute horizon; the token has 19 minutes left, so a 0.1 replica would refresh it when unreserved. */
const FLAGS = { opportunisticRefresh: true, horizonMinutes: 20, drain: true, horizonMarginMinutes: 0 };

type Fixture = Awaited<ReturnType<typeof serviceOn>>;

function storeOf(t: TestTokenService): TokenStore {
  return (t.service as unknown as { store: TokenStore }).store;
}

/** 0.1's opportunistic lease: free or expired, same version, and the row's reservation over (or the token expired). */
async function legacyTakeLease(t: TestTokenService, id: string, version: number): Promise<boolean> {
  const now = t.clock.now();
  return storeOf(t).takeLease(id, version, "replica-0.1", new Date(now.getTime() + 30_000), now, now);
}

/** 0.1's release: the reservation becomes max(pin, live holds of the version), compare-and-set on reservationSeq. */
async function legacyRecompute(t: TestTokenService, id: string): Promise<void> {
  const now = toSqlDate(t.clock.now());
  const [row] = (await rawQuery(t.dataSource, "SELECT version, reservationSeq, pinnedUntilDate FROM scm_token_entry WHERE id = ?", [id])) as Array<Record<string, unknown>>;
  const [held] = (await rawQuery(t.dataSource, "SELECT MAX(heldUntil) AS heldUntil FROM scm_token_hold WHERE entryId = ? AND version = ? AND heldUntil > ?", [id, row.version, now])) as Array<Record<string, unknown>>;
  const candidates = [fromSqlDate(row.pinnedUntilDate), fromSqlDate(held?.heldUntil)].filter((d): d is Date => d !== undefined && d.getTime() > t.clock.now().getTime());
  const until = candidates.length ? toSqlDate(new Date(Math.max(...candidates.map((d) => d.getTime())))) : null;
  await rawQuery(t.dataSource, "UPDATE scm_token_entry SET reservedUntilDate = ? WHERE id = ? AND version = ? AND reservationSeq = ?", [until, id, row.version, row.reservationSeq]);
}

for (const kind of dbKinds()) {
  describe(`a rolling upgrade from 0.1 (legacyReplicas) on ${kind}`, () => {
    let t: Fixture;
    afterEach(async () => t?.close());

    async function releasableHandOut(legacyReplicas: boolean) {
      t = await serviceOn(kind, { flags: FLAGS, serviceOptions: { legacyReplicas } });
      const user = uniqueUser("legacy");
      const start = t.clock.now().getTime();
      await t.connectUser(user);
      t.clock.set(start + 41 * MIN); // 19 minutes left: within the horizon
      const token = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 10, releasable: true });
      return { token: token!, id: token!.handOut.entryId, version: token!.handOut.version };
    }

    it("without it, a 0.1 replica would take the lease under a releasable hand-out (the hazard the option is for)", async () => {
      const { id, version } = await releasableHandOut(false);
      expect(await legacyTakeLease(t, id, version)).to.equal(true);
    });

    it("with it, the hand-out reserves the row too: a 0.1 replica's lease waits until the hand-out's lifetime has ended", async () => {
      const { token, id, version } = await releasableHandOut(true);
      expect(await legacyTakeLease(t, id, version)).to.equal(false);
      // A 0.1 replica's own releasable hand-out and release meanwhile: its recomputation sees this hold.
      await rawQuery(t.dataSource, "INSERT INTO scm_token_hold (id, entryId, version, heldUntil) VALUES (?, ?, ?, ?)", ["0a0a0a0a-0000-4000-8000-000000000001", id, version, toSqlDate(new Date(t.clock.now().getTime() + MIN))]);
      await rawQuery(t.dataSource, "DELETE FROM scm_token_hold WHERE id = ?", ["0a0a0a0a-0000-4000-8000-000000000001"]);
      await legacyRecompute(t, id);
      expect(await legacyTakeLease(t, id, version)).to.equal(false);
      // The release gives the hold back; the row's reservation ends by itself (the option's cost).
      expect(await t.service.releaseReservation(token)).to.equal(true);
      t.clock.advance(10 * MIN + 1);
      expect(await legacyTakeLease(t, id, version)).to.equal(true);
    });

    it("with it, a lease taken between the hold and the row's reservation: the hold is taken back and the hand-out waits and reads again", async () => {
      t = await serviceOn(kind, { flags: FLAGS, serviceOptions: { legacyReplicas: true } });
      const user = uniqueUser("legacy-race");
      await t.connectUser(user); // 60 minutes left: nothing to refresh
      const store = storeOf(t);
      const insertHold = store.insertHold.bind(store);
      const inserted: string[] = [];
      let leased: string | undefined;
      store.insertHold = async (entryId, version, until, now, mode) => {
        const holdId = await insertHold(entryId, version, until, now, mode);
        if (holdId) inserted.push(holdId);
        if (inserted.length === 1) {
          // A 0.1 replica takes its lease right after the first hold (the row is not reserved yet)…
          expect(await store.takeLease(entryId, version, "replica-0.1", new Date(now.getTime() + 30_000), now, now)).to.equal(true);
          leased = entryId;
        }
        return holdId;
      };
      const deleteHold = store.deleteHold.bind(store);
      store.deleteHold = async (holdId) => {
        const deleted = await deleteHold(holdId);
        // …and gives it up (its refresh failed) once the hand-out has taken its hold back and waits for the lease.
        if (leased) await store.releaseLease(leased, "replica-0.1");
        return deleted;
      };
      const token = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 10, releasable: true });
      expect(inserted, "the hand-out tried again after the lease").to.have.length(2);
      const holds = (await rawQuery(t.dataSource, "SELECT id FROM scm_token_hold WHERE entryId = ?", [token!.handOut.entryId])) as Array<{ id: string }>;
      expect(holds.map((h) => h.id), "the first hold was taken back").to.deep.equal([inserted[1]]);
      expect(t.scm.isAccessTokenLive(token!.value)).to.equal(true);
    });
  });
}

describe("legacyReplicas option", () => {
  it("must be a boolean: anything else is a ConfigurationError naming it", async () => {
    const error = await createTestTokenService({ serviceOptions: { legacyReplicas: "yes" as never } }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(ConfigurationError);
    expect((error as ConfigurationError).option).to.equal("legacyReplicas");
  });
});
