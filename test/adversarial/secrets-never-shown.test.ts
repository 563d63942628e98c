import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { DecryptionError, ReauthorizationRequiredError, ScmResponseError, ScmUnavailableError } from "../../src/errors";
import { TakeOnceSecrets } from "../../src/secrets/take-once/take-once-secrets";
import type { Token } from "../../src/token";
import { dbKinds } from "../support/databases";
import { FailureLog } from "./support/cases";
import { typedOutcome } from "./support/outcome";
import { openWorld, type World } from "./support/world";

/**
 * Secrets never show: not in a handed-out Token, the TokenService, a TakeOnceSecrets or KeyRing when
 * they are serialised, spread or inspected; not in the errors of the failure paths (SCM rejects the
 * refresh token, SCM down, SCM garbage, undecryptable row, database refuses a write); not in log
 * lines or metrics. And a token that does not decrypt for one replica (its key is missing) stays
 * stored and readable for the replica that has the key, one-shot tokens included.
 */
for (const kind of dbKinds()) {
  describe(`adversarial: secrets never show (${kind})`, function () {
    this.timeout(120_000);
    let w: World;
    before(async () => {
      w = await openWorld(kind);
    });
    after(async () => w?.close());

    it("a handed-out Token, the TokenService, TakeOnceSecrets and KeyRing show no secret however they are serialised", async () => {
      const failures = new FailureLog();
      const victim = await w.storeVictim(`${w.tag()}-serialise`, w.hosts[0]);
      const plain = await w.service.getTokenForHost(victim.userId, victim.host);
      const releasable = await w.service.getTokenForHost(victim.userId, victim.host, { releasable: true });
      let inWithToken: Token | undefined;
      await w.service.withToken(victim.userId, victim.host, {}, async (t) => {
        inWithToken = t;
      });
      for (const [what, token] of [["plain Token", plain], ["releasable Token", releasable], ["withToken's Token", inWithToken]] as const) {
        await failures.check(what, async () => {
          expect(token?.value, `${what}.value still reads the secret`).to.equal(victim.value);
          w.leaks.assertObjectClean(what, token);
          w.leaks.assertClean(`${what}: structuredClone`, inspect(safeClone(token), { depth: 10 }));
          w.leaks.assertClean(`${what}: Object.getOwnPropertyNames`, JSON.stringify(Object.getOwnPropertyNames(token).map((k) => [k, String((token as unknown as Record<string, unknown>)[k])])));
        });
      }
      await w.service.releaseReservation(releasable!);
      await failures.check("TokenService", async () => w.leaks.assertObjectClean("TokenService", w.service));
      await failures.check("KeyRing", async () => w.leaks.assertObjectClean("KeyRing", w.keyRing));
      await failures.check("TakeOnceSecrets", async () => w.leaks.assertObjectClean("TakeOnceSecrets", new TakeOnceSecrets(w.dataSource, w.keyRing, w.clock)));
      await failures.check("metrics registry", async () => w.leaks.assertObjectClean("service.metricsRegistry", w.service.metricsRegistry));
      await failures.check("surfaces", () => w.checkSurfaces("serialising public objects"));
      failures.assertNone();
    });

    it("the errors of every failure path carry no token, refresh token, client secret, key, password or SQL parameter", async () => {
      const failures = new FailureLog();
      const paths = ["invalid_grant", "scm_5xx", "scm_garbage", "scm_html", "wrong_key", "wrong_key_one_shot", "storage_too_long", "secret_in_bad_value"] as const;
      for (const [n, which] of paths.entries()) {
        const hostIndex = n % 2; // both hosts, alternately
          const host = w.hosts[hostIndex];
          const userId = `${w.tag()}-${which}`;
          await failures.check(`failure path ${which}`, async () => {
            const refreshToken = w.leaks.secret("refresh-token");
            const value = w.leaks.secret("access-token");
            const soon = new Date(w.clock.now().getTime() + 60_000); // must be refreshed for a 5-minute hand-out
            switch (which) {
              case "invalid_grant": {
                // A refresh token the SCM does not know: it answers invalid_grant.
                await w.service.storeToken(userId, host, { value, refreshToken, expiryDate: soon });
                const got = await typedOutcome(which, w.leaks, () => w.service.getTokenForHost(userId, host));
                expect(!got.ok && got.error, which).to.be.instanceOf(ReauthorizationRequiredError);
                break;
              }
              case "scm_5xx":
              case "scm_garbage":
              case "scm_html": {
                const issued = w.scm.issueTokens({ userId });
                w.leaks.register("access token issued by the SCM", issued.accessToken);
                w.leaks.register("refresh token issued by the SCM", issued.refreshToken);
                await w.service.storeToken(userId, host, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: soon });
                const kind = which === "scm_5xx" ? "fail_before_commit" : which === "scm_garbage" ? "malformed_json" : "html_502";
                w.scm.failNext({ kind } as never, kind === "malformed_json" ? 1 : 3); // 5xx are retried (3 attempts), garbage is not
                const got = await typedOutcome(which, w.leaks, () => w.service.getTokenForHost(userId, host));
                expect(!got.ok && got.error, which).to.satisfy((e: unknown) => e instanceof ScmUnavailableError || e instanceof ScmResponseError);
                break;
              }
              case "wrong_key":
              case "wrong_key_one_shot": {
                // Another replica stores with a key this one does not have.
                const otherKey = { id: "other-key", key: randomBytes(32).toString("base64") };
                const other = await w.sibling([otherKey]);
                const reuse = which === "wrong_key_one_shot" ? "never" : "whenPossible";
                await other.storeToken(userId, host, { value, expiryDate: new Date("2027-01-01T00:00:00Z"), reuse });
                const got = await typedOutcome(which, w.leaks, () => w.service.getTokenForHost(userId, host));
                expect(!got.ok && got.error, `${which}: reading a row this replica cannot decrypt`).to.be.instanceOf(DecryptionError);
                const again = await typedOutcome(`${which}: the replica with the key`, w.leaks, () => other.getTokenForHost(userId, host));
                expect(again.ok && again.value?.value === value, `${which}: the failed read must leave the token stored and readable for the replica with the key`).to.equal(true);
                break;
              }
              case "storage_too_long": {
                // Within the documented limits (100 scopes of 200 characters): the database must not refuse it with a raw error.
                const scopes = Array.from({ length: 100 }, (_, i) => `s${i}_`.padEnd(200, "x"));
                await typedOutcome(which, w.leaks, () => w.service.storeToken(userId, host, { value, refreshToken, scopes }));
                break;
              }
              case "secret_in_bad_value": {
                for (const bad of [`${value}\u0000`, `${value}\n`, value + "x".repeat(16 * 1024)]) {
                  const got = await typedOutcome(which, w.leaks, () => w.service.storeToken(userId, host, { value: bad, refreshToken: `${refreshToken}\u0001` }));
                  expect(got.ok, `${which}: a value with control characters or oversized was accepted`).to.equal(false);
                }
                break;
              }
            }
          });
          await failures.check(`victims after ${which}`, () => w.checkVictims(which));
      }
      await failures.check("surfaces", () => w.checkSurfaces("failure paths"));
      failures.assertNone();
    });
  });
}

function safeClone(v: unknown): unknown {
  try {
    return structuredClone(v);
  } catch (e) {
    return `<structuredClone threw ${(e as Error).name}>`;
  }
}
