import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { createTokenService } from "../../src/create-token-service";
import { ConfigurationError, ScmResponseError, ScmUnavailableError } from "../../src/errors";
import { BitbucketCloudProvider } from "../../src/providers/bitbucket-cloud-provider";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { GitHubProvider } from "../../src/providers/github-provider";
import { GitLabProvider } from "../../src/providers/gitlab-provider";
import { OAuth2Provider, type OAuth2ProviderOptions } from "../../src/providers/oauth2-provider";
import { RefreshRejectedError, TransientScmError, type RefreshedToken, type ScmProvider } from "../../src/providers/scm-provider";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { FakeClock } from "../../src/testing/fake-clock";
import { errorAnswer, RecordingTokenEndpoint, tokenAnswer } from "./support/recording-token-endpoint";

// Provider-level wire details against a recording token endpoint: what goes out (method, path,
// content type, Accept, client authentication) and how each SCM's answers are read.

const NOW = new Date("2026-01-01T00:00:00.000Z");
const NOW_S = NOW.getTime() / 1000;
const SECRET = "client-secret-Zq8xV3";
const OLD_RT = "old-refresh-token-Kd92";
const context = (timeoutMs = 2_000) => ({ now: NOW, timeoutMs });

let endpoint: RecordingTokenEndpoint;
beforeEach(async () => {
  endpoint = await RecordingTokenEndpoint.start();
});
afterEach(async () => endpoint.close());

async function failure(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(outcome instanceof Error)) throw new Error("expected the refresh to fail");
  return outcome;
}

function gitea(baseUrl: string, overrides: Partial<OAuth2ProviderOptions> = {}): OAuth2Provider {
  return new OAuth2Provider({
    host: "gitea.example.com",
    tokenUrl: `${baseUrl}/login/oauth/access_token`,
    clientId: "test-client",
    clientSecret: SECRET,
    clientAuth: "body",
    revokesOnRefresh: false,
    rejectedRefreshTokenErrors: [{ error: "unauthorized_client", description: /^(token was already used|unable to parse refresh token)$/ }],
    fallbackExpiresInSeconds: 3600,
    ...overrides,
  });
}

interface WireCase {
  name: string;
  make(baseUrl: string): ScmProvider;
  path: string;
  auth: "body" | "basic";
  revokesOnRefresh: boolean;
}

const client = { clientId: "test-client", clientSecret: SECRET };

const WIRE: WireCase[] = [
  { name: "BitbucketServerProvider", make: (b) => new BitbucketServerProvider({ host: "bitbucket.example.com", baseUrl: b, ...client }), path: "/rest/oauth2/latest/token", auth: "body", revokesOnRefresh: true },
  { name: "GitLabProvider", make: (b) => new GitLabProvider({ host: "gitlab.example.com", baseUrl: b, ...client }), path: "/oauth/token", auth: "body", revokesOnRefresh: true },
  { name: "GitLabProvider (clientAuth basic)", make: (b) => new GitLabProvider({ host: "gitlab.example.com", baseUrl: b, ...client, clientAuth: "basic" }), path: "/oauth/token", auth: "basic", revokesOnRefresh: true },
  { name: "GitHubProvider (app_user)", make: (b) => new GitHubProvider({ baseUrl: b, ...client }), path: "/login/oauth/access_token", auth: "body", revokesOnRefresh: true },
  { name: "GitHubProvider (oauth_app)", make: (b) => new GitHubProvider({ baseUrl: b, ...client, tokenKind: "oauth_app" }), path: "/login/oauth/access_token", auth: "body", revokesOnRefresh: false },
  { name: "BitbucketCloudProvider", make: (b) => new BitbucketCloudProvider({ baseUrl: b, ...client }), path: "/site/oauth2/access_token", auth: "basic", revokesOnRefresh: false },
  { name: "BitbucketCloudProvider (revokesOnRefresh)", make: (b) => new BitbucketCloudProvider({ baseUrl: b, ...client, revokesOnRefresh: true }), path: "/site/oauth2/access_token", auth: "basic", revokesOnRefresh: true },
  { name: "OAuth2Provider (body)", make: (b) => gitea(b), path: "/login/oauth/access_token", auth: "body", revokesOnRefresh: false },
  {
    name: "OAuth2Provider (basic)",
    make: (b) => new OAuth2Provider({ host: "oauth.example.com", tokenUrl: `${b}/oauth2/token`, ...client, clientAuth: "basic", revokesOnRefresh: true }),
    path: "/oauth2/token",
    auth: "basic",
    revokesOnRefresh: true,
  },
];

