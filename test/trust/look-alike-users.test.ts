import { expect } from "chai";
import { InvalidArgumentError } from "../../src/errors";
import type { Token } from "../../src/token";
import { dbKinds, rawQuery } from "../support/databases";
import { LOOK_ALIKES, REJECTED_SPELLINGS } from "./look-alikes";
import { HOST, trustFixture, uniquePrefix, type TrustFixture } from "./trust-fixture";

/**
 * Ids are opaque and compared byte for byte on every database: ids that differ in case, accents,
 * Unicode normal form or invisible characters are different users. On MySQL/MariaDB this needs the
 * binary identifier collation (migrations/1764200000000-BinaryIdentifierCollation.ts).
 */
for (const kind of dbKinds()) {
  describe(`look-alike user ids are different users on ${kind}`, () => {
    let t: TrustFixture;
    before(async () => {
      t = await trustFixture(kind);
    });
    after(async () => t?.close());

    for (const pair of LOOK_ALIKES) {
      describe(pair.name, () => {
        it("storeToken for the look-alike neither overwrites nor exposes the original's token", async () => {
          const [original, lookAlike] = pair.of(uniquePrefix());
          await t.service.storeToken(original, HOST, { value: "token-of-original" });
          await t.service.storeToken(lookAlike, HOST, { value: "token-of-look-alike" });
          expect((await t.service.getTokenForHost(original, HOST))?.value).to.equal("token-of-original");
          expect((await t.service.getTokenForHost(lookAlike, HOST))?.value).to.equal("token-of-look-alike");
          expect(await t.rawRows(original)).to.have.length(1);
          expect(await t.rawRows(lookAlike)).to.have.length(1);
        });

        it("getTokenForHost, getTokenForWorkspaceStart and withToken hand the look-alike nothing", async () => {
          const [original, lookAlike] = pair.of(uniquePrefix());
          await t.service.storeToken(original, HOST, { value: "token-of-original" });
          expect(await t.service.getTokenForHost(lookAlike, HOST)).to.equal(undefined);
          expect(await t.service.getTokenForWorkspaceStart(lookAlike, HOST)).to.equal(undefined);
          let seen: Token | undefined | "not called" = "not called";
          await t.service.withToken(lookAlike, HOST, {}, async (token) => {
            seen = token;
          });
          expect(seen).to.equal(undefined);
          // The original's row was not reserved by the look-alike's calls.
          expect((await t.rawRows(original))[0].reservedUntilDate).to.equal(null);
          expect((await t.service.getTokenForHost(original, HOST))?.value).to.equal("token-of-original");
        });

        it("deleteTokens for the look-alike deletes nothing of the original", async () => {
          const [original, lookAlike] = pair.of(uniquePrefix());
          await t.service.storeToken(original, HOST, { value: "token-of-original" });
          expect(await t.service.deleteTokens(lookAlike, HOST)).to.equal(0);
          expect(await t.service.deleteTokens(lookAlike)).to.equal(0);
          expect((await t.service.getTokenForHost(original, HOST))?.value).to.equal("token-of-original");
        });
      });
    }

    for (const spelling of REJECTED_SPELLINGS) {
      it(`a user id with a ${spelling.name} is rejected everywhere and nothing is stored`, async () => {
        const [original, rejected] = spelling.of(uniquePrefix());
        await t.service.storeToken(original, HOST, { value: "token-of-original" });
        const attempts: Array<() => Promise<unknown>> = [
          () => t.service.storeToken(rejected, HOST, { value: "token-of-look-alike" }),
          () => t.service.getTokenForHost(rejected, HOST),
          () => t.service.getTokenForWorkspaceStart(rejected, HOST),
          () => t.service.withToken(rejected, HOST, {}, async () => undefined),
          () => t.service.deleteTokens(rejected),
          () => t.service.deleteTokens(rejected, HOST),
        ];
        for (const attempt of attempts) {
          const error = await attempt().then(() => undefined, (e: unknown) => e);
          expect(error).to.be.instanceOf(InvalidArgumentError);
        }
        expect(await t.rawRows(rejected)).to.have.length(0);
        const rows = await t.rawRows(original);
        expect(rows).to.have.length(1);
        expect(rows[0].reservedUntilDate).to.equal(null);
        expect((await t.service.getTokenForHost(original, HOST))?.value).to.equal("token-of-original");
      });
    }

    it("releaseReservation with a look-alike (upper-case) hold id releases nothing", async () => {
      const [original] = LOOK_ALIKES[0].of(uniquePrefix());
      await t.service.storeToken(original, HOST, { value: "token-of-original" });
      const held = (await t.service.getTokenForHost(original, HOST, { releasable: true, lifetimeMinutes: 10 }))!;
      const holds = async () => (await rawQuery(t.dataSource, "SELECT id FROM scm_token_hold WHERE entryId = ?", [held.handOut.entryId])).length;
      expect(await holds()).to.equal(1);
      const forged = { ...held.handOut, holdId: held.handOut.holdId!.toUpperCase(), entryId: held.handOut.entryId.toUpperCase() };
      expect(forged.holdId).to.not.equal(held.handOut.holdId);
      expect(await t.service.releaseReservation(forged)).to.equal(false);
      expect(await holds(), "the hold is still there").to.equal(1);
      expect(await t.service.releaseReservation(held)).to.equal(true);
      expect(await holds()).to.equal(0);
    });

    it("host spellings: a different case names the same configured host (host names are case-insensitive); anything else is rejected", async () => {
      const [original] = LOOK_ALIKES[0].of(uniquePrefix());
      await t.service.storeToken(original, HOST, { value: "token-of-original" });
      expect((await t.service.getTokenForHost(original, HOST.toUpperCase()))?.value).to.equal("token-of-original");
      for (const host of ["bitbucket.\u00e9xample.com", "bitbucket.example.com\u200b", "bitbucket.examp1e.com"]) {
        const error = await t.service.getTokenForHost(original, host).then(() => undefined, (e: unknown) => e);
        expect(error, host).to.be.instanceOf(InvalidArgumentError);
      }
    });
  });
}
