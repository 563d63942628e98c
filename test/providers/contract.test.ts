import { expect } from "chai";
import { ReauthorizationRequiredError, ScmResponseError, ScmUnavailableError } from "../../src/errors";
import { RefreshRejectedError } from "../../src/providers/scm-provider";
import { FAKE_SCM_PROFILES, FakeScmServer, type FakeScmProfileName, type FakeScmProfileOverrides } from "../../src/testing/fake-scm";
import { providerForFakeScm } from "../../src/testing/provider-for-fake-scm";
import { dbKinds, type DbKind } from "../support/databases";
import { serviceOn, uniqueUser } from "../support/service-fixture";

// One contract, every provider: each provider runs against the fake SCM profile of the SCM it is
// written for, through the whole service (createTestTokenService), on the embedded database and on
// MariaDB. Whatever differs between SCMs is a field of the case below, never a branch in a test.

type Fixture = Awaited<ReturnType<typeof serviceOn>>;

interface ContractCase {
  /** The provider class providerForFakeScm must choose. */
  provider: string;
  profile: FakeScmProfileName;
  overrides?: FakeScmProfileOverrides;
  /** What the provider must say, and what the fake does to the old access token on refresh. */
  revokesOnRefresh: boolean;
  /** The OAuth error a dead refresh token gets at this SCM (research §1). */
  rejection: string;
}

const CASES: ContractCase[] = [
  { provider: "BitbucketServerProvider", profile: "bitbucket_dc", revokesOnRefresh: true, rejection: "invalid_grant" },
  { provider: "GitLabProvider", profile: "gitlab", revokesOnRefresh: true, rejection: "invalid_grant" },
  { provider: "GitHubProvider", profile: "github_app_user", revokesOnRefresh: true, rejection: "bad_refresh_token" },
  { provider: "BitbucketCloudProvider", profile: "bitbucket_cloud", revokesOnRefresh: false, rejection: "invalid_request" },
  // Bitbucket Cloud after 2026-05-04 is unverified (research §6): the revoking variant must hold too.
  { provider: "BitbucketCloudProvider", profile: "bitbucket_cloud", overrides: { oldAccessTokenOnRefresh: "revoke_immediately" }, revokesOnRefresh: true, rejection: "invalid_request" },
  { provider: "OAuth2Provider", profile: "rfc9700_strict", revokesOnRefresh: true, rejection: "invalid_grant" },
  { provider: "OAuth2Provider", profile: "keeps_old_access_tokens", revokesOnRefresh: false, rejection: "invalid_grant" },
  { provider: "OAuth2Provider", profile: "generic_oauth2", revokesOnRefresh: false, rejection: "invalid_grant" },
];

function title(c: ContractCase): string {
  return `${c.provider} × ${c.profile}${c.overrides ? ` (${JSON.stringify(c.overrides)})` : ""}`;
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
}

async function counterValues(t: Fixture): Promise<Record<string, number>> {
  const values = (await t.registry.getSingleMetric("scm_token_refresh_requests_total")!.get()).values;
  return Object.fromEntries(values.filter((v) => v.value > 0).map((v) => [`${v.labels.result}/${v.labels.opportunisticRefresh}`, v.value]));
}

describe("provider contract: every fake SCM profile has its provider", () => {
  it("providerForFakeScm maps each profile to a provider, and the contract covers each profile", async () => {
    const names = Object.keys(FAKE_SCM_PROFILES) as FakeScmProfileName[];
    for (const name of names) {
      const scm = await FakeScmServer.start({ profile: name });
      try {
        const provider = providerForFakeScm(scm);
        expect(provider.host, name).to.be.a("string");
      } finally {
        await scm.close();
      }
    }
    const covered = new Set([...CASES.map((c) => c.profile), "github_oauth_app"]);
    expect([...covered].sort()).to.deep.equal([...names].sort());
  });
});

