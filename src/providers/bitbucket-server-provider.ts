import { OAuthTokenEndpoint, type OAuthClientOptions } from "./oauth-token-endpoint";
import { normalizeHost } from "./normalize-host";
import type { RefreshContext, RefreshedToken, ScmProvider } from "./scm-provider";

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
export class BitbucketServerProvider implements ScmProvider {
  readonly host: string;
  readonly requiresOpportunisticRefresh = true;
  private readonly endpoint: OAuthTokenEndpoint;

  constructor(options: OAuthClientOptions) {
    this.host = normalizeHost(options.host);
    // Access tokens default to 3600 s; the response always carries expires_in, the fallback is a guard.
    this.endpoint = new OAuthTokenEndpoint(options, "/rest/oauth2/latest/token", { fallbackExpiresInSeconds: 3600 });
  }

  refresh(refreshToken: string, context: RefreshContext): Promise<RefreshedToken> {
    return this.endpoint.refresh(refreshToken, context);
  }
}
