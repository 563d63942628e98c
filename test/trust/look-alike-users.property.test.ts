import { expect } from "chai";
import fc from "fast-check";
import { dbKinds } from "../support/databases";
import { HOST, trustFixture, uniquePrefix, type TrustFixture } from "./trust-fixture";

/**
 * Per-letter spellings that some collation or normalisation takes for the plain letter: case,
 * precomposed and combining accents, compatibility forms (full-width, Kelvin sign, long s, dotless
 * i), and invisible characters inserted after it.
 */
const SPELLINGS: Record<string, string[]> = {
  a: ["a", "A", "\u00e1", "\u00e5", "a\u0301", "a\u030a", "\uff41"],
  e: ["e", "E", "\u00e9", "\u00e8", "e\u0301", "e\u0300", "\uff45"],
  i: ["i", "I", "\u00ed", "\u0131", "i\u0301", "\uff49"],
  k: ["k", "K", "\u212a", "\uff4b"],
  n: ["n", "N", "\u00f1", "n\u0303", "\uff4e"],
  o: ["o", "O", "\u00f6", "o\u0308", "\u00f8", "\uff4f"],
  s: ["s", "S", "\u017f", "\u00df", "\uff53"],
};
const INVISIBLE = ["", "", "", "\u200b", "\u200c", "\u200d", "\u2060", "\u00ad"];
const LETTERS = Object.keys(SPELLINGS);

/** A name of plain letters, and one look-alike spelling of it (possibly identical: then skipped). */
const lookAlikePair = fc
  .array(fc.constantFrom(...LETTERS), { minLength: 2, maxLength: 8 })
  .chain((letters) =>
    fc.tuple(
      fc.constant(letters.join("")),
      fc.tuple(...letters.map((l) => fc.tuple(fc.constantFrom(...SPELLINGS[l]), fc.constantFrom(...INVISIBLE)))).map((parts) => parts.map(([s, z]) => s + z).join("")),
      fc.constantFrom<"none" | "NFC" | "NFD" | "NFKC">("none", "NFC", "NFD", "NFKC"),
    ),
  )
  .map(([plain, variant, form]) => [plain, form === "none" ? variant : variant.normalize(form)] as const)
  .filter(([plain, variant]) => plain !== variant);

for (const kind of dbKinds()) {
  describe(`look-alike user ids, generated (fast-check) on ${kind}`, function () {
    this.timeout(120_000);
    let t: TrustFixture;
    before(async () => {
      t = await trustFixture(kind);
    });
    after(async () => t?.close());

    it("storing for one of a look-alike pair never makes it readable for the other; a bystander's token stays intact", async () => {
      const bystander = `${uniquePrefix()}-bystander`;
      await t.service.storeToken(bystander, HOST, { value: "token-of-bystander" });
      await fc.assert(
        fc.asyncProperty(lookAlikePair, async ([plain, variant]) => {
          const prefix = uniquePrefix();
          const original = `${prefix}-${plain}`;
          const lookAlike = `${prefix}-${variant}`;
          await t.service.storeToken(original, HOST, { value: "token-of-original" });
          expect(await t.service.getTokenForHost(lookAlike, HOST)).to.equal(undefined);
          await t.service.storeToken(lookAlike, HOST, { value: "token-of-look-alike" });
          expect((await t.service.getTokenForHost(original, HOST))?.value).to.equal("token-of-original");
          expect((await t.service.getTokenForHost(lookAlike, HOST))?.value).to.equal("token-of-look-alike");
          expect(await t.service.deleteTokens(lookAlike)).to.equal(1);
          expect((await t.service.getTokenForHost(original, HOST))?.value).to.equal("token-of-original");
          expect(await t.service.deleteTokens(original)).to.equal(1);
          expect((await t.service.getTokenForHost(bystander, HOST))?.value).to.equal("token-of-bystander");
        }),
        { numRuns: kind === "mariadb" ? 60 : 100 },
      );
      expect(await t.rawRows(bystander)).to.have.length(1);
    });
  });
}
