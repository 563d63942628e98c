/**
 * Every error the library throws is a TokenServiceError with a stable `code`. Messages say what
 * to do; they never contain a token, a refresh token or a client secret.
 *
 * @example
 * try { await service.getTokenForHost(userId, host); }
 * catch (e) { if (e instanceof ReauthorizationRequiredError) askUserToReconnect(e.host); }
 */
export type TokenServiceErrorCode =
  | "INVALID_ARGUMENT"
  | "REAUTHORIZATION_REQUIRED"
  | "SCM_UNAVAILABLE"
  | "SCM_BAD_RESPONSE"
  | "TOKEN_HELD"
  | "DECRYPTION_FAILED"
  | "CONFIGURATION"
  | "REFRESH_IN_PROGRESS"
  | "STORAGE"
  | "AUTHORIZATION_STATE_INVALID"
  | "AUTHORIZATION_DENIED"
  | "AUTHORIZATION_CODE_REJECTED";

export class TokenServiceError extends Error {
  constructor(
    readonly code: TokenServiceErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`scm-token-service: ${message}`, options);
    this.name = new.target.name;
  }
}

/** A caller passed something unusable (empty id, unknown host, bad lifetime). Nothing was changed. */
export class InvalidArgumentError extends TokenServiceError {
  constructor(
    readonly argument: string,
    message: string,
  ) {
    super("INVALID_ARGUMENT", message);
  }
}

/** Why a refresh token is no longer usable. */
export type ReauthorizationReason =
  | "invalid_grant"          // the SCM rejected the refresh token (revoked, expired, replayed)
  | "not_refreshable"        // the stored token expired and there is no refresh token
  | "lost_rotation"          // the SCM rotated the token but the response never reached the store
  | "marked";                // an earlier call already found the refresh token dead

/**
 * The user must authorise the SCM again: the stored refresh token is dead. Show a "reconnect"
 * prompt for `host`; retrying will not help. The entry is marked so further calls fail fast.
 */
export class ReauthorizationRequiredError extends TokenServiceError {
  constructor(
    readonly host: string,
    readonly reason: ReauthorizationReason,
    readonly oauthError?: string,
  ) {
    super(
      "REAUTHORIZATION_REQUIRED",
      `the stored token for ${host} can no longer be refreshed (${reason}${oauthError ? `: ${oauthError}` : ""}); ` +
        `the user must authorise ${host} again, then call storeToken() with the new token`,
    );
  }
}

/** The SCM did not answer usefully after bounded retries. The stored token is untouched; retry later. */
export class ScmUnavailableError extends TokenServiceError {
  constructor(
    readonly host: string,
    readonly attempts: number,
    readonly lastStatus: number | undefined,
    detail: string,
    readonly retryAfterMs?: number,
  ) {
    super("SCM_UNAVAILABLE", `${host} did not complete the token refresh after ${attempts} attempt(s) (${detail}); the stored token is unchanged, retry later`);
  }
}

/** The SCM answered with something that is not a valid token response. Nothing was stored. */
export class ScmResponseError extends TokenServiceError {
  constructor(
    readonly host: string,
    readonly status: number,
    detail: string,
    readonly oauthError?: string,
  ) {
    super("SCM_BAD_RESPONSE", `${host} answered the token refresh with an unusable response (HTTP ${status}: ${detail}); nothing was stored`);
  }
}

/**
 * The token cannot cover the requested lifetime, and refreshing it now would revoke a copy that
 * another caller still holds until `heldUntil`. Retry after that instant, raise `maxWaitMs`, or
 * pass `ifHeld: "break"` to refresh anyway.
 */
export class TokenHeldError extends TokenServiceError {
  constructor(
    readonly host: string,
    readonly heldUntil: Date,
  ) {
    super("TOKEN_HELD", `the token for ${host} is held by another caller until ${heldUntil.toISOString()}; retry after then, allow a longer maxWaitMs, or pass ifHeld: "break"`);
  }
}

/** A stored token could not be decrypted: the key it names is missing from the key ring, or the row was tampered with. */
export class DecryptionError extends TokenServiceError {
  constructor(message: string) {
    super("DECRYPTION_FAILED", message);
  }
}

