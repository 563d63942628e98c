import { ConfigurationError } from "../errors";
import { checkBooleanOption, checkOneOfOption, checkOptionalSeconds, checkOptionsObject, checkUrlOption } from "./check-provider-options";
import { normalizeHost } from "./normalize-host";
import { OAuthTokenEndpoint, type RejectedRefreshTokenError } from "./oauth-token-endpoint";
import { authorizationUrl, type ScopeSeparator } from "./authorization-endpoint";
import type { AuthorizationUrlRequest, AuthorizingScmProvider, CodeExchangeRequest, RefreshContext, RefreshedToken, RevocationCapability, TokensToRevoke } from "./scm-provider";

export interface OAuth2ProviderOptions {
  /** The host tokens are stored under, e.g. "gitea.example.com". */
  host: string;
  /** The token endpoint, e.g. "https://gitea.example.com/login/oauth/access_token". */
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** Where the client credentials go: the form body (`client_id`, `client_secret`) or HTTP Basic. */
  clientAuth: "body" | "basic";
  /**
   * Does a refresh revoke the previous access token at once? true → the token is refreshed only when
   * nobody holds it (opportunistic refresh); false → old access tokens stay valid until they expire
   * (stateless JWTs: Gitea/Forgejo, Entra ID; see docs/scm-behaviour.md). When unsure, say true: it costs
   * a few extra refreshes, false can break a token someone still uses.
   */
  revokesOnRefresh: boolean;
  /**
   * OAuth errors besides `invalid_grant` that mean "this refresh token is dead" (the user must
   * authorise again). Match the description too when the code is also used for other failures.
   */
  rejectedRefreshTokenErrors?: readonly RejectedRefreshTokenError[];
  /**
   * The access-token lifetime to assume when a response has no `expires_in`, in seconds. Without it,
   * such a response is rejected (ScmResponseError) rather than guessed at (RFC 6749 §5.1 leaves
   * `expires_in` optional when the server documents a default).
   */
  fallbackExpiresInSeconds?: number;
  /** Sent as `redirect_uri` on refresh when set. */
  redirectUri?: string;
  /** Allow plain http:// for a non-loopback tokenUrl (never do this in production). */
  allowInsecureHttp?: boolean;
  /** The authorization endpoint, for the connect flow, e.g. "https://gitea.example.com/login/oauth/authorize". */
  authorizeUrl?: string;
  /** How the authorization request joins scopes: " " (RFC 6749 §3.3, default) or "," (some servers). */
  scopeSeparator?: ScopeSeparator;
  /** An RFC 7009 revocation endpoint; without it, disconnect only deletes (revocation kind "none"). */
  revocationUrl?: string;
  /**
   * The server's issuer identifier, checked against the callback's `iss` parameter (RFC 9207) when the
   * server sends one. Default: the origin of `tokenUrl`.
   */
  issuer?: string;
}

/**
 * Any RFC 6749 §6 authorization server: the refresh grant with a form body, standard JSON answers
 * and errors. Everything provider-specific is an option: where the endpoint is, how the client
 * authenticates, whether a refresh revokes the old access token, which extra errors mean "dead
 * refresh token", and the default lifetime.
 *
 * @example
 * // Gitea / Forgejo. Access tokens are stateless JWTs: a refresh leaves the old one
 * // valid until it expires. With [oauth2] INVALIDATE_REFRESH_TOKENS = true, a used refresh token gets
 * // 400 unauthorized_client "token was already used"; Gitea uses the same code for a wrong client
 * // secret ("invalid client secret"), which must not count as a dead refresh token.
 * new OAuth2Provider({
 *   host: "gitea.example.com",
 *   tokenUrl: "https://gitea.example.com/login/oauth/access_token",
 *   clientId: process.env.GITEA_CLIENT_ID!,
 *   clientSecret: process.env.GITEA_CLIENT_SECRET!,
 *   clientAuth: "body",
 *   revokesOnRefresh: false,
 *   rejectedRefreshTokenErrors: [{ error: "unauthorized_client", description: /^(token was already used|unable to parse refresh token)$/ }],
 *   fallbackExpiresInSeconds: 3600, // ACCESS_TOKEN_EXPIRATION_TIME's default
 * });
 */
export class OAuth2Provider implements AuthorizingScmProvider {
  readonly host: string;
  readonly requiresOpportunisticRefresh: boolean;
  /** "rfc7009" when `revocationUrl` is set, else "none". */
  readonly revocation: RevocationCapability;
  private readonly endpoint: OAuthTokenEndpoint;
  private readonly authorizeEndpoint: URL | undefined;
  private readonly scopeSeparator: ScopeSeparator;

