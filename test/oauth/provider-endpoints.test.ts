import { expect } from "chai";
import { ConfigurationError } from "../../src/errors";
import { BitbucketCloudProvider } from "../../src/providers/bitbucket-cloud-provider";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { GitHubProvider } from "../../src/providers/github-provider";
import { GitLabProvider } from "../../src/providers/gitlab-provider";
import { OAuth2Provider } from "../../src/providers/oauth2-provider";
import type { AuthorizingScmProvider } from "../../src/providers/scm-provider";

const CLIENT = { clientId: "app-id", clientSecret: "app-secret" };
const REQUEST = { redirectUri: "https://app.example.com/oauth/callback", state: "s".repeat(64), codeChallenge: "c".repeat(43), scopes: ["read", "write"] };

function query(provider: AuthorizingScmProvider, scopes = REQUEST.scopes): { origin: string; path: string; params: Record<string, string> } {
  const url = provider.authorizationUrl({ ...REQUEST, scopes });
  return { origin: url.origin, path: url.pathname, params: Object.fromEntries(url.searchParams) };
}

describe("oauth: each provider's authorization endpoint, scope syntax and revocation capability", () => {
  const common = { response_type: "code", client_id: "app-id", redirect_uri: REQUEST.redirectUri, state: REQUEST.state, code_challenge: REQUEST.codeChallenge, code_challenge_method: "S256" };

  it("Bitbucket DC: {baseUrl}/rest/oauth2/latest/authorize, space-separated; no revocation", () => {
    const p = new BitbucketServerProvider({ host: "bitbucket.example.com", baseUrl: "https://bitbucket.example.com/bb", ...CLIENT });
    expect(query(p, ["REPO_READ", "PUBLIC_REPOS"])).to.deep.equal({ origin: "https://bitbucket.example.com", path: "/bb/rest/oauth2/latest/authorize", params: { ...common, scope: "REPO_READ PUBLIC_REPOS" } });
    expect(p.revocation.kind).to.equal("none");
  });

  it("GitLab: {baseUrl}/oauth/authorize, space-separated; RFC 7009 at {baseUrl}/oauth/revoke (relative URL kept)", () => {
    const p = new GitLabProvider({ host: "code.example.com", baseUrl: "https://code.example.com/gitlab", ...CLIENT });
    expect(query(p, ["api", "read_repository"])).to.deep.equal({ origin: "https://code.example.com", path: "/gitlab/oauth/authorize", params: { ...common, scope: "api read_repository" } });
    expect(p.revocation).to.include({ kind: "rfc7009", endpoint: "https://code.example.com/gitlab/oauth/revoke" });
  });

  it("GitHub: /login/oauth/authorize, space-separated; grant deletion on api.github.com, or {baseUrl}/api/v3 for Enterprise Server", () => {
    const dotcom = new GitHubProvider(CLIENT);
    expect(query(dotcom, ["repo", "read:org"])).to.deep.equal({ origin: "https://github.com", path: "/login/oauth/authorize", params: { ...common, scope: "repo read:org" } });
    expect(dotcom.revocation).to.include({ kind: "github_grant", endpoint: "https://api.github.com/applications/{client_id}/grant" });
    const ghes = new GitHubProvider({ host: "github.example.com", ...CLIENT, tokenKind: "oauth_app" });
    expect(ghes.revocation.endpoint).to.equal("https://github.example.com/api/v3/applications/{client_id}/grant");
  });

  it("GitHub: the client secret is not readable from the provider (JSON, inspect)", async () => {
    const { inspect } = await import("node:util");
    const p = new GitHubProvider(CLIENT);
    expect(JSON.stringify(p) + inspect(p, { depth: 5 })).not.to.include("app-secret").and.not.to.include(Buffer.from("app-id:app-secret").toString("base64"));
  });

  it("Bitbucket Cloud: https://bitbucket.org/site/oauth2/authorize; no scope parameter when none is requested; no revocation", () => {
    const p = new BitbucketCloudProvider(CLIENT);
    expect(query(p, [])).to.deep.equal({ origin: "https://bitbucket.org", path: "/site/oauth2/authorize", params: common });
    expect(p.revocation.kind).to.equal("none");
  });

  it("OAuth2Provider: authorizeUrl with its own query kept, the configured separator; rfc7009 only with revocationUrl", () => {
    const base = { host: "oauth.example.com", tokenUrl: "https://oauth.example.com/token", ...CLIENT, clientAuth: "body" as const, revokesOnRefresh: true };
    const comma = new OAuth2Provider({ ...base, authorizeUrl: "https://oauth.example.com/authorize?tenant=t1", scopeSeparator: ",", revocationUrl: "https://oauth.example.com/revoke" });
    expect(query(comma)).to.deep.equal({ origin: "https://oauth.example.com", path: "/authorize", params: { tenant: "t1", ...common, scope: "read,write" } });
    expect(comma.revocation).to.include({ kind: "rfc7009", endpoint: "https://oauth.example.com/revoke" });
    const bare = new OAuth2Provider(base);
    expect(bare.revocation.kind).to.equal("none");
    expect(() => bare.authorizationUrl(REQUEST)).to.throw(ConfigurationError, /authorizeUrl/);
    expect(() => new OAuth2Provider({ ...base, authorizeUrl: "http://oauth.example.com/authorize" })).to.throw(ConfigurationError, /plain http/);
    expect(() => new OAuth2Provider({ ...base, scopeSeparator: ";" as " " })).to.throw(ConfigurationError, /scopeSeparator/);
  });
});
