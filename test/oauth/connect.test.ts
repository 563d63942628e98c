import { randomBytes } from "node:crypto";
import { expect } from "chai";
import { KeyRing } from "../../src/crypto/key-ring";
import { AuthorizationCodeRejectedError, AuthorizationDeniedError, AuthorizationStateError, InvalidArgumentError, ReauthorizationRequiredError, ScmUnavailableError } from "../../src/errors";
import { ScmConnector } from "../../src/oauth/scm-connector";
import { isAuthorizingProvider } from "../../src/providers/scm-provider";
import { TakeOnceSecrets } from "../../src/secrets/take-once/take-once-secrets";
import type { FakeScmProfileName } from "../../src/testing/fake-scm";
import { dbKinds, type DbKind } from "../support/databases";
import { serviceOn, uniqueUser as newUser } from "../support/service-fixture";

const REDIRECT = "http://127.0.0.1/oauth/callback"; // the fake's registered redirect URI

/** Every user these tests connect: their entries are deleted afterwards (the run's MariaDB database is shared with reaper tests). */
const users: string[] = [];
function uniqueUser(prefix?: string): string {
  const user = newUser(prefix);
  users.push(user);
  return user;
}

async function connectorOn(kind: DbKind, profile: FakeScmProfileName) {
  const t = await serviceOn(kind, { profile });
  const secrets = new TakeOnceSecrets(t.dataSource, new KeyRing([{ id: "s", key: randomBytes(32).toString("base64") }]), t.clock);
  const connector = new ScmConnector({ service: t.service, secrets, redirectUri: REDIRECT, clock: t.clock, logger: t.logger });
  return {
    ...t,
    secrets,
    connector,
    /** Leaves nothing behind: the users' entries, and the pending authorizations (reaped once expired). */
    async close() {
      for (const user of users.splice(0)) await t.service.deleteTokens(user);
      t.clock.advance(25 * 3600_000);
      await secrets.reapExpired();
      await t.close();
    },
  };
}

/** The expected revocation outcome per profile (the providers' capability). */
const REVOCATION: Record<FakeScmProfileName, "revoked" | "unsupported"> = {
  bitbucket_dc: "unsupported",
  gitlab: "revoked",
  github_app_user: "revoked",
  github_oauth_app: "revoked",
  bitbucket_cloud: "unsupported",
  rfc9700_strict: "revoked",
  keeps_old_access_tokens: "revoked",
  generic_oauth2: "revoked",
};