/**
 * The service was configured wrongly (missing key, bad option). Raised at start-up. `option` names
 * the option at fault (e.g. "retry.maxAttempts", "providers[1]") when one option is to blame.
 */
export class ConfigurationError extends TokenServiceError {
  constructor(
    message: string,
    readonly option?: string,
  ) {
    super("CONFIGURATION", message);
  }
}

/** Another replica holds the refresh lease and did not finish within the wait budget. */
export class RefreshInProgressError extends TokenServiceError {
  constructor(readonly host: string, waitedMs: number) {
    super("REFRESH_IN_PROGRESS", `another process is refreshing the token for ${host} and did not finish within ${waitedMs} ms; retry shortly`);
  }
}

/**
 * The database failed (connection lost, lock-wait timeout, deadlock, statement deadline, missing
 * table). `transient` errors may be retried: the statement did nothing, or (connection lost
 * mid-statement, `STATEMENT_TIMEOUT`) its outcome is unknown — the library's writes are conditional,
 * so a retry never applies one twice. The message and the fields name the driver's error code,
 * errno and SQL state, never the statement's parameters, SQL text or tokens; the driver's own error
 * (which carries them) is deliberately not kept as `cause`.
 */
export class StorageError extends TokenServiceError {
  /** The driver's numeric error (MySQL/MariaDB errno, e.g. 1205 for a lock-wait timeout). */
  readonly errno: number | undefined;
  /** The SQL state (e.g. "HY000"), when the driver reports one. */
  readonly sqlState: string | undefined;

  constructor(
    readonly operation: string,
    readonly driverCode: string | undefined,
    readonly transient: boolean,
    detail: string,
    options: { errno?: number; sqlState?: string } = {},
  ) {
    super("STORAGE", `the database failed to ${operation} (${driverCode ?? "unknown error"}: ${detail}); ${transient ? "retry shortly" : "check that the migrations ran and the database is reachable"}`);
    this.errno = options.errno;
    this.sqlState = options.sqlState;
  }
}

/** Why an authorization callback's `state` was refused. */
export type AuthorizationStateReason =
  | "missing"                   // the callback has no (well-formed) state
  | "unknown_expired_or_used"   // never issued here, older than its expiry, or already completed once
  | "mismatch";                 // issued for another user or another host

/**
 * The callback's `state` cannot complete an authorization. Nothing was stored and the state is used up.
 * Start a new authorization (startAuthorization) and send the user to the new URL; for "mismatch",
 * also check that the callback is completed for the user who started it.
 */
export class AuthorizationStateError extends TokenServiceError {
  constructor(readonly reason: AuthorizationStateReason) {
    super(
      "AUTHORIZATION_STATE_INVALID",
      `the authorization callback's state is ${reason === "missing" ? "missing or malformed" : reason === "mismatch" ? "for another user or host" : "unknown, expired or already used"}; nothing was stored. ` +
        "Start a new authorization and send the user to its URL",
    );
  }
}

/**
 * The SCM sent the user back with an error instead of a code (`access_denied`: the user declined; or
 * e.g. `invalid_scope`, `unauthorized_client`). Nothing was stored; the state is used up. Tell the user,
 * and start a new authorization if they want to try again.
 */
export class AuthorizationDeniedError extends TokenServiceError {
  constructor(
    readonly host: string,
    readonly oauthError: string,
  ) {
    super(
      "AUTHORIZATION_DENIED",
      oauthError === "access_denied"
        ? `the user declined to authorise ${host}; nothing was stored. Start a new authorization if they want to connect`
        : `${host} answered the authorization with the error ${oauthError}; nothing was stored. Check the OAuth application's settings (redirect URI, scopes), then start a new authorization`,
    );
  }
}

/**
 * The SCM refused to exchange the authorization code (expired, already redeemed, PKCE verifier or
 * redirect URI mismatch: `invalid_grant`, GitHub's `bad_verification_code`). Nothing was stored.
 * Start a new authorization; codes are single-use and short-lived, so never retry with the same one.
 */
export class AuthorizationCodeRejectedError extends TokenServiceError {
  constructor(
    readonly host: string,
    readonly oauthError: string,
  ) {
    super("AUTHORIZATION_CODE_REJECTED", `${host} rejected the authorization code (${oauthError}); nothing was stored. Start a new authorization`);
  }
}
