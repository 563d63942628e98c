import { checkOneOfOption, checkOptionalBaseUrl, checkOptionsObject } from "./check-provider-options";
import { normalizeHost } from "./normalize-host";
import { OAuthTokenEndpoint, type TokenResponseQuirks } from "./oauth-token-endpoint";
import { authorizationUrl } from "./authorization-endpoint";
import { deleteGitHubGrant } from "./github-grant-revocation";
import type { AuthorizationUrlRequest, AuthorizingScmProvider, CodeExchangeRequest, RefreshContext, RefreshedToken, RevocationCapability, TokensToRevoke } from "./scm-provider";

/** Which kind of GitHub user token the OAuth application issues. */
export type GitHubTokenKind = "app_user" | "oauth_app";

export interface GitHubProviderOptions {
  /** The host tokens are stored under. Default "github.com"; for GitHub Enterprise Server its host name. */
  host?: string;
  /** Default `https://{host}` (right for github.com and GitHub Enterprise Server); set it for a test server. */
  baseUrl?: string;
  clientId: string;
  clientSecret: string;
  /**
   * "app_user" (default): a GitHub App's user access tokens (`ghu_`), which expire after 8 h and are
   * refreshed with rotating `ghr_` refresh tokens. "oauth_app": an OAuth App's tokens (`gho_`), which
   * never expire and come without a refresh token.
   */
  tokenKind?: GitHubTokenKind;
  /** Allow plain http:// for a non-loopback baseUrl (never do this in production). */
  allowInsecureHttp?: boolean;
  /**
   * The REST API, for revoking on disconnect. Default `https://api.github.com` for github.com,
   * `{baseUrl}/api/v3` otherwise (GitHub Enterprise Server, a test server).
   */
  apiBaseUrl?: string;
}

/**
 * What both kinds share: GitHub answers token-endpoint errors with **HTTP 200** and an
 * `error` field; a dead refresh token is `bad_refresh_token`, not `invalid_grant`.
 * (`incorrect_client_credentials` on a 200 becomes a configuration-style ScmResponseError in the endpoint.)
 */
const GITHUB_ERRORS: TokenResponseQuirks = {
  errorsInHttp200: true,
  rejectedRefreshTokenErrors: ["bad_refresh_token"],
};

const QUIRKS: Record<GitHubTokenKind, TokenResponseQuirks> = {
  // expires_in is documented as 28800 (8 h) and always sent for expiring tokens; the fallback only
  // guards against a response without it (never "forever": that could hand out a dead token).
  // Numeric strings ("28800", old doc samples) are parsed by oauth4webapi.
  app_user: { ...GITHUB_ERRORS, fallbackExpiresInSeconds: 28_800 },
  // OAuth App tokens do not expire: no expires_in means "never".
  oauth_app: { ...GITHUB_ERRORS, missingExpiryMeansNever: true },
};

/**
 * GitHub and GitHub Enterprise Server: `POST {baseUrl}/login/oauth/access_token` with a form body,
 * client credentials in the body and `Accept: application/json` (without it GitHub answers
 * form-encoded).
 *
 * What it encodes (docs/scm-behaviour.md, "GitHub"):
 * - **GitHub App user tokens** (`tokenKind: "app_user"`, the default): a refresh revokes the old access
 *   token and the old refresh token ("both … stop working"), so `requiresOpportunisticRefresh` is true.
 *   A used or expired refresh token gets HTTP 200 `{"error":"bad_refresh_token"}` → RefreshRejectedError
 *   → ReauthorizationRequiredError. GitHub Apps have permissions, not scopes: the response's `scope`
 *   is always "", which is read as "not reported", so the scopes you stored are kept.
 * - **OAuth App tokens** (`tokenKind: "oauth_app"`): they never expire and have no refresh token. Store
 *   them without `expiryDate` and without `refreshToken`: they are handed out for ever and never
 *   refreshed, so `requiresOpportunisticRefresh` is false. (GitHub's 10-tokens-per-user cap revokes the
 *   oldest token when more are minted; this library never mints, it only stores what you give it.)
 * - Not handled: `refresh_token_expires_in` (about 6 months per refresh token; each refresh issues a
 *   new one, so an active user never reaches it) is ignored.
 *
 * @example
 * new GitHubProvider({ clientId: process.env.GITHUB_APP_CLIENT_ID!, clientSecret: process.env.GITHUB_APP_CLIENT_SECRET! });
 * // GitHub Enterprise Server with an OAuth App:
 * new GitHubProvider({ host: "github.example.com", clientId, clientSecret, tokenKind: "oauth_app" });
 */