describe("providers on the wire", () => {
  for (const c of WIRE) {
    describe(c.name, () => {
      it(`POSTs a form to ${c.path} with Accept: application/json and ${c.auth} client authentication`, async () => {
        const provider = c.make(endpoint.baseUrl);
        await provider.refresh(OLD_RT, context());
        const req = endpoint.last;
        expect(req.method).to.equal("POST");
        expect(req.url).to.equal(c.path);
        expect(req.headers["content-type"]).to.match(/^application\/x-www-form-urlencoded\b/);
        expect(req.headers.accept).to.contain("application/json");
        expect(req.form).to.include({ grant_type: "refresh_token", refresh_token: OLD_RT });
        if (c.auth === "body") {
          expect(req.form).to.include({ client_id: "test-client", client_secret: SECRET });
          expect(req.headers.authorization).to.equal(undefined);
        } else {
          expect(req.basic).to.deep.equal({ clientId: "test-client", clientSecret: SECRET });
          expect(req.form).to.not.have.property("client_secret");
        }
      });

      it(`says requiresOpportunisticRefresh = ${c.revokesOnRefresh}`, () => {
        expect(c.make(endpoint.baseUrl).requiresOpportunisticRefresh).to.equal(c.revokesOnRefresh);
      });

      it("maps transport failures to TransientScmError: 503 and a reset are ambiguous, 429 carries Retry-After, a refused connection is not ambiguous", async () => {
        const provider = c.make(endpoint.baseUrl);
        endpoint.answer({ status: 503, text: "unavailable", contentType: "text/plain" }, { status: 429, text: "slow down", contentType: "text/plain", headers: { "Retry-After": "7" } }, { reset: true });
        const e503 = await failure(provider.refresh(OLD_RT, context()));
        expect(e503).to.be.instanceOf(TransientScmError).and.include({ status: 503, ambiguous: true });
        const e429 = await failure(provider.refresh(OLD_RT, context()));
        expect(e429).to.be.instanceOf(TransientScmError).and.include({ status: 429, ambiguous: false, retryAfterMs: 7_000 });
        const reset = await failure(provider.refresh(OLD_RT, context()));
        expect(reset).to.be.instanceOf(TransientScmError).and.include({ status: undefined, ambiguous: true });

        const closed = c.make(endpoint.baseUrl);
        await endpoint.close();
        const refused = await failure(closed.refresh(OLD_RT, context()));
        expect(refused).to.be.instanceOf(TransientScmError).and.include({ ambiguous: false });
      });

      it("gives up on a hanging endpoint after timeoutMs (TransientScmError 'timeout')", async () => {
        endpoint.answer({ hang: true });
        const started = Date.now();
        const e = await failure(c.make(endpoint.baseUrl).refresh(OLD_RT, context(150)));
        expect(e).to.be.instanceOf(TransientScmError).and.include({ detail: "timeout", ambiguous: true });
        expect(Date.now() - started).to.be.lessThan(1_500);
      });

      it("rejects unusable 200 answers with ScmResponseError, quoting neither the body nor a secret", async () => {
        const provider = c.make(endpoint.baseUrl);
        const answers = [
          { status: 200, text: "<html><body>Sign in to continue</body></html>", contentType: "text/html" },
          { status: 200, text: "", contentType: "application/json" },
          { status: 200, text: '{"access_token":"trunc', contentType: "application/json" },
          tokenAnswer({ access_token: undefined }),
          tokenAnswer({ token_type: "mac" }),
          tokenAnswer({ expires_in: "soon" }),
        ];
        endpoint.answer(...answers);
        for (const [i] of answers.entries()) {
          const e = await failure(provider.refresh(OLD_RT, context()));
          expect(e, `answer ${i}`).to.be.instanceOf(ScmResponseError);
          for (const secret of [SECRET, OLD_RT, "Sign in", "trunc", "new-access-token", "new-refresh-token"]) expect(e.message, `answer ${i}`).to.not.contain(secret);
        }
      });

      it("keeps the client secret out of JSON.stringify and util.inspect", () => {
        const provider = c.make(endpoint.baseUrl);
        expect(JSON.stringify(provider)).to.not.contain(SECRET);
        expect(inspect(provider, { depth: 10, showHidden: true })).to.not.contain(SECRET);
      });

      it("treats invalid_grant as a dead refresh token (RefreshRejectedError) and invalid_client as configuration (ScmResponseError)", async () => {
        const provider = c.make(endpoint.baseUrl);
        endpoint.answer(errorAnswer(400, "invalid_grant", "gone"), errorAnswer(401, "invalid_client", "Client authentication failed."));
        expect(await failure(provider.refresh(OLD_RT, context()))).to.be.instanceOf(RefreshRejectedError).and.include({ oauthError: "invalid_grant", status: 400 });
        const e = await failure(provider.refresh(OLD_RT, context()));
        expect(e).to.be.instanceOf(ScmResponseError).and.include({ oauthError: "invalid_client", status: 401 });
        expect(e.message).to.contain("check clientId and clientSecret");
      });
    });
  }
});