  constructor(options: OAuth2ProviderOptions) {
    checkOptionsObject(options, OAUTH2_OPTION_KEYS, "OAuth2Provider");
    this.host = normalizeHost(options.host);
    const name = `OAuth2Provider(${this.host})`;
    const tokenUrl = checkUrlOption(options.tokenUrl, "tokenUrl", name);
    if (tokenUrl.hash !== "") throw new ConfigurationError(`${name}: tokenUrl must not have a #fragment`);
    this.requiresOpportunisticRefresh = checkBooleanOption(options.revokesOnRefresh, "revokesOnRefresh", name);
    const rejected = options.rejectedRefreshTokenErrors ?? [];
    if (!Array.isArray(rejected) || !rejected.every(isRejectionRule)) {
      throw new ConfigurationError(`${name}: rejectedRefreshTokenErrors must be a list of OAuth error codes or { error, description } objects`);
    }
    this.endpoint = new OAuthTokenEndpoint(
      {
        host: this.host,
        baseUrl: tokenUrl.origin,
        clientId: options.clientId,
        clientSecret: options.clientSecret,
        clientAuth: checkOneOfOption(options.clientAuth, ["body", "basic"] as const, "clientAuth", name),
        redirectUri: options.redirectUri,
        allowInsecureHttp: options.allowInsecureHttp,
      },
      // An absolute URL: the endpoint resolves it as is (query included).
      tokenUrl.href,
      {
        rejectedRefreshTokenErrors: rejected,
        fallbackExpiresInSeconds: checkOptionalSeconds(options.fallbackExpiresInSeconds, "fallbackExpiresInSeconds", name),
      },
      {
        revocationUrl: options.revocationUrl === undefined ? undefined : checkUrlOption(options.revocationUrl, "revocationUrl", name).href,
        issuer: options.issuer === undefined ? undefined : checkUrlOption(options.issuer, "issuer", name).href.replace(/\/$/, ""),
      },
    );
    this.authorizeEndpoint = options.authorizeUrl === undefined ? undefined : this.endpoint.resolve(checkUrlOption(options.authorizeUrl, "authorizeUrl", name).href, "authorization");
    this.scopeSeparator = options.scopeSeparator === undefined ? " " : checkOneOfOption(options.scopeSeparator, [" ", ","] as const, "scopeSeparator", name);
    this.revocation =
      options.revocationUrl === undefined
        ? { kind: "none", note: "no revocationUrl configured: disconnect deletes the stored tokens only" }
        : { kind: "rfc7009", endpoint: options.revocationUrl, note: "RFC 7009: revokes the refresh token (a compliant server ends the grant), then the access token" };
  }

  refresh(refreshToken: string, context: RefreshContext): Promise<RefreshedToken> {
    return this.endpoint.refresh(refreshToken, context);
  }

  /** `authorizeUrl` with PKCE S256 and the scopes joined by `scopeSeparator`; ConfigurationError without `authorizeUrl`. */
  authorizationUrl(request: AuthorizationUrlRequest): URL {
    if (!this.authorizeEndpoint) throw new ConfigurationError(`OAuth2Provider(${this.host}): set authorizeUrl to start authorizations`, "authorizeUrl");
    return authorizationUrl(this.authorizeEndpoint, this.endpoint.clientId, this.scopeSeparator, request);
  }

  exchangeCode(request: CodeExchangeRequest, context: RefreshContext): Promise<RefreshedToken> {
    return this.endpoint.exchangeCode(request, context);
  }

  async revoke(tokens: TokensToRevoke, context: RefreshContext): Promise<"revoked" | "unsupported"> {
    if (this.revocation.kind === "none") return "unsupported";
    await this.endpoint.revokeRfc7009(tokens, context);
    return "revoked";
  }
}

const OAUTH2_OPTION_KEYS: ReadonlyArray<keyof OAuth2ProviderOptions> = [
  "host",
  "tokenUrl",
  "clientId",
  "clientSecret",
  "clientAuth",
  "revokesOnRefresh",
  "rejectedRefreshTokenErrors",
  "fallbackExpiresInSeconds",
  "redirectUri",
  "allowInsecureHttp",
  "authorizeUrl",
  "scopeSeparator",
  "revocationUrl",
  "issuer",
];

function isRejectionRule(rule: unknown): rule is RejectedRefreshTokenError {
  if (typeof rule === "string") return rule !== "";
  if (typeof rule !== "object" || rule === null) return false;
  const { error, description } = rule as { error?: unknown; description?: unknown };
  return typeof error === "string" && error !== "" && (typeof description === "string" || description instanceof RegExp);
}