export class GitHubProvider implements AuthorizingScmProvider {
  readonly host: string;
  readonly requiresOpportunisticRefresh: boolean;
  readonly tokenKind: GitHubTokenKind;
  /**
   * GitHub's grant deletion, `DELETE {apiBaseUrl}/applications/{client_id}/grant`: removes the user's
   * whole authorization of the app (every token of that user for the app). It needs a *live* access
   * token: once the stored one has expired (GitHub App user tokens, 8 h) GitHub cannot find the grant
   * through it and the revocation fails (counted; the user can revoke in their GitHub settings).
   */
  readonly revocation: RevocationCapability;
  private readonly endpoint: OAuthTokenEndpoint;
  private readonly apiBaseUrl: URL;
  private readonly basicAuthorization: () => string;

  constructor(options: GitHubProviderOptions) {
    checkOptionsObject(options, GITHUB_OPTION_KEYS, "GitHubProvider");
    this.host = normalizeHost(options.host ?? "github.com");
    const name = `GitHubProvider(${this.host})`;
    this.tokenKind = options.tokenKind === undefined ? "app_user" : checkOneOfOption(options.tokenKind, ["app_user", "oauth_app"] as const, "tokenKind", name);
    this.requiresOpportunisticRefresh = this.tokenKind === "app_user";
    this.endpoint = new OAuthTokenEndpoint(
      {
        host: this.host,
        baseUrl: checkOptionalBaseUrl(options.baseUrl, name),
        clientId: options.clientId,
        clientSecret: options.clientSecret,
        // GitHub takes client_id/client_secret as parameters; HTTP Basic is not accepted (coder#24334).
        clientAuth: "body",
        allowInsecureHttp: options.allowInsecureHttp,
      },
      "/login/oauth/access_token",
      QUIRKS[this.tokenKind],
    );
    const defaultApi = this.host === "github.com" && options.baseUrl === undefined ? "https://api.github.com" : `${this.endpoint.baseUrl.href.replace(/\/$/, "")}/api/v3`;
    this.apiBaseUrl = this.endpoint.resolve(options.apiBaseUrl ?? defaultApi, "API");
    // The secret stays inside this closure (not a field), like the token endpoint's ClientAuth.
    const basic = `Basic ${Buffer.from(`${options.clientId}:${options.clientSecret}`).toString("base64")}`;
    this.basicAuthorization = () => basic;
    this.revocation = {
      kind: "github_grant",
      endpoint: `${this.apiBaseUrl.href.replace(/\/$/, "")}/applications/{client_id}/grant`,
      note: "deletes the user's authorization of the app (every token of the user for this app); needs the stored access token to be still valid",
    };
  }

  async refresh(refreshToken: string, context: RefreshContext): Promise<RefreshedToken> {
    const token = await this.endpoint.refresh(refreshToken, context);
    return this.tokenKind === "app_user" ? keepStoredScopesForApps(token) : token;
  }

  /**
   * `{baseUrl}/login/oauth/authorize` with PKCE S256. Scopes are space-separated in the request
   * (GitHub reports them comma-separated in token responses); GitHub Apps ignore them (permissions
   * are set on the app).
   */
  authorizationUrl(request: AuthorizationUrlRequest): URL {
    return authorizationUrl(this.endpoint.resolve("/login/oauth/authorize", "authorization"), this.endpoint.clientId, " ", request);
  }

  async exchangeCode(request: CodeExchangeRequest, context: RefreshContext): Promise<RefreshedToken> {
    const token = await this.endpoint.exchangeCode(request, context);
    return this.tokenKind === "app_user" ? keepStoredScopesForApps(token) : token;
  }

  async revoke(tokens: TokensToRevoke, context: RefreshContext): Promise<"revoked"> {
    await deleteGitHubGrant(this.apiBaseUrl, this.endpoint.clientId, this.basicAuthorization, tokens.accessToken, this.host, context);
    return "revoked";
  }
}

const GITHUB_OPTION_KEYS: ReadonlyArray<keyof GitHubProviderOptions> = ["host", "baseUrl", "clientId", "clientSecret", "tokenKind", "allowInsecureHttp", "apiBaseUrl"];

/** GitHub Apps always answer `scope: ""`: that is not "no scopes", it is "not applicable". */
function keepStoredScopesForApps(token: RefreshedToken): RefreshedToken {
  return token.scopes !== undefined && token.scopes.length === 0 ? { ...token, scopes: undefined } : token;
}