describe("GitLabProvider", () => {
  const make = (extra: Partial<ConstructorParameters<typeof GitLabProvider>[0]> = {}) =>
    new GitLabProvider({ host: "gitlab.example.com", baseUrl: endpoint.baseUrl, ...client, ...extra });

  it("takes the expiry from created_at when GitLab's clock is behind ours (the earlier of both)", async () => {
    endpoint.answer(tokenAnswer({ expires_in: 7200, created_at: NOW_S - 600, token_type: "Bearer" }));
    const token = await make().refresh(OLD_RT, context());
    expect(token.expiresAt!.toISOString()).to.equal(new Date(NOW.getTime() + 6600_000).toISOString());
  });

  it("takes now + expires_in when GitLab's clock is ahead (never later than our own view)", async () => {
    endpoint.answer(tokenAnswer({ expires_in: 7200, created_at: NOW_S + 600 }));
    const token = await make().refresh(OLD_RT, context());
    expect(token.expiresAt!.getTime()).to.equal(NOW.getTime() + 7200_000);
  });

  it("falls back to created_at + 7200 s when expires_in is missing (gitlab#360729)", async () => {
    endpoint.answer(tokenAnswer({ expires_in: undefined, created_at: NOW_S - 60 }));
    const token = await make().refresh(OLD_RT, context());
    expect(token.expiresAt!.getTime()).to.equal((NOW_S - 60 + 7200) * 1000);
  });

  it("reads Doorkeeper's 400 invalid_grant with WWW-Authenticate as a dead refresh token", async () => {
    const description =
      "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.";
    endpoint.answer(errorAnswer(400, "invalid_grant", description, { "WWW-Authenticate": `Bearer realm="Doorkeeper", error="invalid_grant", error_description="${description}"` }));
    expect(await failure(make().refresh(OLD_RT, context()))).to.be.instanceOf(RefreshRejectedError).and.include({ oauthError: "invalid_grant", status: 400 });
  });

  it("sends redirect_uri when configured, and resolves paths under a relative-URL base", async () => {
    const provider = new GitLabProvider({ host: "code.example.com", baseUrl: `${endpoint.baseUrl}/gitlab`, ...client, redirectUri: "https://app.example.com/cb" });
    await provider.refresh(OLD_RT, context());
    expect(endpoint.last.url).to.equal("/gitlab/oauth/token");
    expect(endpoint.last.form.redirect_uri).to.equal("https://app.example.com/cb");
  });

  it("rejects bad options with ConfigurationError at construction", () => {
    expect(() => make({ clientAuth: "query" as never })).to.throw(ConfigurationError, /clientAuth must be one of "body", "basic"/);
    expect(() => make({ baseUrl: "gitlab.example.com" })).to.throw(ConfigurationError, /baseUrl must be an absolute/);
    expect(() => make({ baseUrl: "https://user:pw-Xy@gitlab.example.com" })).to.throw(ConfigurationError, /must not contain credentials/).and.satisfy((e: Error) => !e.message.includes("pw-Xy"));
    expect(() => make({ clientSecret: "" })).to.throw(ConfigurationError, /clientSecret/);
    expect(() => new GitLabProvider({ host: "https://gitlab.com", ...client })).to.throw(ConfigurationError, /host name/);
  });
});

