import { expect } from "chai";
import type { DataSource } from "typeorm";
import { DecryptionError } from "../../src/errors";
import { TokenStore, type StoredEntry } from "../../src/storage/token-store";
import { dbKinds, rawQuery } from "../support/databases";
import { HOST, trustFixture, uniquePrefix, type TrustFixture } from "./trust-fixture";

/** A store whose lookup is wrong on purpose: every find() returns the row of `victim`. */
class MisroutingStore extends TokenStore {
  constructor(
    dataSource: DataSource,
    private readonly victim: string,
  ) {
    super(dataSource);
  }

  override async find(_userId: string, host: string): Promise<StoredEntry | undefined> {
    return super.find(this.victim, host);
  }
}

/**
 * Defence in depth behind the binary collation: whatever the lookup returns, a hand-out only ever
 * decrypts as the caller's (userId, host). Another user's row fails with DecryptionError and is
 * neither handed out, consumed, reserved nor refreshed.
 */
for (const kind of dbKinds()) {
  describe(`a hand-out never yields another user's row on ${kind}`, () => {
    let t: TrustFixture;
    before(async () => {
      t = await trustFixture(kind);
    });
    after(async () => t?.close());

    const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

    for (const reuse of ["whenPossible", "never"] as const) {
      it(`a lookup that returns another user's row (reuse ${reuse}): DecryptionError, and the victim's row is untouched`, async () => {
        const prefix = uniquePrefix();
        const victim = `${prefix}-alice`;
        const caller = `${prefix}-ALICE`;
        await t.service.storeToken(victim, HOST, { value: "token-of-alice", reuse, expiryDate: new Date(t.clock.now().getTime() + 3_600_000) });
        const [before] = await t.rawRows(victim);
        const misrouted = t.serviceWith(t.keys, new MisroutingStore(t.dataSource, victim));
        for (const call of [
          () => misrouted.getTokenForHost(caller, HOST),
          () => misrouted.getTokenForHost(caller, HOST, { releasable: true }),
          () => misrouted.getTokenForWorkspaceStart(caller, HOST),
          () => misrouted.withToken(caller, HOST, {}, async (token) => token?.value),
        ]) {
          const error = await failure(call());
          expect(error).to.be.instanceOf(DecryptionError);
          expect((error as Error).message).to.not.contain(victim);
          expect((error as Error).message).to.not.contain(caller);
        }
        expect(await t.rawRows(victim)).to.deep.equal([before]);
        expect(Number((await rawQuery(t.dataSource, "SELECT COUNT(*) AS n FROM scm_token_hold WHERE entryId = ?", [before.id]))[0].n)).to.equal(0);
        expect((await t.service.getTokenForHost(victim, HOST))?.value).to.equal("token-of-alice");
      });
    }

    it("a lookup that returns another user's expired token does not refresh it (no lease, no new version)", async () => {
      const prefix = uniquePrefix();
      const victim = `${prefix}-bob`;
      await t.service.storeToken(victim, HOST, { value: "expired-token-of-bob", refreshToken: "refresh-token-of-bob", expiryDate: new Date(t.clock.now().getTime() - 60_000) });
      const [before] = await t.rawRows(victim);
      const misrouted = t.serviceWith(t.keys, new MisroutingStore(t.dataSource, victim));
      expect(await failure(misrouted.getTokenForHost(`${prefix}-Bob`, HOST))).to.be.instanceOf(DecryptionError);
      expect(await t.rawRows(victim)).to.deep.equal([before]);
    });

    it("a row whose userId was rewritten in the database does not decrypt for its new owner", async () => {
      const prefix = uniquePrefix();
      const owner = `${prefix}-carol`;
      const intruder = `${prefix}-mallory`;
      await t.service.storeToken(owner, HOST, { value: "token-of-carol" });
      await rawQuery(t.dataSource, "UPDATE scm_token_entry SET userId = ? WHERE userId = ?", [intruder, owner]);
      expect(await failure(t.service.getTokenForHost(intruder, HOST))).to.be.instanceOf(DecryptionError);
      expect((await t.rawRows(intruder))[0].reservedUntilDate).to.equal(null);
    });
  });
}