for (const kind of dbKinds()) {
  for (const c of CASES) {
    describe(`provider contract on ${kind}: ${title(c)}`, () => {
      let t: Fixture;
      afterEach(async () => t?.close());

      const start = (options: Parameters<typeof serviceOn>[1] = {}): Promise<Fixture> =>
        serviceOn(kind as DbKind, {
          profile: c.profile,
          ...options,
          scmOverrides: { ...c.overrides, ...options.scmOverrides, responseQuirks: { ...c.overrides?.responseQuirks, ...options.scmOverrides?.responseQuirks } },
        });
      /** The access-token lifetime of this profile, in ms. */
      const ttlMs = () => t.scm.profile.accessTokenTtlSeconds! * 1000;
      /** Moves the clock to 4 minutes before expiry: a 5-minute hand-out must refresh (forced). */
      const toForcedRefresh = () => t.clock.advance(ttlMs() - 4 * 60_000);

      it(`is a ${c.provider} whose requiresOpportunisticRefresh (${c.revokesOnRefresh}) matches what the SCM does to old access tokens`, async () => {
        t = await start();
        const provider = providerForFakeScm(t.scm, t.host);
        expect(provider.constructor.name).to.equal(c.provider);
        expect(provider.requiresOpportunisticRefresh).to.equal(c.revokesOnRefresh);
        expect(t.scm.profile.oldAccessTokenOnRefresh === "revoke_immediately").to.equal(c.revokesOnRefresh);
      });

      it("stores a token and hands it out, reserved, without calling the SCM while it covers the lifetime", async () => {
        t = await start();
        const user = uniqueUser();
        const issued = await t.connectUser(user);
        const token = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 });
        expect(token!.value).to.equal(issued.accessToken);
        expect(token!.expiryDate!.getTime()).to.equal(issued.expiresAt!.getTime());
        expect(token!.reservedUntilDate!.getTime()).to.equal(t.clock.now().getTime() + 5 * 60_000);
        expect(t.scm.counters.tokenRequests).to.equal(0);
      });

      it(`forced refresh: a token that cannot cover the lifetime is replaced by a live one with the SCM's lifetime; the old one is ${c.revokesOnRefresh ? "revoked" : "still live"} at the SCM`, async () => {
        t = await start();
        const user = uniqueUser();
        const issued = await t.connectUser(user);
        toForcedRefresh();
        const first = await t.service.getTokenForHost(user, t.host);
        expect(first!.value).to.not.equal(issued.accessToken);
        expect(t.scm.isAccessTokenLive(first!.value)).to.equal(true);
        expect(first!.expiryDate!.getTime()).to.equal(t.clock.now().getTime() + ttlMs());
        expect(t.scm.isAccessTokenLive(issued.accessToken), "old access token live at the SCM").to.equal(!c.revokesOnRefresh);
        // The rotated refresh token was stored: the next forced refresh works too.
        toForcedRefresh();
        const second = await t.service.getTokenForHost(user, t.host);
        expect(second!.value).to.not.equal(first!.value);
        expect(t.scm.counters).to.include({ refreshSuccesses: 2, invalidGrants: 0 });
        expect(await counterValues(t)).to.deep.equal({ "success/false": 2 });
        const [row] = await t.rawRows(user);
        for (const secret of [issued.accessToken, issued.refreshToken!, first!.value, second!.value]) expect(JSON.stringify(row)).to.not.contain(secret);
      });

      it(`opportunistic refresh (flag on) of an unreserved token inside the horizon happens ${c.revokesOnRefresh ? "" : "NOT "}for this provider`, async () => {
        t = await start({ flags: { opportunisticRefresh: true } });
        const user = uniqueUser();
        const issued = await t.connectUser(user);
        t.clock.advance(ttlMs() - 12 * 60_000); // 12 minutes left: inside a 5-minute hand-out's 13-minute horizon (lifetime + the 8-minute margin), unreserved
        const token = await t.service.getTokenForHost(user, t.host);
        if (c.revokesOnRefresh) {
          expect(token!.value).to.not.equal(issued.accessToken);
          expect(t.scm.isAccessTokenLive(issued.accessToken)).to.equal(false);
          expect(await counterValues(t)).to.deep.equal({ "success/true": 1 });
        } else {
          expect(token!.value).to.equal(issued.accessToken);
          expect(t.scm.counters.tokenRequests).to.equal(0);
          expect(await counterValues(t)).to.deep.equal({ "still_valid/false": 1 });
        }
      });

      it("a reserved token is never refreshed opportunistically: a clone's token stays live", async () => {
        t = await start({ flags: { opportunisticRefresh: true } });
        const user = uniqueUser();
        await t.connectUser(user);
        t.clock.advance(ttlMs() - 20 * 60_000); // outside a workspace start's 18-minute horizon: reused and reserved for 10 minutes
        const clone = await t.service.getTokenForWorkspaceStart(user, t.host);
        t.clock.advanceMinutes(8); // 12 minutes left: inside the API hand-out's 13-minute horizon, still reserved
        const api = await t.service.getTokenForHost(user, t.host);
        expect(api!.value).to.equal(clone!.value);
        expect(t.scm.isAccessTokenLive(clone!.value)).to.equal(true);
        expect(t.scm.counters.tokenRequests).to.equal(0);
        expect(await counterValues(t)).to.deep.equal(c.revokesOnRefresh ? { "still_valid/false": 1, "still_valid/reserved": 1 } : { "still_valid/false": 2 });
      });

      it("ten concurrent hand-outs of an expiring token cause exactly one refresh at the SCM", async () => {
        t = await start();
        const user = uniqueUser();
        await t.connectUser(user);
        toForcedRefresh();
        const tokens = await Promise.all(Array.from({ length: 10 }, () => t.service.getTokenForHost(user, t.host)));
        expect(new Set(tokens.map((x) => x!.value)).size).to.equal(1);
        expect(t.scm.counters).to.include({ tokenRequests: 1, refreshSuccesses: 1 });
      });

      it(`a refresh token someone else already used (replay) → ReauthorizationRequiredError (${c.rejection}); later calls fail fast`, async () => {
        t = await start();
        const user = uniqueUser();
        const issued = await t.connectUser(user);
        // Another installation with a copy of the refresh token refreshes first.
        const sibling = await providerForFakeScm(t.scm, t.host).refresh(issued.refreshToken!, { now: t.clock.now(), timeoutMs: 2_000 });
        toForcedRefresh();
        const error = await rejectionOf(t.service.getTokenForHost(user, t.host));
        expect(error).to.be.instanceOf(ReauthorizationRequiredError).and.include({ reason: "invalid_grant", oauthError: c.rejection, host: t.host });
        expect(t.scm.counters.replays).to.equal(1);
        // RFC 9700 §4.14.2: a strict server revokes the whole family on replay, the sibling's tokens included.
        expect(t.scm.isAccessTokenLive(sibling.accessToken)).to.equal(t.scm.profile.replayPolicy !== "reject_and_revoke_family");
        const requests = t.scm.counters.tokenRequests;
        expect(await rejectionOf(t.service.getTokenForHost(user, t.host))).to.be.instanceOf(ReauthorizationRequiredError).and.include({ reason: "marked" });
        expect(t.scm.counters.tokenRequests).to.equal(requests);
        const [row] = await t.rawRows(user);
        expect(row.reauthorizationReason).to.equal("invalid_grant");
      });

      it(`the user revoked the app → ReauthorizationRequiredError (${c.rejection})`, async () => {
        t = await start();
        const user = uniqueUser();
        const issued = await t.connectUser(user);
        t.scm.revokeFamilyOf(issued.accessToken);
        toForcedRefresh();
        expect(await rejectionOf(t.service.getTokenForHost(user, t.host))).to.be.instanceOf(ReauthorizationRequiredError).and.include({ reason: "invalid_grant", oauthError: c.rejection });
      });

      it("wrong client credentials are a configuration error (ScmResponseError), never a dead refresh token", async () => {
        t = await start();
        const rotatedSecret = await FakeScmServer.start({ profile: c.profile, clock: t.clock, clientSecret: "rotated-secret", overrides: c.overrides });
        try {
          const issued = rotatedSecret.issueTokens();
          const error = await rejectionOf(providerForFakeScm(rotatedSecret, t.host).refresh(issued.refreshToken!, { now: t.clock.now(), timeoutMs: 2_000 }));
          expect(error).to.be.instanceOf(ScmResponseError).and.not.be.instanceOf(RefreshRejectedError);
          expect((error as ScmResponseError).oauthError).to.equal(rotatedSecret.profile.errors.invalidClient.body.error);
          expect((error as Error).message).to.contain("check clientId and clientSecret").and.not.contain("test-secret");
        } finally {
          await rotatedSecret.close();
        }
      });

      describe("transient faults: retried, then ScmUnavailableError, nothing stored", () => {
        it("5xx before commit: three attempts, rows unchanged, the same refresh token works afterwards", async () => {
          t = await start();
          const user = uniqueUser();
          const issued = await t.connectUser(user);
          toForcedRefresh();
          const before = await t.rawRows(user);
          t.scm.failNext({ kind: "fail_before_commit", status: 503 }, 3);
          const error = await rejectionOf(t.service.getTokenForHost(user, t.host));
          expect(error).to.be.instanceOf(ScmUnavailableError).and.include({ attempts: 3, lastStatus: 503 });
          expect(await t.rawRows(user)).to.deep.equal(before);
          expect(t.scm.isAccessTokenLive(issued.accessToken)).to.equal(true);
          expect((await t.service.getTokenForHost(user, t.host))!.value).to.not.equal(issued.accessToken);
          expect(await counterValues(t)).to.deep.equal({ "scm_unavailable/false": 1, "success/false": 1 });
        });

        it("429 with Retry-After: each retry waits Retry-After on the service's clock; the error carries it", async () => {
          t = await start();
          const user = uniqueUser();
          await t.connectUser(user);
          toForcedRefresh();
          const before = await t.rawRows(user);
          const startedAt = t.clock.now().getTime();
          t.scm.failNext({ kind: "rate_limited", retryAfterSeconds: 2 }, 3);
          const error = await rejectionOf(t.service.getTokenForHost(user, t.host));
          expect(error).to.be.instanceOf(ScmUnavailableError).and.include({ attempts: 3, lastStatus: 429, retryAfterMs: 2_000 });
          expect(t.clock.now().getTime() - startedAt).to.be.at.least(4_000);
          expect(await t.rawRows(user)).to.deep.equal(before);
          t.scm.failNext({ kind: "rate_limited", retryAfterSeconds: 1 });
          expect(await t.service.getTokenForHost(user, t.host)).to.not.equal(undefined);
          expect(t.scm.counters.refreshSuccesses).to.equal(1);
        });

        it("a hanging SCM: every attempt ends at retry.timeoutMs", async () => {
          t = await start({ serviceOptions: { retry: { timeoutMs: 100, maxAttempts: 2, baseDelayMs: 10 } } });
          const user = uniqueUser();
          await t.connectUser(user);
          toForcedRefresh();
          const before = await t.rawRows(user);
          t.scm.failNext({ kind: "hang" }, 2);
          const error = await rejectionOf(t.service.getTokenForHost(user, t.host));
          expect(error).to.be.instanceOf(ScmUnavailableError).and.include({ attempts: 2, lastStatus: undefined });
          expect((error as Error).message).to.contain("timeout");
          expect(await t.rawRows(user)).to.deep.equal(before);
        });

        it("a proxy's HTML 502 page is a 5xx like any other", async () => {
          t = await start();
          const user = uniqueUser();
          await t.connectUser(user);
          toForcedRefresh();
          const before = await t.rawRows(user);
          t.scm.failNext({ kind: "html_502" }, 3);
          expect(await rejectionOf(t.service.getTokenForHost(user, t.host))).to.be.instanceOf(ScmUnavailableError).and.include({ attempts: 3, lastStatus: 502 });
          expect(await t.rawRows(user)).to.deep.equal(before);
        });

        for (const failure of ["commit_then_reset", "commit_then_fail"] as const) {
          it(`${failure}: the SCM rotated but the answer was lost; the retry meets the rejection → ReauthorizationRequiredError (lost_rotation)`, async () => {
            t = await start();
            const user = uniqueUser();
            const issued = await t.connectUser(user);
            toForcedRefresh();
            t.scm.failNext({ kind: failure });
            const error = await rejectionOf(t.service.getTokenForHost(user, t.host));
            expect(error).to.be.instanceOf(ReauthorizationRequiredError).and.include({ reason: "lost_rotation", oauthError: c.rejection });
            expect(t.scm.counters).to.include({ refreshSuccesses: 1, tokenRequests: 2 });
            const [row] = await t.rawRows(user);
            expect(row.reauthorizationReason).to.equal("lost_rotation");
            expect(t.scm.isAccessTokenLive(issued.accessToken)).to.equal(!c.revokesOnRefresh && t.scm.profile.replayPolicy !== "reject_and_revoke_family");
          });
        }
      });

      for (const failure of ["malformed_json", "empty_body"] as const) {
        it(`${failure} on HTTP 200 → ScmResponseError after one request; the raw row is unchanged`, async () => {
          // Opportunistic refresh off: otherwise the 1-minute hand-out below (token unreserved, inside the horizon) refreshes.
          t = await start({ flags: { opportunisticRefresh: false } });
          const user = uniqueUser();
          const issued = await t.connectUser(user);
          toForcedRefresh();
          const before = await t.rawRows(user);
          t.scm.failNext({ kind: failure });
          const error = await rejectionOf(t.service.getTokenForHost(user, t.host));
          expect(error).to.be.instanceOf(ScmResponseError).and.include({ status: 200 });
          expect(t.scm.counters.tokenRequests).to.equal(1);
          expect(await t.rawRows(user)).to.deep.equal(before);
          expect((await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 1 }))!.value).to.equal(issued.accessToken);
        });
      }

      it("expires_in as a numeric string gives the same expiry", async () => {
        t = await start({ scmOverrides: { responseQuirks: { expiresInAsString: true } } });
        const user = uniqueUser();
        await t.connectUser(user);
        toForcedRefresh();
        const token = await t.service.getTokenForHost(user, t.host);
        expect(token!.expiryDate!.getTime()).to.equal(t.clock.now().getTime() + ttlMs());
      });

      const scopeless = FAKE_SCM_PROFILES[c.profile].responseQuirks.scopeAlwaysEmpty;
      it(scopeless ? "keeps the stored scopes, since the SCM reports none (GitHub Apps' scope is always \"\")" : "takes the scopes the SCM reports on refresh", async () => {
        t = await start();
        const user = uniqueUser();
        const granted = [...t.scm.profile.defaultScopes, "extra_scope"];
        const issued = t.scm.issueTokens({ userId: user, scopes: scopeless ? [] : granted });
        await t.service.storeToken(user, t.host, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt, scopes: ["stored_scope"] });
        toForcedRefresh();
        const token = await t.service.getTokenForHost(user, t.host);
        expect(token!.value).to.not.equal(issued.accessToken);
        expect(token!.scopes).to.deep.equal(scopeless ? ["stored_scope"] : granted);
      });
    });
  }

  describe(`provider contract on ${kind}: GitHubProvider × github_oauth_app (tokens that never expire)`, () => {
    let t: Fixture;
    afterEach(async () => t?.close());

    it("is a GitHubProvider with requiresOpportunisticRefresh false; a token stored without expiry is handed out for ever and never refreshed", async () => {
      t = await serviceOn(kind, { profile: "github_oauth_app", flags: { opportunisticRefresh: true, horizonMinutes: 0 } });
      const provider = providerForFakeScm(t.scm, t.host);
      expect(provider.constructor.name).to.equal("GitHubProvider");
      expect(provider.requiresOpportunisticRefresh).to.equal(false);
      const user = uniqueUser();
      const issued = await t.connectUser(user);
      expect(issued.refreshToken).to.equal(undefined);
      expect(issued.expiresAt).to.equal(undefined);
      for (let day = 0; day < 400; day += 100) {
        const token = await t.service.getTokenForWorkspaceStart(user, t.host);
        expect(token!.value, `day ${day}`).to.equal(issued.accessToken);
        expect(token!.expiryDate).to.equal(undefined);
        t.clock.advance(100 * 24 * 3_600_000);
      }
      expect(t.scm.isAccessTokenLive(issued.accessToken)).to.equal(true);
      expect(t.scm.counters.tokenRequests).to.equal(0);
      expect(await counterValues(t)).to.deep.equal({ "still_valid/false": 4 });
    });

    it("an OAuth App token stored with an expiry cannot be refreshed: ReauthorizationRequiredError (not_refreshable), no SCM call", async () => {
      t = await serviceOn(kind, { profile: "github_oauth_app" });
      const user = uniqueUser();
      await t.service.storeToken(user, t.host, { value: "gho_16C7e42F292c6912E7710c838347Ae178B4a", expiryDate: new Date(t.clock.now().getTime() + 60_000) });
      expect(await rejectionOf(t.service.getTokenForHost(user, t.host))).to.be.instanceOf(ReauthorizationRequiredError).and.include({ reason: "not_refreshable" });
      expect(t.scm.counters.tokenRequests).to.equal(0);
    });
  });

  describe(`provider contract on ${kind}: SCM-specific response quirks`, () => {
    let t: Fixture;
    afterEach(async () => t?.close());

    it("GitLab without expires_in (gitlab#360729): expiry = created_at + 7200 s", async () => {
      t = await serviceOn(kind, { profile: "gitlab", scmOverrides: { responseQuirks: { omitExpiresIn: true } } });
      const user = uniqueUser();
      await t.connectUser(user);
      t.clock.advanceMinutes(117);
      const token = await t.service.getTokenForHost(user, t.host);
      expect(t.scm.counters.refreshSuccesses).to.equal(1);
      expect(token!.expiryDate!.getTime()).to.equal(t.clock.now().getTime() + 7_200_000);
    });

    it("Bitbucket Cloud before 2026-05-04: scopes only in the plural `scopes` field", async () => {
      t = await serviceOn(kind, { profile: "bitbucket_cloud", scmOverrides: { responseQuirks: { scopeField: "scopes" } } });
      const user = uniqueUser();
      const issued = t.scm.issueTokens({ userId: user, scopes: ["account", "repository", "pullrequest"] });
      await t.service.storeToken(user, t.host, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt, scopes: ["account"] });
      t.clock.advanceMinutes(117);
      const token = await t.service.getTokenForHost(user, t.host);
      expect(token!.value).to.not.equal(issued.accessToken);
      expect(token!.scopes).to.deep.equal(["account", "repository", "pullrequest"]);
    });

    it("GitHub App: HTTP 200 with error=bad_refresh_token is a dead refresh token, not a token response", async () => {
      t = await serviceOn(kind, { profile: "github_app_user" });
      const user = uniqueUser();
      const issued = await t.connectUser(user);
      t.scm.revokeFamilyOf(issued.refreshToken!);
      t.clock.advanceMinutes(477);
      const before = await t.rawRows(user);
      const error = await rejectionOf(t.service.getTokenForHost(user, t.host));
      expect(error).to.be.instanceOf(ReauthorizationRequiredError).and.include({ oauthError: "bad_refresh_token" });
      const [after] = await t.rawRows(user);
      expect({ ...after, reauthorizationReason: null }).to.deep.equal(before[0]);
    });
  });
}