describe("GitHubProvider", () => {
  it("defaults to github.com, app user tokens and https://github.com", () => {
    const provider = new GitHubProvider(client);
    expect(provider.host).to.equal("github.com");
    expect(provider.tokenKind).to.equal("app_user");
    expect(provider.requiresOpportunisticRefresh).to.equal(true);
  });

  it("recognises GitHub's HTTP 200 bad_refresh_token as a dead refresh token", async () => {
    endpoint.answer(errorAnswer(200, "bad_refresh_token", "The refresh token passed is incorrect or expired."));
    const e = await failure(new GitHubProvider({ baseUrl: endpoint.baseUrl, ...client }).refresh(OLD_RT, context()));
    expect(e).to.be.instanceOf(RefreshRejectedError).and.include({ oauthError: "bad_refresh_token", status: 200 });
  });

  it("reads HTTP 200 incorrect_client_credentials as a configuration error, not a dead refresh token", async () => {
    endpoint.answer(errorAnswer(200, "incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect."));
    const e = await failure(new GitHubProvider({ baseUrl: endpoint.baseUrl, ...client }).refresh(OLD_RT, context()));
    expect(e).to.be.instanceOf(ScmResponseError).and.include({ oauthError: "incorrect_client_credentials", status: 200 });
    expect(e.message).to.contain("check clientId and clientSecret for github.com");
  });

  it("reads other HTTP 200 errors (redirect_uri_mismatch) as ScmResponseError", async () => {
    endpoint.answer(errorAnswer(200, "redirect_uri_mismatch"));
    const e = await failure(new GitHubProvider({ baseUrl: endpoint.baseUrl, ...client }).refresh(OLD_RT, context()));
    expect(e).to.be.instanceOf(ScmResponseError).and.include({ oauthError: "redirect_uri_mismatch" });
  });

  it("parses expires_in given as a numeric string (old GitHub samples)", async () => {
    endpoint.answer(tokenAnswer({ expires_in: "28800", refresh_token_expires_in: "15897600", scope: "" }));
    const token = await new GitHubProvider({ baseUrl: endpoint.baseUrl, ...client }).refresh(OLD_RT, context());
    expect(token.expiresAt!.getTime()).to.equal(NOW.getTime() + 28_800_000);
  });

  it("app_user: reads GitHub Apps' empty scope as 'not reported' (the stored scopes stay); a missing expires_in means 8 h", async () => {
    endpoint.answer(tokenAnswer({ scope: "", expires_in: undefined }));
    const token: RefreshedToken = await new GitHubProvider({ baseUrl: endpoint.baseUrl, ...client }).refresh(OLD_RT, context());
    expect(token.scopes).to.equal(undefined);
    expect(token.expiresAt!.getTime()).to.equal(NOW.getTime() + 28_800_000);
  });

  it("oauth_app: a response without expires_in is a token that never expires; comma-separated scopes are split", async () => {
    endpoint.answer(tokenAnswer({ expires_in: undefined, refresh_token: undefined, scope: "repo,gist" }));
    const token = await new GitHubProvider({ baseUrl: endpoint.baseUrl, ...client, tokenKind: "oauth_app" }).refresh(OLD_RT, context());
    expect(token.expiresAt).to.equal(undefined);
    expect(token.refreshToken).to.equal(undefined);
    expect(token.scopes).to.deep.equal(["repo", "gist"]);
  });

  it("GitHub Enterprise Server: https://HOST/login/oauth/access_token by default, baseUrl for anything else", async () => {
    const ghes = new GitHubProvider({ host: "GitHub.Example.com", ...client });
    expect(ghes.host).to.equal("github.example.com");
    expect(inspect(ghes, { depth: 5 })).to.contain("https://github.example.com/login/oauth/access_token");
    await new GitHubProvider({ host: "github.example.com", baseUrl: `${endpoint.baseUrl}/`, ...client }).refresh(OLD_RT, context());
    expect(endpoint.last.url).to.equal("/login/oauth/access_token");
  });

  it("rejects an unknown tokenKind", () => {
    expect(() => new GitHubProvider({ ...client, tokenKind: "installation" as never })).to.throw(ConfigurationError, /tokenKind/);
  });
});