for (const kind of dbKinds()) {
  describe(`oauth lifecycle on the fake SCMs (${kind})`, () => {
    for (const profile of Object.keys(REVOCATION) as FakeScmProfileName[]) {
      it(`${profile}: connect (code + PKCE) → store → hand out → disconnect (${REVOCATION[profile]})`, async () => {
        const t = await connectorOn(kind, profile);
        try {
          const user = uniqueUser();
          const started = await t.connector.startAuthorization(user, t.host, { scopes: profile === "github_app_user" ? [] : [...t.scm.profile.defaultScopes] });
          const url = new URL(started.url);
          expect(url.pathname).to.equal(t.scm.profile.authorizePath);
          expect(url.searchParams.get("code_challenge_method")).to.equal("S256");
          expect(url.searchParams.get("state")).to.equal(started.state);
          expect(started.url).not.to.include("code_verifier");

          const callback = t.scm.authorize(started.url, { approve: true, userId: "scm-" + user });
          const connected = await t.connector.completeAuthorization(user, callback);
          expect(connected).to.include({ userId: user, host: t.host, refreshable: t.scm.profile.issueRefreshToken });
          expect(JSON.stringify(connected)).not.to.match(/access_token|refresh_token/);
          expect(t.scm.counters).to.include({ authorizations: 1, codeExchanges: 1 });

          const token = await t.service.getTokenForHost(user, t.host);
          expect(token, "handed out").to.not.equal(undefined);
          expect(t.scm.isAccessTokenLive(token!.value)).to.equal(true);

          const result = await t.service.disconnect(user, t.host);
          expect(result).to.deep.equal({ deleted: 1, hosts: [{ host: t.host, revocation: REVOCATION[profile] }] });
          expect(await t.service.getTokenForHost(user, t.host)).to.equal(undefined);
          expect(t.scm.isAccessTokenLive(token!.value)).to.equal(REVOCATION[profile] !== "revoked");
          // RFC 7009: refresh token, then access token (2 requests); GitHub: one grant deletion.
          const requests = t.scm.profile.revocation.kind === "rfc7009" ? 2 : t.scm.profile.revocation.kind === "github_grant" ? 1 : 0;
          expect(t.scm.counters.revocations).to.equal(requests);
          expect(await t.metricsText()).to.include(`scm_token_revocations_total{host="${t.host}",result="${REVOCATION[profile]}"} 1`);
        } finally {
          await t.close();
        }
      });
    }

    describe("refused callbacks store nothing and say why", () => {
      let t: Awaited<ReturnType<typeof connectorOn>>;
      beforeEach(async () => (t = await connectorOn(kind, "generic_oauth2")));
      afterEach(async () => t.close());

      async function expectNothingStored(user: string) {
        expect(await t.service.getTokenForHost(user, t.host)).to.equal(undefined);
      }

      it("a replayed callback (state used once already) → AuthorizationStateError unknown_expired_or_used", async () => {
        const user = uniqueUser();
        const callback = t.scm.authorize((await t.connector.startAuthorization(user, t.host)).url);
        await t.connector.completeAuthorization(user, callback);
        const error = await t.connector.completeAuthorization(user, callback).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(AuthorizationStateError).and.to.include({ code: "AUTHORIZATION_STATE_INVALID", reason: "unknown_expired_or_used" });
        expect(t.scm.counters.codeExchanges).to.equal(1);
      });

      it("the same callback completed twice at once: exactly one exchange, the other gets AuthorizationStateError", async () => {
        const user = uniqueUser();
        const callback = t.scm.authorize((await t.connector.startAuthorization(user, t.host)).url);
        const outcomes = await Promise.allSettled([t.connector.completeAuthorization(user, callback), t.connector.completeAuthorization(user, callback)]);
        expect(outcomes.filter((o) => o.status === "fulfilled")).to.have.length(1);
        const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
        expect(rejected?.reason).to.be.instanceOf(AuthorizationStateError);
        expect(t.scm.counters.codeExchanges).to.equal(1);
      });

      it("an expired state (11 minutes later) → AuthorizationStateError, and the SCM is not called", async () => {
        const user = uniqueUser();
        const callback = t.scm.authorize((await t.connector.startAuthorization(user, t.host)).url);
        t.clock.advanceMinutes(11);
        const error = await t.connector.completeAuthorization(user, callback).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(AuthorizationStateError).and.to.include({ reason: "unknown_expired_or_used" });
        expect(t.scm.counters.tokenRequests).to.equal(0);
        await expectNothingStored(user);
      });

      it("an unknown or missing state → AuthorizationStateError", async () => {
        const user = uniqueUser();
        const unknown = await t.connector.completeAuthorization(user, { code: "abc", state: "0".repeat(64) }).catch((e: unknown) => e);
        expect(unknown).to.be.instanceOf(AuthorizationStateError).and.to.include({ reason: "unknown_expired_or_used" });
        const missing = await t.connector.completeAuthorization(user, `${REDIRECT}?code=abc`).catch((e: unknown) => e);
        expect(missing).to.be.instanceOf(AuthorizationStateError).and.to.include({ reason: "missing" });
        await expectNothingStored(user);
      });

      it("a state issued for another user, or for another host → mismatch; nothing stored for either", async () => {
        const alice = uniqueUser("alice");
        const mallory = uniqueUser("mallory");
        const callback = t.scm.authorize((await t.connector.startAuthorization(alice, t.host)).url);
        const error = await t.connector.completeAuthorization(mallory, callback).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(AuthorizationStateError).and.to.include({ reason: "mismatch" });
        await expectNothingStored(alice);
        await expectNothingStored(mallory);
        expect(t.scm.counters.tokenRequests).to.equal(0);
        // The state is used up: alice must start again.
        expect(await t.connector.completeAuthorization(alice, callback).catch((e: unknown) => e)).to.be.instanceOf(AuthorizationStateError);
      });

      it("error=access_denied → AuthorizationDeniedError", async () => {
        const user = uniqueUser();
        const callback = t.scm.authorize((await t.connector.startAuthorization(user, t.host)).url, { approve: false });
        const error = await t.connector.completeAuthorization(user, callback).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(AuthorizationDeniedError).and.to.include({ code: "AUTHORIZATION_DENIED", oauthError: "access_denied" });
        expect((error as Error).message).to.include("declined");
        await expectNothingStored(user);
      });

      it("a code the SCM rejects (expired) → AuthorizationCodeRejectedError", async () => {
        const user = uniqueUser();
        const callback = t.scm.authorize((await t.connector.startAuthorization(user, t.host)).url);
        t.clock.advance(61_000); // the profile's codes live 60 s; the state lives 10 min
        const error = await t.connector.completeAuthorization(user, callback).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(AuthorizationCodeRejectedError).and.to.include({ code: "AUTHORIZATION_CODE_REJECTED", oauthError: "invalid_grant" });
        await expectNothingStored(user);
      });

      it("a code paired with another authorization's state (PKCE verifier mismatch) → AuthorizationCodeRejectedError", async () => {
        const user = uniqueUser();
        const first = t.scm.authorize((await t.connector.startAuthorization(user, t.host)).url);
        const second = await t.connector.startAuthorization(user, t.host);
        const swapped = { code: new URL(first).searchParams.get("code")!, state: second.state };
        const error = await t.connector.completeAuthorization(user, swapped).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(AuthorizationCodeRejectedError);
        await expectNothingStored(user);
      });

      it("the SCM fails during the exchange → ScmUnavailableError; nothing stored", async () => {
        const user = uniqueUser();
        const callback = t.scm.authorize((await t.connector.startAuthorization(user, t.host)).url);
        t.scm.failNext({ kind: "fail_before_commit", status: 503 });
        const error = await t.connector.completeAuthorization(user, callback).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(ScmUnavailableError);
        await expectNothingStored(user);
      });

      it("an unknown host → InvalidArgumentError before anything is created", async () => {
        const error = await t.connector.startAuthorization(uniqueUser(), "unknown.example.com").catch((e: unknown) => e);
        expect(error).to.be.instanceOf(InvalidArgumentError);
      });

      it("the connector shows no secret, key or database handle (JSON, inspect)", async () => {
        const { inspect } = await import("node:util");
        expect(JSON.parse(JSON.stringify(t.connector))).to.deep.equal({ redirectUri: REDIRECT, stateTtlMs: 600_000 });
        expect(inspect(t.connector, { depth: 10 })).to.equal(`ScmConnector { redirectUri: '${REDIRECT}', stateTtlMs: 600000 }`);
      });

      it("no message or log line carries the code, the state or a token", async () => {
        const user = uniqueUser();
        const started = await t.connector.startAuthorization(user, t.host);
        const callback = t.scm.authorize(started.url);
        const code = new URL(callback).searchParams.get("code")!;
        const errors = [
          await t.connector.completeAuthorization(uniqueUser(), callback).catch((e: unknown) => e),
          await t.connector.completeAuthorization(user, callback).catch((e: unknown) => e),
        ];
        const text = JSON.stringify(t.logger.records) + errors.map((e) => String((e as Error).message)).join("\n");
        expect(text).not.to.include(code);
        expect(text).not.to.include(started.state);
      });
    });

    describe("disconnect", () => {
      it("a failed revocation never blocks the deletion: logged without the token, counted as failed", async () => {
        const t = await connectorOn(kind, "gitlab");
        try {
          const user = uniqueUser();
          await t.connector.completeAuthorization(user, t.scm.authorize((await t.connector.startAuthorization(user, t.host)).url));
          const token = (await t.service.getTokenForHost(user, t.host))!;
          await t.scm.close(); // the SCM is gone: revocation cannot succeed
          const result = await t.service.disconnect(user, t.host, { timeoutMs: 2000 });
          expect(result.deleted).to.equal(1);
          expect(result.hosts[0]).to.include({ host: t.host, revocation: "failed" });
          expect(await t.service.getTokenForHost(user, t.host)).to.equal(undefined);
          expect(await t.metricsText()).to.include(`scm_token_revocations_total{host="${t.host}",result="failed"} 1`);
          const warning = t.logger.records.find((r) => r.message.startsWith("Token deleted, but revoking it"));
          expect(warning, "a warning").to.not.equal(undefined);
          expect(JSON.stringify(t.logger.records)).not.to.include(token.value);
        } finally {
          await t.close();
        }
      });

      it("revoked tokens are dead at the SCM: the refresh token too (rfc7009 ends the family)", async () => {
        const t = await connectorOn(kind, "generic_oauth2");
        try {
          const user = uniqueUser();
          await t.connector.completeAuthorization(user, t.scm.authorize((await t.connector.startAuthorization(user, t.host)).url));
          const token = (await t.service.getTokenForHost(user, t.host))!;
          await t.connector.disconnect(user, t.host);
          expect(t.scm.isAccessTokenLive(token.value)).to.equal(false);
          expect(t.scm.counters.familyRevocations).to.equal(1);
          // Reconnecting afterwards works (a fresh authorization).
          await t.connector.completeAuthorization(user, t.scm.authorize((await t.connector.startAuthorization(user, t.host)).url));
          expect(await t.service.getTokenForHost(user, t.host)).to.not.equal(undefined);
        } finally {
          await t.close();
        }
      });

      it("without a host: every connected host of the user, each with its own outcome", async () => {
        const t = await connectorOn(kind, "generic_oauth2");
        try {
          const user = uniqueUser();
          await t.connector.completeAuthorization(user, t.scm.authorize((await t.connector.startAuthorization(user, t.host)).url));
          const other = uniqueUser();
          await t.connector.completeAuthorization(other, t.scm.authorize((await t.connector.startAuthorization(other, t.host)).url));
          expect(await t.service.disconnect(user)).to.deep.equal({ deleted: 1, hosts: [{ host: t.host, revocation: "revoked" }] });
          expect(await t.service.disconnect(user)).to.deep.equal({ deleted: 0, hosts: [] });
          expect(await t.service.getTokenForHost(other, t.host), "another user's connection is untouched").to.not.equal(undefined);
        } finally {
          await t.close();
        }
      });

      it("every built-in provider declares its revocation capability", async () => {
        for (const profile of Object.keys(REVOCATION) as FakeScmProfileName[]) {
          const t = await connectorOn(kind, profile);
          try {
            const provider = t.service.getProvider(t.host);
            expect(isAuthorizingProvider(provider), profile).to.equal(true);
            if (!isAuthorizingProvider(provider)) continue;
            expect(provider.revocation.kind === "none" ? "unsupported" : "revoked", profile).to.equal(REVOCATION[profile]);
            expect(provider.revocation.note.length, profile).to.be.greaterThan(10);
          } finally {
            await t.close();
          }
        }
      });
    });

    describe("the fake SCM's authorization endpoints behave like the SCMs'", () => {
      it("a code redeemed twice is rejected, and the tokens issued from it are revoked (RFC 6749 §4.1.2)", async () => {
        const t = await connectorOn(kind, "gitlab");
        try {
          const user = uniqueUser();
          const started = await t.connector.startAuthorization(user, t.host);
          const callback = new URL(t.scm.authorize(started.url));
          // Exchange the code by hand (as an attacker who saw it would), then let the library try.
          const exchange = () =>
            fetch(t.scm.baseUrl + t.scm.tokenPath, {
              method: "POST",
              body: new URLSearchParams({ grant_type: "authorization_code", code: callback.searchParams.get("code")!, redirect_uri: REDIRECT, client_id: "test-client", client_secret: "test-secret" }),
            });
          const first = await exchange();
          expect(first.status, "no PKCE verifier: the code had a challenge").to.equal(400);
          // A failed exchange does not redeem the code: the library's (with the verifier) still works.
          expect(await t.connector.completeAuthorization(user, callback.href)).to.include({ host: t.host, refreshable: true });
          const token = (await t.service.getTokenForHost(user, t.host))!;
          const replay = await exchange();
          expect(replay.status).to.equal(400);
          expect(t.scm.isAccessTokenLive(token.value), "the family issued from the replayed code is revoked").to.equal(false);
        } finally {
          await t.close();
        }
      });

      it("GitHub: deleting the grant with an expired access token fails (404) → revocation failed, entry deleted", async () => {
        const t = await connectorOn(kind, "github_app_user");
        try {
          const user = uniqueUser();
          await t.connector.completeAuthorization(user, t.scm.authorize((await t.connector.startAuthorization(user, t.host)).url));
          t.clock.advanceMinutes(8 * 60 + 1); // GitHub App user tokens live 8 h
          const result = await t.service.disconnect(user, t.host);
          expect(result).to.deep.equal({ deleted: 1, hosts: [{ host: t.host, revocation: "failed", reason: "SCM_BAD_RESPONSE HTTP 404" }] });
          expect(t.scm.counters.revocations).to.equal(0);
        } finally {
          await t.close();
        }
      });
    });

    it("ReauthorizationRequiredError is unchanged by connect: a revoked-at-the-SCM family still needs a reconnect", async () => {
      const t = await connectorOn(kind, "generic_oauth2");
      try {
        const user = uniqueUser();
        await t.connector.completeAuthorization(user, t.scm.authorize((await t.connector.startAuthorization(user, t.host)).url));
        const token = (await t.service.getTokenForHost(user, t.host))!;
        t.scm.revokeFamilyOf(token.value);
        t.clock.advanceMinutes(59); // the 1 h token can no longer cover 5 minutes
        const error = await t.service.getTokenForHost(user, t.host).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(ReauthorizationRequiredError);
      } finally {
        await t.close();
      }
    });
  });
}
