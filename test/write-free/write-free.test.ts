import { expect } from "chai";
import { RefreshInProgressError, TokenHeldError } from "../../src/errors";
import type { TokenStore } from "../../src/storage/token-store";
import { FakeClock } from "../../src/testing/fake-clock";
import type { Token } from "../../src/token";
import { dbKinds, rawQuery } from "../support/databases";
import { reservationOf, serviceOn, uniqueUser } from "../support/service-fixture";

/**
 * Write-free hand-outs: a non-releasable hand-out that the token version's pinned reservation
 * already covers does one indexed read and no write; one that must write pins the token with slack.
 * The race tests run the competing operation between the hand-out's read and its return (a hook on
 * the store's read), the only window in which a write-free hand-out could be overtaken, and check
 * that the token handed out stays live at the (fake) SCM for its whole lifetime.
 */

type Fixture = Awaited<ReturnType<typeof serviceOn>>;
const MIN = 60_000;
const HORIZON_DRAIN = { opportunisticRefresh: true, horizonMinutes: 20, drain: true };

async function counter(t: Fixture, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = t.registry.getSingleMetric(name);
  if (!metric) return 0;
  const values = (await metric.get()).values;
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((sum, v) => sum + v.value, 0);
}

const writeFree = (t: Fixture) => counter(t, "scm_token_handouts_write_free_total");

/** Stores a 60-minute token at the clock's start and moves the clock to minute `at`. */
async function tokenAt(t: Fixture, at: number): Promise<{ user: string; stored: string; start: number }> {
  const user = uniqueUser("wf");
  const start = t.clock.now().getTime();
  const issued = await t.connectUser(user);
  t.clock.set(start + at * MIN);
  return { user, stored: issued.accessToken, start };
}

function dateOf(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined;
  return value instanceof Date ? value.getTime() : Date.parse(`${String(value).replace(" ", "T")}Z`);
}

async function row(t: Fixture, user: string): Promise<{ seq: number; version: number; reservedUntil?: number; pinnedUntil?: number }> {
  const [r] = await t.rawRows(user);
  return { seq: Number(r.reservationSeq), version: Number(r.version), reservedUntil: dateOf(r.reservedUntilDate), pinnedUntil: dateOf(r.pinnedUntilDate) };
}

/** Runs `between` once, right after the service's next read of the entry (before it decides and hands out). */
function afterNextRead(t: Fixture, between: () => Promise<void>): void {
  const store = (t.service as unknown as { store: TokenStore }).store;
  const find = store.find.bind(store);
  store.find = async (userId: string, host: string) => {
    const entry = await find(userId, host);
    store.find = find;
    await between();
    return entry;
  };
}

