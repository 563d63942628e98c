import { checkOneOfOption, checkOptionalBaseUrl, checkOptionsObject } from "./check-provider-options";
import { normalizeHost } from "./normalize-host";
import { OAUTH_CLIENT_OPTION_KEYS, OAuthTokenEndpoint, type OAuthClientOptions, type TokenResponseQuirks } from "./oauth-token-endpoint";
import { authorizationUrl } from "./authorization-endpoint";
import type { AuthorizationUrlRequest, AuthorizingScmProvider, CodeExchangeRequest, RefreshContext, RefreshedToken, RevocationCapability, TokensToRevoke } from "./scm-provider";

/** Options of {@link GitLabProvider}: the shared client options (gitlab.com or a self-managed instance). */
export type GitLabProviderOptions = OAuthClientOptions;

/**
 * GitLab's Doorkeeper token endpoint, as docs/scm-behaviour.md ("GitLab") describes it:
 *
 * - `created_at` (Unix seconds) comes with every token: the expiry is `created_at + expires_in` by
 *   GitLab's clock. We take the earlier of that and our own `now + expires_in`, so clock skew can only
 *   make us refresh early.
 * - GitLab #360729: around 15.0 some responses omitted `expires_in`. Every OAuth access token lives
 *   7200 s since GitLab 15.0, so that is the fallback (again counted from `created_at`). A self-managed
 *   instance may shorten the lifetime (`oauth_access_token_expires_in`, 300–7200 s); it then sends
 *   `expires_in`, which always wins.
 */
const GITLAB_QUIRKS: TokenResponseQuirks = {
  useCreatedAt: true,
  fallbackExpiresInSeconds: 7200,
};

/**
 * GitLab (gitlab.com and self-managed, 15.0+): `POST {baseUrl}/oauth/token` with a form body.
 *
 * What it encodes (docs/scm-behaviour.md, "GitLab"):
 * - A refresh revokes the old access token at once (access and refresh token share one Doorkeeper
 *   row), so `requiresOpportunisticRefresh` is true: a held token is never refreshed away.
 * - A replayed, revoked or foreign refresh token gets HTTP 400 `invalid_grant` with a
 *   `WWW-Authenticate: Bearer realm="Doorkeeper", error="invalid_grant"` header; that becomes
 *   RefreshRejectedError (then ReauthorizationRequiredError). Two concurrent refreshes: one wins, the
 *   other gets `invalid_grant` — the service re-reads the entry before believing it.
 * - Expiry from `created_at`, 7200 s when `expires_in` is missing (see GITLAB_QUIRKS).
 * - Client authentication: form body by default; Doorkeeper also takes HTTP Basic (`clientAuth: "basic"`).
 *   `redirectUri` is sent when set (the docs ask for it; Doorkeeper does not check it on refresh).
 *
 * @example
 * new GitLabProvider({ host: "gitlab.com", clientId: process.env.GITLAB_APP_ID!, clientSecret: process.env.GITLAB_APP_SECRET! });
 * // self-managed under a relative URL:
 * new GitLabProvider({ host: "code.example.com", baseUrl: "https://code.example.com/gitlab", clientId, clientSecret });
 */
export class GitLabProvider implements AuthorizingScmProvider {
  readonly host: string;
  readonly requiresOpportunisticRefresh = true;
  /** RFC 7009 at `{baseUrl}/oauth/revoke` (Doorkeeper): the access and refresh token share one row, so revoking either ends both. */
  readonly revocation: RevocationCapability;
  private readonly endpoint: OAuthTokenEndpoint;

  constructor(options: GitLabProviderOptions) {
    checkOptionsObject(options, OAUTH_CLIENT_OPTION_KEYS, "GitLabProvider");
    this.host = normalizeHost(options.host);
    const name = `GitLabProvider(${this.host})`;
    const clientAuth = options.clientAuth === undefined ? "body" : checkOneOfOption(options.clientAuth, ["body", "basic"] as const, "clientAuth", name);
    this.endpoint = new OAuthTokenEndpoint(
      { ...options, host: this.host, baseUrl: checkOptionalBaseUrl(options.baseUrl, name), clientAuth },
      "/oauth/token",
      GITLAB_QUIRKS,
      { revocationUrl: joinPath(checkOptionalBaseUrl(options.baseUrl, name) ?? `https://${this.host}`, "/oauth/revoke") },
    );
    this.revocation = {
      kind: "rfc7009",
      endpoint: this.endpoint.resolve("/oauth/revoke", "revocation").href,
      note: "RFC 7009 (Doorkeeper): revokes the refresh token and the access token; the user's authorization of the application stays listed until they remove it",
    };
  }

  refresh(refreshToken: string, context: RefreshContext): Promise<RefreshedToken> {
    return this.endpoint.refresh(refreshToken, context);
  }

  /** `{baseUrl}/oauth/authorize` with PKCE S256; scopes space-separated (e.g. "api read_repository"). */
  authorizationUrl(request: AuthorizationUrlRequest): URL {
    return authorizationUrl(this.endpoint.resolve("/oauth/authorize", "authorization"), this.endpoint.clientId, " ", request);
  }

  exchangeCode(request: CodeExchangeRequest, context: RefreshContext): Promise<RefreshedToken> {
    return this.endpoint.exchangeCode(request, context);
  }

  async revoke(tokens: TokensToRevoke, context: RefreshContext): Promise<"revoked"> {
    await this.endpoint.revokeRfc7009(tokens, context);
    return "revoked";
  }
}

/** `base` + `path`, keeping the base's own path (GitLab under a relative URL). */
function joinPath(base: string, path: string): string {
  return base.replace(/\/+$/, "") + path;
}
