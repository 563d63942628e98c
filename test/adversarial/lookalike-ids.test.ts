import { expect } from "chai";
import fc from "fast-check";
import { InvalidArgumentError } from "../../src/errors";
import { dbKinds } from "../support/databases";
import { hostVariants, lookalikeIdPair, LOOKALIKE_TRANSFORMS, type LookalikeTransform } from "./support/arbitraries";
import { FailureLog } from "./support/cases";
import { fcParams, typedOutcome } from "./support/outcome";
import { openWorld, type Victim, type World } from "./support/world";

/**
 * Two users whose ids look alike (case, accents, NFC/NFD, zero-width characters, homoglyphs,
 * surrounding spaces, control characters) are two users: storing, reading or deleting for one never
 * reads, overwrites or deletes the other's token. Ids the library refuses must be refused with an
 * InvalidArgumentError naming `userId`, before anything is read or written.
 */
for (const kind of dbKinds()) {
  describe(`adversarial: look-alike user ids and hosts (${kind})`, function () {
    this.timeout(120_000);
    let w: World;
    before(async () => {
      w = await openWorld(kind);
    });
    after(async () => w?.close());

    /** One pair: a stores and reads; b reads, stores, deletes; a's token is untouched at every step. */
    const checkPair = async (a: string, b: string, host: string, label: string) => {
      let victim: Victim;
      const storedA = await typedOutcome(`storeToken(a) [${label}]`, w.leaks, async () => (victim = await w.storeVictim(a, host)));
      if (!storedA.ok) {
        expect(storedA.error, `${label}: a refused id must be an InvalidArgumentError`).to.be.instanceOf(InvalidArgumentError);
        expect((storedA.error as InvalidArgumentError).argument).to.equal("userId");
        return;
      }

      // a's own hand-out first: a's token is now in the service's cache of decrypted tokens
      // (decryptedTokenCacheSize), which must never answer for b either.
      const ownHandOut = await w.service.getTokenForHost(a, host);
      expect(ownHandOut?.value, `${label}: a's own hand-out`).to.equal(victim!.value);

      // b has stored nothing: whatever b asks, it never gets a's token.
      for (const [what, call] of [
        ["getTokenForHost(b)", () => w.service.getTokenForHost(b, host)],
        ["getTokenForWorkspaceStart(b)", () => w.service.getTokenForWorkspaceStart(b, host)],
        ["getTokenForHost(b, releasable)", () => w.service.getTokenForHost(b, host, { releasable: true })],
        ["withToken(b)", () => w.service.withToken(b, host, {}, async (t) => t)],
      ] as const) {
        const got = await typedOutcome(`${what} [${label}]`, w.leaks, call);
        if (got.ok) expect(got.value === undefined ? undefined : "a token", `${label}: ${what} before b stored anything`).to.equal(undefined);
      }
      await w.checkVictims(`b read [${label}]`, [victim!]);

      // b stores its own token: a keeps its own, b reads its own.
      const valueB = w.leaks.secret("access-token-b");
      const storedB = await typedOutcome(`storeToken(b) [${label}]`, w.leaks, () =>
        w.service.storeToken(b, host, { value: valueB, expiryDate: new Date("2027-01-01T00:00:00Z"), scopes: ["REPO_WRITE"] }),
      );
      await w.checkVictims(`storeToken(b) [${label}]`, [victim!]);
      if (storedB.ok) {
        const got = await typedOutcome(`getTokenForHost(b) [${label}]`, w.leaks, () => w.service.getTokenForHost(b, host));
        expect(got.ok && got.value?.value === valueB, `${label}: b must read back exactly its own token`).to.equal(true);
      } else {
        expect(storedB.error, `${label}: storeToken(b)`).to.be.instanceOf(InvalidArgumentError);
      }

      // b deletes: only b's token goes.
      const deleted = await typedOutcome(`deleteTokens(b) [${label}]`, w.leaks, () => w.service.deleteTokens(b, host));
      if (deleted.ok) expect(deleted.value, `${label}: deleteTokens(b) count`).to.equal(storedB.ok ? 1 : 0);
      const deletedAll = await typedOutcome(`deleteTokens(b, all hosts) [${label}]`, w.leaks, () => w.service.deleteTokens(b));
      if (deletedAll.ok) expect(deletedAll.value, `${label}: deleteTokens(b) of all hosts after the delete`).to.equal(0);
      await w.checkVictims(`deleteTokens(b) [${label}]`, [victim!]);
      const afterDelete = await typedOutcome(`getTokenForHost(b) after delete [${label}]`, w.leaks, () => w.service.getTokenForHost(b, host));
      if (afterDelete.ok) expect(afterDelete.value === undefined ? undefined : "a token", `${label}: b after its delete`).to.equal(undefined);
    };

    it("never lets a look-alike id read, overwrite or delete another user's token (every transform, then generated pairs)", async () => {
      const failures = new FailureLog();
      // Every transform once, on a name it changes (a compound of the letters the transforms bite on).
      for (const transform of Object.keys(LOOKALIKE_TRANSFORMS) as LookalikeTransform[]) {
        const cores = ["alice-José-strasse-file-Kim-ioana-Åsa", "alice-Jose\u0301-strasse"];
        for (const core of cores) {
          const a = `${w.tag()}-${core}`;
          const b = LOOKALIKE_TRANSFORMS[transform](a);
          if (a === b) continue;
          const label = `${transform}: a=${JSON.stringify(a)} b=${JSON.stringify(b)}`;
          await failures.check(label, () => checkPair(a, b, w.hosts[0], label));
          break;
        }
      }
      await fc.assert(
        fc.asyncProperty(lookalikeIdPair(() => w.tag()), fc.constantFrom(0, 1), async ({ a, b, transform }, hostIndex) => {
          const label = `${transform}: a=${JSON.stringify(a)} b=${JSON.stringify(b)}`;
          await failures.check(label, () => checkPair(a, b, w.hosts[hostIndex], label));
        }),
        fcParams(kind === "mariadb" ? 8 : 12),
      );
      await failures.check("victims", () => w.checkVictims("look-alike ids"));
      await failures.check("surfaces", () => w.checkSurfaces("look-alike ids"));
      failures.assertNone();
    });

    it("maps a look-alike host to the configured host only for case, surrounding spaces and the root dot", async () => {
      const victim = await w.storeVictim(`${w.tag()}-hosts`, w.hosts[0]);
      const failures = new FailureLog();
      for (const { host, sameHost } of hostVariants(w.hosts[0])) {
        const label = `host ${JSON.stringify(host)}`;
        await failures.check(label, async () => {
          const got = await typedOutcome(`getTokenForHost(${label})`, w.leaks, () => w.service.getTokenForHost(victim.userId, host, { lifetimeMinutes: 1 }));
          if (sameHost === "either" && got.ok) {
            expect(got.value?.value, `${label} maps to the configured host or is refused`).to.equal(victim.value);
          } else if (sameHost === true) {
            expect(got.ok && got.value?.value === victim.value, `${label} is the configured host and must hand out its token`).to.equal(true);
          } else if (got.ok) {
            expect(got.value?.value === victim.value, `${label} is not the configured host but handed out its token`).to.equal(false);
          } else {
            expect(got.error, label).to.be.instanceOf(InvalidArgumentError);
            expect((got.error as InvalidArgumentError).argument, label).to.equal("host");
          }
          // Storing or deleting under a look-alike host never touches the configured host's token.
          if (sameHost === false) {
            await typedOutcome(`storeToken(${label})`, w.leaks, () => w.service.storeToken(victim.userId, host, { value: w.leaks.secret("other-host") }));
            await typedOutcome(`deleteTokens(${label})`, w.leaks, () => w.service.deleteTokens(victim.userId, host));
          }
          await w.checkVictims(label, [victim]);
        });
      }
      await failures.check("surfaces", () => w.checkSurfaces("look-alike hosts"));
      failures.assertNone();
    });
  });
}
