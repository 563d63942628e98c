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
