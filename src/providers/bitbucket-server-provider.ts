import { checkOptionsObject } from "./check-provider-options";
import { OAuthTokenEndpoint, OAUTH_CLIENT_OPTION_KEYS, type OAuthClientOptions } from "./oauth-token-endpoint";
import { normalizeHost } from "./normalize-host";
import { authorizationUrl } from "./authorization-endpoint";
import type { AuthorizationUrlRequest, AuthorizingScmProvider, CodeExchangeRequest, RefreshContext, RefreshedToken, RevocationCapability } from "./scm-provider";

/**
 * Bitbucket Data Center / Server (OAuth 2.0 incoming links, 7.20+).
 *
 * Wire format (docs/scm-behaviour.md, "Bitbucket Data Center / Server"): form-encoded `POST {baseUrl}/rest/oauth2/latest/token` (a JSON body
 * gets HTTP 500), client credentials in the body, `redirect_uri` sent when configured because some
 * versions validate it on refresh. A refresh deletes the old access token at once, so this provider
 * requires opportunistic refresh.
 *
 * @example
 * new BitbucketServerProvider({ host: "bitbucket.example.com", clientId: "…", clientSecret: "…" });
 */
export class BitbucketServerProvider implements AuthorizingScmProvider {
  readonly host: string;
  readonly requiresOpportunisticRefresh = true;
  /**
   * Bitbucket DC has no revocation endpoint for OAuth 2.0 incoming links: disconnecting deletes the
   * stored tokens only, and they stay valid at Bitbucket until they expire (access token: 1 h; the
   * refresh token until its own expiry) unless the user revokes the application in their Bitbucket
   * account settings, or an admin deletes the incoming link (which revokes every user's tokens).
   */
  readonly revocation: RevocationCapability = {
    kind: "none",
    note: "Bitbucket Data Center offers no revocation endpoint for OAuth 2.0 incoming links; the user revokes the application in their Bitbucket account settings, or an admin deletes the incoming link",
  };
  private readonly endpoint: OAuthTokenEndpoint;

  constructor(options: OAuthClientOptions) {
    checkOptionsObject(options, OAUTH_CLIENT_OPTION_KEYS, "BitbucketServerProvider");
    this.host = normalizeHost(options.host);
    // Access tokens default to 3600 s; the response always carries expires_in, the fallback is a guard.
    this.endpoint = new OAuthTokenEndpoint(options, "/rest/oauth2/latest/token", { fallbackExpiresInSeconds: 3600 });
  }

  refresh(refreshToken: string, context: RefreshContext): Promise<RefreshedToken> {
    return this.endpoint.refresh(refreshToken, context);
  }

  /** `{baseUrl}/rest/oauth2/latest/authorize` with PKCE S256; scopes space-separated (e.g. "REPO_READ PUBLIC_REPOS"). */
  authorizationUrl(request: AuthorizationUrlRequest): URL {
    return authorizationUrl(this.endpoint.resolve("/rest/oauth2/latest/authorize", "authorization"), this.endpoint.clientId, " ", request);
  }

  exchangeCode(request: CodeExchangeRequest, context: RefreshContext): Promise<RefreshedToken> {
    return this.endpoint.exchangeCode(request, context);
  }

  /** Nothing to call (see `revocation`). */
  revoke(): Promise<"unsupported"> {
    return Promise.resolve("unsupported");
  }
}