describe("BitbucketCloudProvider", () => {
  const make = (revokesOnRefresh?: boolean) => new BitbucketCloudProvider({ baseUrl: endpoint.baseUrl, ...client, revokesOnRefresh });

  it("defaults to bitbucket.org and revokesOnRefresh false", () => {
    const provider = new BitbucketCloudProvider(client);
    expect(provider.host).to.equal("bitbucket.org");
    expect(provider.requiresOpportunisticRefresh).to.equal(false);
    expect(() => new BitbucketCloudProvider({ ...client, revokesOnRefresh: "yes" as never })).to.throw(ConfigurationError, /revokesOnRefresh must be true or false/);
  });

  it("reads invalid_request 'Invalid refresh_token' as a dead refresh token, and no other invalid_request", async () => {
    endpoint.answer(errorAnswer(400, "invalid_request", "Invalid refresh_token"), errorAnswer(400, "invalid_request", "Missing grant_type"), errorAnswer(400, "invalid_request"));
    expect(await failure(make().refresh(OLD_RT, context()))).to.be.instanceOf(RefreshRejectedError).and.include({ oauthError: "invalid_request", status: 400 });
    expect(await failure(make().refresh(OLD_RT, context()))).to.be.instanceOf(ScmResponseError).and.include({ oauthError: "invalid_request" });
    expect(await failure(make().refresh(OLD_RT, context()))).to.be.instanceOf(ScmResponseError).and.include({ oauthError: "invalid_request" });
  });

  it("reads scopes from `scopes` (before 2026-05-04) and from `scope` (after)", async () => {
    endpoint.answer(tokenAnswer({ scope: undefined, scopes: "account repository", state: "refresh_token" }), tokenAnswer({ scope: "account pullrequest" }));
    expect((await make().refresh(OLD_RT, context())).scopes).to.deep.equal(["account", "repository"]);
    expect((await make().refresh(OLD_RT, context())).scopes).to.deep.equal(["account", "pullrequest"]);
  });
});

