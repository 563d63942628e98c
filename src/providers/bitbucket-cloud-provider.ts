import { checkBooleanOption, checkOptionalBaseUrl, checkOptionsObject } from "./check-provider-options";
import { normalizeHost } from "./normalize-host";
import { OAuthTokenEndpoint, type TokenResponseQuirks } from "./oauth-token-endpoint";
import { authorizationUrl } from "./authorization-endpoint";
import type { AuthorizationUrlRequest, AuthorizingScmProvider, CodeExchangeRequest, RefreshContext, RefreshedToken, RevocationCapability } from "./scm-provider";

export interface BitbucketCloudProviderOptions {
  /** The host tokens are stored under. Default "bitbucket.org". */
  host?: string;
  /** Default `https://{host}`; set it for a test server. */
  baseUrl?: string;
  /** The OAuth consumer's key. */
  clientId: string;
  /** The OAuth consumer's secret. */
  clientSecret: string;
  /**
   * Does a refresh revoke the previous access token? Default false. **Nobody knows yet** (see
   * docs/scm-behaviour.md, "Bitbucket Cloud"): historically Bitbucket Cloud left old access tokens valid until they expired, and
   * refresh tokens did not rotate; since 2026-05-04 refresh tokens rotate, and Atlassian has not said
   * what now happens to the old access token.
   *
   * - `false` (default, the historical behaviour): tokens are refreshed only when they cannot cover a
   *   request, with no waiting for holders. If Bitbucket does revoke on refresh, such a refresh can
   *   break a clone that still uses the old token.
   * - `true` (the safe choice while unverified): treated like GitLab and Bitbucket DC — opportunistic
   *   refresh (with the `opportunistic_token_refresh` flag) and no refresh while someone holds the
   *   token. If Bitbucket does *not* revoke, the cost is a few extra refreshes and short waits, never a
   *   broken token.
   *
   * Check with the fake: `FakeScmServer` profile "bitbucket_cloud" with
   * `overrides: { oldAccessTokenOnRefresh: "revoke_immediately" }` shows what breaks with `false`.
   */
  revokesOnRefresh?: boolean;
  /** Allow plain http:// for a non-loopback baseUrl (never do this in production). */
  allowInsecureHttp?: boolean;
}

/**
 * Bitbucket Cloud's token endpoint, as docs/scm-behaviour.md ("Bitbucket Cloud") describes it:
 * - A dead refresh token gets `{"error":"invalid_request","error_description":"Invalid refresh_token"}`:
 *   the code is `invalid_request`, not `invalid_grant`. Only that description means "re-authorise";
 *   any other `invalid_request` is a mistake in the request and becomes ScmResponseError, so a bug
 *   or a misconfiguration never sends every user to a reconnect prompt.
 * - Scopes come in `scopes` (plural, space-separated) before 2026-05-04 and in `scope` after; both are read.
 * - The non-standard `state` field ("authorization_code", "refresh_token") is ignored.
 * - Access tokens live 7200 s (1 h until about 2018); the response always has `expires_in`, the
 *   fallback only guards against one without it.
 */
const BITBUCKET_CLOUD_OPTION_KEYS: ReadonlyArray<keyof BitbucketCloudProviderOptions> = ["host", "baseUrl", "clientId", "clientSecret", "revokesOnRefresh", "allowInsecureHttp"];

const BITBUCKET_CLOUD_QUIRKS: TokenResponseQuirks = {
  rejectedRefreshTokenErrors: [{ error: "invalid_request", description: /^\s*invalid refresh_token\b/i }],
  extraScopeFields: ["scopes"],
  fallbackExpiresInSeconds: 7200,
};

/**
 * Bitbucket Cloud (bitbucket.org): `POST {baseUrl}/site/oauth2/access_token` with a form body and the
 * OAuth consumer's key and secret as HTTP Basic credentials, the documented way
 * (`curl -u "key:secret"`).
 *
 * Whether a refresh revokes the old access token is unknown since the 2026-05-04 rotation change:
 * see `revokesOnRefresh` (default false; true is the safe choice until someone has checked).
 *
 * @example
 * new BitbucketCloudProvider({
 *   clientId: process.env.BITBUCKET_KEY!,
 *   clientSecret: process.env.BITBUCKET_SECRET!,
 *   revokesOnRefresh: true, // safe while Bitbucket's post-2026 behaviour is unverified
 * });
 */
export class BitbucketCloudProvider implements AuthorizingScmProvider {
  readonly host: string;
  readonly requiresOpportunisticRefresh: boolean;
  /**
   * Bitbucket Cloud documents no token revocation endpoint for OAuth consumers: disconnecting deletes
   * the stored tokens only; the access token stays valid until it expires (2 h) and the refresh token
   * until the user revokes the consumer's access in their Bitbucket settings.
   */
  readonly revocation: RevocationCapability = {
    kind: "none",
    note: "Bitbucket Cloud documents no revocation endpoint for OAuth consumers; the user revokes the app's access in their Bitbucket personal settings",
  };
  private readonly endpoint: OAuthTokenEndpoint;

  constructor(options: BitbucketCloudProviderOptions) {
    checkOptionsObject(options, BITBUCKET_CLOUD_OPTION_KEYS, "BitbucketCloudProvider");
    this.host = normalizeHost(options.host ?? "bitbucket.org");
    const name = `BitbucketCloudProvider(${this.host})`;
    this.requiresOpportunisticRefresh = options.revokesOnRefresh === undefined ? false : checkBooleanOption(options.revokesOnRefresh, "revokesOnRefresh", name);
    this.endpoint = new OAuthTokenEndpoint(
      {
        host: this.host,
        baseUrl: checkOptionalBaseUrl(options.baseUrl, name),
        clientId: options.clientId,
        clientSecret: options.clientSecret,
        clientAuth: "basic",
        allowInsecureHttp: options.allowInsecureHttp,
      },
      "/site/oauth2/access_token",
      BITBUCKET_CLOUD_QUIRKS,
    );
  }

  refresh(refreshToken: string, context: RefreshContext): Promise<RefreshedToken> {
    return this.endpoint.refresh(refreshToken, context);
  }

  /**
   * `{baseUrl}/site/oauth2/authorize` (https://bitbucket.org/site/oauth2/authorize). Scopes are set on
   * the OAuth consumer; requested ones are sent space-separated. PKCE S256 is sent; whether Bitbucket
   * Cloud enforces it is not documented (unknown parameters are ignored, RFC 6749 §3.1).
   */
  authorizationUrl(request: AuthorizationUrlRequest): URL {
    return authorizationUrl(this.endpoint.resolve("/site/oauth2/authorize", "authorization"), this.endpoint.clientId, " ", request);
  }

  exchangeCode(request: CodeExchangeRequest, context: RefreshContext): Promise<RefreshedToken> {
    return this.endpoint.exchangeCode(request, context);
  }

  /** Nothing to call (see `revocation`). */
  revoke(): Promise<"unsupported"> {
    return Promise.resolve("unsupported");
  }
}
