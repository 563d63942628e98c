import { expect } from "chai";
import { DecryptionError } from "../../src/errors";
import { dbKinds, rawQuery } from "../support/databases";
import { HOST, newKey, trustFixture, uniquePrefix, type TrustFixture } from "./trust-fixture";

/**
 * A hand-out that fails to decrypt changes nothing: a one-shot token is not consumed, a reservation
 * is not raised, no hold is written. Put the key back and the same call succeeds.
 */
for (const kind of dbKinds()) {
  describe(`a token that does not decrypt is neither consumed nor reserved on ${kind}`, () => {
    let t: TrustFixture;
    before(async () => {
      t = await trustFixture(kind);
    });
    after(async () => t?.close());

    const withoutKey = () => t.serviceWith([newKey("other")]);
    const keyBack = () => t.serviceWith([newKey("other"), ...t.keys]);
    const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
    const holdsOf = async (entryId: unknown) => Number((await rawQuery(t.dataSource, "SELECT COUNT(*) AS n FROM scm_token_hold WHERE entryId = ?", [entryId]))[0].n);

    it("reuse never: DecryptionError keeps the one-shot token; with its key back exactly one call gets it", async () => {
      const user = `${uniquePrefix()}-one-shot`;
      await t.service.storeToken(user, HOST, { value: "one-shot-token", reuse: "never", expiryDate: new Date(t.clock.now().getTime() + 3_600_000) });
      expect(await failure(withoutKey().getTokenForHost(user, HOST))).to.be.instanceOf(DecryptionError);
      expect(await failure(withoutKey().getTokenForWorkspaceStart(user, HOST))).to.be.instanceOf(DecryptionError);
      expect(await t.rawRows(user)).to.have.length(1);
      const restored = keyBack();
      const results = await Promise.all(Array.from({ length: 10 }, () => restored.getTokenForHost(user, HOST)));
      expect(results.filter((r) => r?.value === "one-shot-token")).to.have.length(1);
      expect(results.filter((r) => r === undefined)).to.have.length(9);
      expect(await t.rawRows(user)).to.have.length(0);
    });

    for (const releasable of [false, true]) {
      it(`${releasable ? "releasable" : "pinned"} hand-out: DecryptionError leaves reservedUntilDate, pinnedUntilDate, reservationSeq and holds as they were`, async () => {
        const user = `${uniquePrefix()}-reserved`;
        await t.service.storeToken(user, HOST, { value: "reusable-token" });
        // An earlier, successful hand-out: the entry is reserved for 5 minutes.
        expect((await t.service.getTokenForHost(user, HOST, { lifetimeMinutes: 5, releasable }))?.value).to.equal("reusable-token");
        const [before] = await t.rawRows(user);
        const holdsBefore = await holdsOf(before.id);
        // A releasable hand-out is recorded as a hold, a pinned one on the entry row.
        if (releasable) expect(holdsBefore).to.equal(1);
        else expect(before.reservedUntilDate).to.not.equal(null);

        t.clock.advanceMinutes(1);
        const broken = withoutKey();
        expect(await failure(broken.getTokenForHost(user, HOST, { lifetimeMinutes: 60, releasable }))).to.be.instanceOf(DecryptionError);
        expect(await failure(broken.getTokenForWorkspaceStart(user, HOST, { releasable }))).to.be.instanceOf(DecryptionError);
        let called = false;
        const viaWithToken = broken.withToken(user, HOST, { lifetimeMinutes: 60 }, async () => {
          called = true;
        });
        expect(await failure(viaWithToken)).to.be.instanceOf(DecryptionError);
        expect(called).to.equal(false);

        const [after] = await t.rawRows(user);
        expect(after.reservedUntilDate).to.deep.equal(before.reservedUntilDate);
        expect(after.pinnedUntilDate).to.deep.equal(before.pinnedUntilDate);
        expect(Number(after.reservationSeq)).to.equal(Number(before.reservationSeq));
        expect(await holdsOf(before.id)).to.equal(holdsBefore);

        const token = await keyBack().getTokenForHost(user, HOST, { lifetimeMinutes: 60, releasable });
        expect(token?.value).to.equal("reusable-token");
      });
    }

    it("a never-reserved entry stays unreserved after a DecryptionError", async () => {
      const user = `${uniquePrefix()}-fresh`;
      await t.service.storeToken(user, HOST, { value: "reusable-token" });
      expect(await failure(withoutKey().getTokenForHost(user, HOST, { lifetimeMinutes: 30 }))).to.be.instanceOf(DecryptionError);
      const [row] = await t.rawRows(user);
      expect(row.reservedUntilDate).to.equal(null);
      expect(row.pinnedUntilDate).to.equal(null);
      expect(await holdsOf(row.id)).to.equal(0);
    });
  });
}