describe("OAuth2Provider", () => {
  it("configured for Gitea's strict mode: 'token was already used' is a dead refresh token, 'invalid client secret' is configuration", async () => {
    endpoint.answer(
      errorAnswer(400, "unauthorized_client", "token was already used"),
      errorAnswer(400, "unauthorized_client", "unable to parse refresh token"),
      errorAnswer(400, "unauthorized_client", "invalid client secret"),
      errorAnswer(400, "invalid_grant", "grant does not exist"),
    );
    const provider = gitea(endpoint.baseUrl);
    expect(await failure(provider.refresh(OLD_RT, context()))).to.be.instanceOf(RefreshRejectedError).and.include({ oauthError: "unauthorized_client" });
    expect(await failure(provider.refresh(OLD_RT, context()))).to.be.instanceOf(RefreshRejectedError).and.include({ oauthError: "unauthorized_client" });
    const config = await failure(provider.refresh(OLD_RT, context()));
    expect(config).to.be.instanceOf(ScmResponseError).and.include({ oauthError: "unauthorized_client" });
    expect(config.message).to.contain("check clientId and clientSecret");
    expect(await failure(provider.refresh(OLD_RT, context()))).to.be.instanceOf(RefreshRejectedError).and.include({ oauthError: "invalid_grant" });
  });

  it("matches plain error codes too (rejectedRefreshTokenErrors: ['expired_token'])", async () => {
    endpoint.answer(errorAnswer(400, "expired_token"));
    const provider = gitea(endpoint.baseUrl, { rejectedRefreshTokenErrors: ["expired_token"] });
    expect(await failure(provider.refresh(OLD_RT, context()))).to.be.instanceOf(RefreshRejectedError).and.include({ oauthError: "expired_token" });
  });

  it("uses fallbackExpiresInSeconds for a response without expires_in, and refuses to guess without it", async () => {
    endpoint.answer(tokenAnswer({ expires_in: undefined }), tokenAnswer({ expires_in: undefined }));
    expect((await gitea(endpoint.baseUrl).refresh(OLD_RT, context())).expiresAt!.getTime()).to.equal(NOW.getTime() + 3_600_000);
    const e = await failure(gitea(endpoint.baseUrl, { fallbackExpiresInSeconds: undefined }).refresh(OLD_RT, context()));
    expect(e).to.be.instanceOf(ScmResponseError);
    expect(e.message).to.contain("no expires_in");
  });

  it("keeps the token URL's path and query", async () => {
    const provider = new OAuth2Provider({ host: "sso.example.com", tokenUrl: `${endpoint.baseUrl}/realms/dev/token?tenant=a`, ...client, clientAuth: "body", revokesOnRefresh: true });
    await provider.refresh(OLD_RT, context());
    expect(endpoint.last.url).to.equal("/realms/dev/token?tenant=a");
  });

  it("rejects missing or bad options with ConfigurationError", () => {
    const base = { host: "sso.example.com", tokenUrl: "https://sso.example.com/token", ...client, clientAuth: "body" as const, revokesOnRefresh: true };
    expect(() => new OAuth2Provider({ ...base, revokesOnRefresh: undefined as never })).to.throw(ConfigurationError, /revokesOnRefresh must be true or false/);
    expect(() => new OAuth2Provider({ ...base, clientAuth: undefined as never })).to.throw(ConfigurationError, /clientAuth/);
    expect(() => new OAuth2Provider({ ...base, tokenUrl: "/token" })).to.throw(ConfigurationError, /tokenUrl must be an absolute/);
    expect(() => new OAuth2Provider({ ...base, tokenUrl: "http://sso.example.com/token" })).to.throw(ConfigurationError, /plain http/);
    expect(() => new OAuth2Provider({ ...base, fallbackExpiresInSeconds: 1e9 })).to.throw(ConfigurationError, /fallbackExpiresInSeconds/);
    expect(() => new OAuth2Provider({ ...base, rejectedRefreshTokenErrors: [{ error: "x" } as never] })).to.throw(ConfigurationError, /rejectedRefreshTokenErrors/);
  });
});

describe("a provider behind a service", () => {
  it("a connection reset on every attempt: bounded retries, then ScmUnavailableError; the stored token is unchanged", async () => {
    const clock = new FakeClock(NOW);
    const service = await createTokenService({
      providers: [new GitLabProvider({ host: "gitlab.example.com", baseUrl: endpoint.baseUrl, ...client })],
      encryptionKeys: [{ id: "k1", key: randomBytes(32).toString("base64") }],
      clock,
      retry: { maxAttempts: 3, baseDelayMs: 10 },
      // Opportunistic refresh off: otherwise the 30-second hand-out below (token unreserved, inside the horizon) refreshes.
      flags: new StaticFeatureFlags({ opportunisticRefresh: false }),
    });
    try {
      await service.storeToken("u1", "gitlab.example.com", { value: "stored-access-token", refreshToken: OLD_RT, expiryDate: new Date(NOW.getTime() + 60_000) });
      endpoint.answer({ reset: true }, { reset: true }, { reset: true });
      const e = await failure(service.getTokenForHost("u1", "gitlab.example.com"));
      expect(e).to.be.instanceOf(ScmUnavailableError).and.include({ attempts: 3 });
      expect(endpoint.requests).to.have.length(3);
      expect(endpoint.requests.every((r) => r.form.refresh_token === OLD_RT)).to.equal(true);
      expect((await service.getTokenForHost("u1", "gitlab.example.com", { lifetimeMinutes: 0.5 }))!.value).to.equal("stored-access-token");
    } finally {
      await service.close();
    }
  });
});
