/** What a successful refresh returns. `refreshToken` is absent when the SCM does not rotate it. */
export interface RefreshedToken {
  accessToken: string;
  refreshToken?: string;
  /** undefined = the SCM says the token does not expire. */
  expiresAt?: Date;
  /** Scopes the SCM reported; undefined = not reported (keep the stored ones). */
  scopes?: string[];
}

/** Per-call context the service hands to a provider. */
export interface RefreshContext {
  now: Date;
  /** Abort the HTTP request after this long (the SCM may still have committed: the result is ambiguous). */
  timeoutMs: number;
}

/**
 * One SCM's token endpoint. Implementations speak HTTP and nothing else: no storage, no clock of
 * their own, no retries (the service retries with its clock).
 */
export interface ScmProvider {
  /** The host users' tokens are stored under, e.g. "bitbucket.example.com" (lower case, may include a port). */
  readonly host: string;
  /**
   * true when a refresh revokes the previous access token at once (Bitbucket DC, GitLab, GitHub App
   * user tokens): such tokens are only refreshed when nobody holds them ("no premature revocation" in docs/how-it-works.md).
   */
  readonly requiresOpportunisticRefresh: boolean;
  /** Exchanges a refresh token; throws RefreshRejectedError, TransientScmError or ScmResponseError. */
  refresh(refreshToken: string, context: RefreshContext): Promise<RefreshedToken>;
}

/** The SCM rejected the refresh token itself (invalid_grant, GitHub's bad_refresh_token, …). */
export class RefreshRejectedError extends Error {
  constructor(
    readonly oauthError: string,
    readonly status: number,
  ) {
    super(`the SCM rejected the refresh token (${oauthError}, HTTP ${status})`);
    this.name = "RefreshRejectedError";
  }
}

/**
 * A failure that may pass: 5xx, 429, timeout, connection reset. `ambiguous` = the SCM may have
 * committed a rotation before failing (5xx after commit, timeout, reset), so a retry with the same
 * refresh token can meet invalid_grant although nobody else refreshed.
 */
export class TransientScmError extends Error {
  constructor(
    readonly status: number | undefined,
    readonly detail: string,
    readonly ambiguous: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(`transient SCM failure: ${detail}`);
    this.name = "TransientScmError";
  }
}

/** What the library asks the SCM for when it starts an authorization (RFC 6749 §4.1.1 with PKCE, RFC 7636). */
export interface AuthorizationUrlRequest {
  /** Where the SCM sends the browser back to; must be registered with the OAuth application. */
  redirectUri: string;
  /** The opaque, single-use value the callback must bring back. */
  state: string;
  /** BASE64URL(SHA-256(code_verifier)), sent with `code_challenge_method=S256`. */
  codeChallenge: string;
  /** Requested scopes; written in the provider's syntax (space- or comma-separated). Empty = the application's defaults. */
  scopes: readonly string[];
}

/** What the library hands a provider to redeem an authorization code. */
export interface CodeExchangeRequest {
  /** The callback's query parameters (`code`, `state`, maybe `iss`). */
  callback: URLSearchParams;
  /** The `state` this authorization was started with (already matched by the library; the provider re-checks `iss` where sent). */
  expectedState: string;
  codeVerifier: string;
  redirectUri: string;
}

/**
 * How a provider can revoke a user's tokens when the user disconnects:
 * - `rfc7009`: an RFC 7009 revocation endpoint; the refresh token is revoked, then the access token.
 * - `github_grant`: GitHub's `DELETE /applications/{client_id}/grant` (HTTP Basic with the client's
 *   id and secret): deletes the user's whole authorization of the application, every token included.
 * - `none`: the SCM offers no way for the application to revoke; the user (or an admin) must revoke it
 *   in the SCM's settings. `note` says where.
 */
export interface RevocationCapability {
  readonly kind: "rfc7009" | "github_grant" | "none";
  /** The endpoint used (absent for "none"). */
  readonly endpoint?: string;
  /** What revocation does, or where the user can revoke by hand. */
  readonly note: string;
}

/** The tokens to revoke on disconnect (decrypted from the store just before it deleted them). */
export interface TokensToRevoke {
  accessToken: string;
  refreshToken?: string;
}

/**
 * A provider that can also run the authorization-code flow and revoke tokens. Every built-in provider
 * is one; a custom {@link ScmProvider} without these methods still works for storing and refreshing.
 */
export interface AuthorizingScmProvider extends ScmProvider {
  readonly revocation: RevocationCapability;
  /** The URL to send the user's browser to. */
  authorizationUrl(request: AuthorizationUrlRequest): URL;
  /**
   * Redeems the code (RFC 6749 §4.1.3, with the PKCE verifier). Throws AuthorizationDeniedError for an
   * error callback, RefreshRejectedError when the SCM rejects the code, TransientScmError or ScmResponseError.
   */
  exchangeCode(request: CodeExchangeRequest, context: RefreshContext): Promise<RefreshedToken>;
  /** Revokes at the SCM; resolves when it confirmed. Throws TransientScmError or ScmResponseError; never for kind "none" (it resolves "unsupported"). */
  revoke(tokens: TokensToRevoke, context: RefreshContext): Promise<"revoked" | "unsupported">;
}

/** Does this provider run the authorization-code flow (every built-in provider does)? */
export function isAuthorizingProvider(provider: ScmProvider): provider is AuthorizingScmProvider {
  const p = provider as Partial<AuthorizingScmProvider>;
  return typeof p.authorizationUrl === "function" && typeof p.exchangeCode === "function" && typeof p.revoke === "function" && typeof p.revocation === "object";
}