for (const kind of dbKinds()) {
  describe(`write-free hand-outs on ${kind}`, () => {
    let t: Fixture;
    afterEach(async () => t?.close());

    describe("what writes and what does not", () => {
      it("the first hand-out pins lifetime + 50 % slack; repeats inside the pin write nothing; one past it writes again", async () => {
        t = await serviceOn(kind, { flags: HORIZON_DRAIN });
        const { user, stored, start } = await tokenAt(t, 0);
        const first = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 });
        expect(first!.value === stored).to.equal(true);
        expect(first!.reservedUntilDate!.getTime(), "the caller is told its own promise").to.equal(start + 5 * MIN);
        const written = await row(t, user);
        expect(written.pinnedUntil).to.equal(start + 7.5 * MIN);
        expect(written.reservedUntil).to.equal(start + 7.5 * MIN);
        for (const at of [1, 2, 2.5]) {
          t.clock.set(start + at * MIN);
          const again = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 });
          expect(again!.value === stored).to.equal(true);
          expect(again!.reservedUntilDate!.getTime()).to.equal(start + 7.5 * MIN);
        }
        expect(await row(t, user), "no write: reservationSeq and dates unchanged").to.deep.equal(written);
        expect(await writeFree(t)).to.equal(3);
        expect(await counter(t, "scm_token_refresh_requests_total", { result: "still_valid" })).to.equal(4);
        t.clock.set(start + 3 * MIN); // needs 8 > 7.5
        await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 });
        const rewritten = await row(t, user);
        expect(rewritten.seq).to.equal(written.seq + 1);
        expect(rewritten.pinnedUntil).to.equal(start + 10.5 * MIN);
        expect(await writeFree(t)).to.equal(3);
      });

      it("a longer lifetime than the pin writes; a releasable hand-out always writes its hold", async () => {
        t = await serviceOn(kind, { flags: HORIZON_DRAIN });
        const { user, start } = await tokenAt(t, 0);
        await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 }); // pinned until 7.5
        const before = await row(t, user);
        await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 10 });
        const after = await row(t, user);
        expect(after.seq).to.equal(before.seq + 1);
        expect(after.pinnedUntil).to.equal(start + 15 * MIN);
        const held = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 1, releasable: true });
        expect(held!.handOut.holdId).to.be.a("string");
        expect(await row(t, user), "a hold is its own row: the entry is not written").to.deep.equal(after);
        expect((await reservationOf(t, user)).holds).to.equal(1);
        expect(await writeFree(t)).to.equal(0);
        await t.service.releaseReservation(held!);
        expect((await reservationOf(t, user)).holds).to.equal(0);
      });

      it("the slack never reaches into the refresh horizon, and is off under the Gitpod rule", async () => {
        t = await serviceOn(kind, { flags: HORIZON_DRAIN });
        const a = await tokenAt(t, 33); // 27 min left; horizon 20: pins end at 40 at the latest
        await t.service.getTokenForHost(a.user, t.host, { lifetimeMinutes: 5 });
        expect((await row(t, a.user)).pinnedUntil).to.equal(a.start + 40 * MIN);
        t.clock.set(a.start + 36 * MIN);
        await t.service.getTokenForHost(a.user, t.host, { lifetimeMinutes: 5 }); // 41 > 40: writes, no slack
        expect((await row(t, a.user)).pinnedUntil).to.equal(a.start + 41 * MIN);
        await t.close();

        t = await serviceOn(kind, { flags: { opportunisticRefresh: true, horizonMinutes: 0, drain: true } });
        const b = await tokenAt(t, 0);
        await t.service.getTokenForHost(b.user, t.host, { lifetimeMinutes: 5 }); // unreserved: refreshed (Gitpod rule)
        await t.service.getTokenForHost(b.user, t.host, { lifetimeMinutes: 5 });
        const r = await row(t, b.user);
        expect(r.pinnedUntil, "no slack: it would only delay the next opportunistic refresh").to.equal(b.start + 5 * MIN);
      });

      it("with opportunistic refresh off, the slack ends a lifetime before expiry", async () => {
        t = await serviceOn(kind, { flags: { opportunisticRefresh: false, drain: true } });
        const { user, start } = await tokenAt(t, 52);
        await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 }); // slack would end at 59.5; capped at 55
        expect((await row(t, user)).pinnedUntil).to.equal(start + 57 * MIN);
        await t.close();
        t = await serviceOn(kind, { flags: { opportunisticRefresh: false, drain: true } });
        const b = await tokenAt(t, 50);
        await t.service.getTokenForHost(b.user, t.host, { lifetimeMinutes: 5 });
        expect((await row(t, b.user)).pinnedUntil).to.equal(b.start + 55 * MIN);
      });

      it("during a drain a hand-out inside the reservation takes the write path (no write-free, no slack)", async () => {
        t = await serviceOn(kind, { flags: HORIZON_DRAIN });
        const { user, start } = await tokenAt(t, 39);
        await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 18 }); // pinned until 57
        await rawQuery(t.dataSource, "UPDATE scm_token_entry SET drainingSince = reservedUntilDate WHERE userId = ?", [user]);
        const before = await row(t, user);
        t.clock.set(start + 40 * MIN);
        await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 });
        const after = await row(t, user);
        expect(after.seq).to.equal(before.seq + 1);
        expect(after.reservedUntil).to.equal(start + 57 * MIN);
        expect(await writeFree(t)).to.equal(0);
      });

      it("a live refresh lease makes the hand-out wait for it instead of handing out the token being replaced", async () => {
        t = await serviceOn(kind, { flags: HORIZON_DRAIN, serviceOptions: { lease: { leaseMs: 60_000, waitForOtherMs: 300 } } });
        const { user } = await tokenAt(t, 0);
        await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 }); // pinned until 7.5
        const until = new Date(t.clock.now().getTime() + 60_000).toISOString().replace("T", " ").replace("Z", "");
        await rawQuery(t.dataSource, "UPDATE scm_token_entry SET refreshLeaseOwner = 'other', refreshLeaseUntil = ? WHERE userId = ?", [until, user]);
        const error = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 1 }).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(RefreshInProgressError);
        expect(await writeFree(t)).to.equal(0);
      });
    });

    describe("races between the read and the hand-out", () => {
      /** A pinned token at minute 39 (until 44, no slack: 40 is the horizon), plus a releasable hold until 57. */
      async function pinnedAndHeld(clock?: FakeClock) {
        t = await serviceOn(kind, { flags: HORIZON_DRAIN, clock, serviceOptions: { drainPollMs: 1_000 } });
        const { user, stored, start } = await tokenAt(t, 39);
        const hold = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 18, releasable: true });
        await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 });
        expect((await row(t, user)).pinnedUntil).to.equal(start + 44 * MIN);
        t.clock.set(start + 40 * MIN);
        return { user, stored, start, hold: hold! };
      }

      /** A forced hand-out (cannot be covered) that may not wait: fails with TokenHeldError while anyone holds the token. */
      const forcedNoWait = (user: string) => t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 25, maxWaitMs: 0 }).catch((e: unknown) => e);

      it("a release between the read and the hand-out lowers the reservation only to the pin: a forced refresh still waits for it", async () => {
        const { user, stored, start, hold } = await pinnedAndHeld();
        afterNextRead(t, async () => {
          expect(await t.service.releaseReservation(hold)).to.equal(true);
        });
        const c = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 4 }); // until 44 = the pin
        expect(c!.value === stored).to.equal(true);
        expect(await writeFree(t)).to.equal(1);
        expect((await row(t, user)).reservedUntil, "released down to the pin, not below").to.equal(start + 44 * MIN);
        const error = await forcedNoWait(user);
        expect(error).to.be.instanceOf(TokenHeldError);
        expect((error as TokenHeldError).heldUntil.getTime()).to.equal(start + 44 * MIN);
        expect(t.scm.isAccessTokenLive(c!.value)).to.equal(true);
        t.clock.set(start + 44 * MIN + 1);
        const fresh = await forcedNoWait(user);
        expect((fresh as Token).value === stored, "refreshed once the pin ended").to.equal(false);
      });

      it("a hand-out covered only by a releasable hold is NOT write-free (the hold may be released): it pins, and survives the release", async () => {
        t = await serviceOn(kind, { flags: HORIZON_DRAIN });
        const { user, stored, start } = await tokenAt(t, 39);
        const hold = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 18, releasable: true }); // reserved until 57, no pin
        const b = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 });
        expect(await writeFree(t)).to.equal(0);
        expect((await row(t, user)).pinnedUntil).to.equal(start + 44 * MIN);
        await t.service.releaseReservation(hold!);
        t.clock.set(start + 41 * MIN);
        expect(await forcedNoWait(user)).to.be.instanceOf(TokenHeldError);
        expect(b!.value === stored && t.scm.isAccessTokenLive(b!.value)).to.equal(true);
      });

      it("a forced refresh that starts between the read and the hand-out finds the token held and does not revoke it", async () => {
        const { user, stored, start } = await pinnedAndHeld();
        let forced: unknown;
        afterNextRead(t, async () => {
          forced = await forcedNoWait(user);
        });
        const c = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 4 });
        expect(c!.value === stored).to.equal(true);
        expect(forced).to.be.instanceOf(TokenHeldError);
        expect((forced as TokenHeldError).heldUntil.getTime()).to.equal(start + 57 * MIN);
        expect(t.scm.isAccessTokenLive(c!.value)).to.equal(true);
        expect(t.scm.counters.tokenRequests).to.equal(0);
      });

      it("a drain that starts between the read and the hand-out refreshes only after the write-free hand-out's lifetime", async () => {
        const { user, stored, start, hold } = await pinnedAndHeld(new FakeClock("2026-01-01T00:00:00Z", { autoAdvance: false }));
        let drained: Promise<Token | undefined> | undefined;
        afterNextRead(t, async () => {
          drained = t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 25, maxWaitMs: 30 * MIN });
          for (let i = 0; i < 500 && (await t.rawRows(user))[0].drainingSince === null; i++) await new Promise((r) => setImmediate(r));
          await t.service.releaseReservation(hold);
        });
        const c = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 4 }); // until 44 = the pin
        expect(c!.value === stored).to.equal(true);
        expect(await writeFree(t)).to.equal(1);
        let settled = false;
        void drained!.finally(() => (settled = true));
        for (const at of [41, 42, 43, 43.99]) {
          t.clock.set(start + at * MIN);
          for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
          expect(settled, `still draining at minute ${at}`).to.equal(false);
          expect(t.scm.isAccessTokenLive(c!.value)).to.equal(true);
        }
        t.clock.set(start + 44 * MIN + 1_000);
        const fresh = await drained!;
        expect(fresh!.value === stored).to.equal(false);
        expect(t.clock.now().getTime(), "the drained refresh came after the pin").to.be.at.least(start + 44 * MIN);
        expect(await counter(t, "scm_token_reservations_broken_total")).to.equal(0);
      });

      it("storeToken between the read and the hand-out: the old token is handed out (ordered before the store) and stays live; the next hand-out gets the new one", async () => {
        t = await serviceOn(kind, { flags: HORIZON_DRAIN });
        const { user, stored } = await tokenAt(t, 0);
        await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 });
        const before = await row(t, user);
        afterNextRead(t, async () => {
          await t.service.storeToken(user, t.host, { value: "a-new-token-from-re-authorisation", refreshToken: "rt", expiryDate: new Date(t.clock.now().getTime() + 60 * MIN) });
        });
        const c = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 1 });
        expect(c!.value === stored).to.equal(true);
        expect(c!.handOut.version).to.equal(before.version);
        expect(t.scm.isAccessTokenLive(stored)).to.equal(true);
        const next = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 1 });
        expect(next!.value).to.equal("a-new-token-from-re-authorisation");
        expect((await row(t, user)).pinnedUntil, "the new version was pinned by a write").to.be.a("number");
        expect(await writeFree(t)).to.equal(1);
      });

      it("only ifHeld: \"break\" revokes a write-free hand-out's token early, and it is counted", async () => {
        const { user, stored } = await pinnedAndHeld();
        let broke: Token | undefined;
        afterNextRead(t, async () => {
          broke = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 25, maxWaitMs: 0, ifHeld: "break" });
        });
        const c = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 4 });
        expect(c!.value === stored).to.equal(true);
        expect(broke!.value === stored).to.equal(false);
        expect(t.scm.isAccessTokenLive(c!.value)).to.equal(false);
        expect(await counter(t, "scm_token_reservations_broken_total")).to.equal(1);
      });

      it("concurrent write-free and writing hand-outs, releases and a drained refresh: no token handed out is revoked before its lifetime ends", async () => {
        t = await serviceOn(kind, { flags: HORIZON_DRAIN, serviceOptions: { drainPollMs: 1_000 } });
        const { user, stored, start } = await tokenAt(t, 30);
        await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 }); // pinned until 37.5
        const handOuts: { value: string; endMs: number }[] = [];
        let revokedAtMs: number | undefined;
        const watch = t.scm.pauseAt("afterCommit");
        void watch.reached.then(
          () => {
            revokedAtMs = t.clock.now().getTime();
            watch.release();
          },
          () => undefined,
        );
        const get = async (minutes: number, releasable = false) => {
          const startedMs = t.clock.now().getTime(); // the hand-out's promise runs from its read, which is later
          const token = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: minutes, releasable, maxWaitMs: 30 * MIN });
          handOuts.push({ value: token!.value, endMs: startedMs + minutes * MIN });
          expect(t.scm.isAccessTokenLive(token!.value), "live when handed out").to.equal(true);
          if (releasable) await t.service.releaseReservation(token!);
          return token!;
        };
        const calls: Promise<Token>[] = [];
        for (let i = 0; i < 24; i++) calls.push(get(i % 3 === 0 ? 2 : 1 + (i % 5), i % 4 === 1));
        calls.push(get(35)); // cannot be covered: drains, then refreshes
        await Promise.all(calls);
        expect(revokedAtMs, "the drained refresh happened").to.be.a("number");
        const old = handOuts.filter((h) => h.value === stored);
        expect(old.length).to.be.greaterThan(10);
        for (const h of old) expect(h.endMs, "an old-token hand-out ended before the refresh revoked it").to.be.at.most(revokedAtMs!);
        expect(await counter(t, "scm_token_reservations_broken_total")).to.equal(0);
        expect(await writeFree(t)).to.be.greaterThan(0);
        expect(revokedAtMs!).to.be.at.least(start + 37.5 * MIN);
      });
    });
  });
}
