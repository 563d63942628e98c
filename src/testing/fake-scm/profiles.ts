/**
 * Per-provider behaviour of the fake SCM: one plain data object per provider, every quirk a knob.
 *
 * The behaviour modelled is described per provider in docs/scm-behaviour.md.
 */

export type FakeScmProfileName =
  | "bitbucket_dc"
  | "gitlab"
  | "github_app_user"
  | "github_oauth_app"
  | "bitbucket_cloud"
  | "rfc9700_strict"
  | "keeps_old_access_tokens"
  | "generic_oauth2";

/** Where the token endpoint looks for client credentials. */
export type ClientAuthMethod = "body" | "basic" | "query";

/** A JSON value, for response bodies. */
export type FakeScmJson = string | number | boolean | null | readonly FakeScmJson[] | { readonly [key: string]: FakeScmJson };

/** One canned HTTP answer: status, JSON body and extra headers. */
export interface FakeScmHttpError {
  readonly status: number;
  readonly body: { readonly [key: string]: FakeScmJson };
  readonly headers?: Readonly<Record<string, string>>;
}

/** How the token response is shaped. */
export interface FakeScmResponseQuirks {
  /** GitLab adds `created_at` (Unix seconds). */
  readonly emitCreatedAt: boolean;
  /** GitLab #360729: some responses lacked `expires_in`; clients must fall back to `created_at` + 7200. */
  readonly omitExpiresIn: boolean;
  /** Old GitHub doc samples show `"expires_in": "28800"`. */
  readonly expiresInAsString: boolean;
  /** Bitbucket Cloud: `scopes` (plural) before 2026-05-04, `scope` after; "both" covers the transition. */
  readonly scopeField: "scope" | "scopes" | "both";
  /** GitHub OAuth apps list scopes comma-separated ("repo,gist"); everyone else uses spaces. */
  readonly scopeSeparator: " " | ",";
  /** GitHub Apps have permissions, not scopes: `scope` is always "". */
  readonly scopeAlwaysEmpty: boolean;
  /** `token_type` exactly as sent: "bearer" (BB DC, GitHub, BB Cloud) or "Bearer" (GitLab ≥ some version). */
  readonly tokenType: string;
  /** GitHub sends `refresh_token_expires_in`. */
  readonly refreshTokenExpiresIn: boolean;
  /** GitHub answers x-www-form-urlencoded unless the request has `Accept: application/json`. */
  readonly formEncodedUnlessAcceptJson: boolean;
  /** Non-standard extra fields, e.g. Bitbucket Cloud's `state`. */
  readonly extraFields: Readonly<Record<string, string>>;
}

/** How the profile reports each kind of failure (token endpoint and resource API). */
export interface FakeScmErrors {
  /** Unknown, expired, revoked, replayed or lost-the-race refresh token; also a missing/mismatched `redirect_uri` in strict mode. */
  readonly invalidGrant: FakeScmHttpError;
  /** Wrong or missing client credentials. */
  readonly invalidClient: FakeScmHttpError;
  /** A body the endpoint cannot parse (BB DC: JSON → 500 from Jersey's `@FormParam`). */
  readonly unsupportedContentType: FakeScmHttpError;
  /** The global refresh lock could not be taken in time (BB DC). */
  readonly lockTimeout: FakeScmHttpError;
  /** Resource endpoint: no token, or a token the server never issued. */
  readonly unknownAccessToken: FakeScmHttpError;
  /** Resource endpoint: token revoked by a refresh or out of band. */
  readonly revokedAccessToken: FakeScmHttpError;
  /** Resource endpoint: token past its expiry. */
  readonly expiredAccessToken: FakeScmHttpError;
  /** Token endpoint, code exchange: unknown, expired, reused code, or PKCE / redirect_uri mismatch. */
  readonly invalidAuthorizationCode: FakeScmHttpError;
}

/**
 * How the application can revoke a user's tokens:
 * - `rfc7009`: `POST {path}` with `token` (and `token_type_hint`) and client authentication; always
 *   200 (RFC 7009 §2.2). A refresh token revokes its whole family; an access token only itself.
 * - `github_grant`: `DELETE {path}` (`{client_id}` in the path) with HTTP Basic client credentials and
 *   `{"access_token": "…"}`: 204 and the family is revoked; 404 for an unknown or dead access token.
 * - `none`: no such endpoint (Bitbucket DC and Cloud).
 */
export type FakeScmRevocation = { readonly kind: "rfc7009"; readonly path: string } | { readonly kind: "github_grant"; readonly path: string } | { readonly kind: "none" };

/**
 * Token string shapes: clients that parse or length-check tokens should break here, not in production.
 * - `jwt_shaped`: three base64url parts, but looked up statefully (BB DC wraps a random id in a JWT).
 * - `hex64`: 64 hex characters (GitLab).
 * - `github_user_to_server`: `ghu_` access / `ghr_` refresh tokens.
 * - `github_oauth`: `gho_` access tokens.
 * - `opaque`: random base64url.
 */
export type FakeScmTokenFormat = "jwt_shaped" | "hex64" | "github_user_to_server" | "github_oauth" | "opaque";

export interface FakeScmProfile {
  readonly name: FakeScmProfileName;
  /** Token endpoint (POST). */
  readonly tokenPath: string;
  /** A stand-in authenticated API (GET, `Authorization: Bearer …`): 200 `{ user }` or the profile's 401. */
  readonly resourcePath: string;
  /** "form_only": anything but x-www-form-urlencoded gets `errors.unsupportedContentType`. */
  readonly requestFormat: "form_only" | "form_or_json";
  readonly clientAuth: readonly ClientAuthMethod[];
  /** BB DC strict mode: a refresh without the registered `redirect_uri` gets invalid_grant. */
  readonly requireRedirectUri: boolean;
  /** false: the authorization flow issues no refresh token (GitHub OAuth apps). */
  readonly issueRefreshToken: boolean;
  /** true: every refresh returns a new refresh token and the presented one becomes a tombstone. */
  readonly rotateRefreshToken: boolean;
  /** The most important knob: what happens to the access token paired with the presented refresh token. */
  readonly oldAccessTokenOnRefresh: "revoke_immediately" | "keep_until_expiry";
  /** What a rotated (tombstoned) refresh token gets when presented again. */
  readonly replayPolicy: "reject" | "reject_and_revoke_family" | "allow";
  /** null: access tokens never expire. */
  readonly accessTokenTtlSeconds: number | null;
  /** null: refresh tokens never expire. Counted from each refresh token's own issue time (sliding). */
  readonly refreshTokenTtlSeconds: number | null;
  /**
   * "serialized_one_winner": refreshes of one family are serialized; the loser sees a tombstone (GitLab row lock).
   * "global_lock": one lock for every refresh on the server, taken after the refresh token lookup (BB DC).
   */
  readonly concurrency: "serialized_one_winner" | "global_lock";
  /** "global_lock" only: waiting longer than this for the lock (on the injected clock) answers `errors.lockTimeout`. */
  readonly globalLockTimeoutMs: number;
  /** "global_lock" only: validate against the pre-lock lookup, so two simultaneous refreshes both win and the family forks. */
  readonly toctouBothSucceed: boolean;
  readonly tokenFormat: FakeScmTokenFormat;
  /** Scopes of `issueTokens()` when none are given. */
  readonly defaultScopes: readonly string[];
  readonly responseQuirks: FakeScmResponseQuirks;
  readonly errors: FakeScmErrors;
  /** The authorization endpoint (GET); see `FakeScmServer.authorize()`. */
  readonly authorizePath: string;
  readonly revocation: FakeScmRevocation;
  /** Authorization codes live this long (on the injected clock). */
  readonly authorizationCodeTtlSeconds: number;
}

/** `Partial<FakeScmProfile>`, except that `responseQuirks` and `errors` may be partial too. */
export type FakeScmProfileOverrides = Partial<Omit<FakeScmProfile, "name" | "responseQuirks" | "errors">> & {
  readonly responseQuirks?: Partial<FakeScmResponseQuirks>;
  readonly errors?: Partial<FakeScmErrors>;
};

// ---------------------------------------------------------------------------------------------
// Shared error bodies
// ---------------------------------------------------------------------------------------------

const RFC6749_INVALID_CLIENT: FakeScmHttpError = {
  status: 401,
  body: { error: "invalid_client", error_description: "Client authentication failed." },
};

const GENERIC_UNSUPPORTED_CONTENT_TYPE: FakeScmHttpError = {
  status: 400,
  body: { error: "invalid_request", error_description: "The request body must be application/x-www-form-urlencoded or application/json." },
};

const GENERIC_LOCK_TIMEOUT: FakeScmHttpError = {
  status: 500,
  body: { error: "server_error", error_description: "Timed out waiting for the refresh lock." },
};

/** RFC 6750 §3: 401 with `WWW-Authenticate: Bearer error="invalid_token"`. */
function rfc6750InvalidToken(description: string): FakeScmHttpError {
  return {
    status: 401,
    body: { error: "invalid_token", error_description: description },
    headers: { "WWW-Authenticate": `Bearer error="invalid_token", error_description="${description}"` },
  };
}

/** GitHub REST answers 401 "Bad credentials" for any dead token (exact body unverified). */
const GITHUB_BAD_CREDENTIALS: FakeScmHttpError = {
  status: 401,
  body: { message: "Bad credentials", documentation_url: "https://docs.github.com/rest" },
};

const GITHUB_TROUBLESHOOTING = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors";

const INVALID_CODE: FakeScmHttpError = {
  status: 400,
  body: { error: "invalid_grant", error_description: "The authorization code is invalid, expired, already used, or does not match the redirect URI or code verifier." },
};

/** GitHub answers token-endpoint errors with HTTP 200. */
const GITHUB_ERRORS: FakeScmErrors = {
  invalidAuthorizationCode: {
    status: 200,
    body: {
      error: "bad_verification_code",
      error_description: "The code passed is incorrect or expired.",
      error_uri: `${GITHUB_TROUBLESHOOTING}#bad-verification-code`,
    },
  },
  invalidGrant: {
    status: 200,
    body: {
      error: "bad_refresh_token",
      error_description: "The refresh token passed is incorrect or expired.",
      error_uri: `${GITHUB_TROUBLESHOOTING}#bad-refresh-token`,
    },
  },
  invalidClient: {
    status: 200,
    body: {
      error: "incorrect_client_credentials",
      error_description: "The client_id and/or client_secret passed are incorrect.",
      error_uri: `${GITHUB_TROUBLESHOOTING}#incorrect-client-credentials`,
    },
  },
  unsupportedContentType: GENERIC_UNSUPPORTED_CONTENT_TYPE,
  lockTimeout: GENERIC_LOCK_TIMEOUT,
  unknownAccessToken: GITHUB_BAD_CREDENTIALS,
  revokedAccessToken: GITHUB_BAD_CREDENTIALS,
  expiredAccessToken: GITHUB_BAD_CREDENTIALS,
};

/** Doorkeeper's exact invalid_grant text; GitLab also puts it in `WWW-Authenticate`. */
const DOORKEEPER_INVALID_GRANT =
  "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.";
const DOORKEEPER_INVALID_CLIENT =
  "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.";

const GITHUB_QUIRKS: FakeScmResponseQuirks = {
  emitCreatedAt: false,
  omitExpiresIn: false,
  expiresInAsString: false,
  scopeField: "scope",
  scopeSeparator: ",",
  scopeAlwaysEmpty: false,
  tokenType: "bearer",
  refreshTokenExpiresIn: true,
  formEncodedUnlessAcceptJson: true,
  extraFields: {},
};

const PLAIN_QUIRKS: FakeScmResponseQuirks = {
  emitCreatedAt: false,
  omitExpiresIn: false,
  expiresInAsString: false,
  scopeField: "scope",
  scopeSeparator: " ",
  scopeAlwaysEmpty: false,
  tokenType: "Bearer",
  refreshTokenExpiresIn: false,
  formEncodedUnlessAcceptJson: false,
  extraFields: {},
};

const GENERIC_OAUTH_ERRORS: FakeScmErrors = {
  invalidAuthorizationCode: INVALID_CODE,
  invalidGrant: { status: 400, body: { error: "invalid_grant", error_description: "The refresh token is invalid, expired or revoked." } },
  invalidClient: RFC6749_INVALID_CLIENT,
  unsupportedContentType: GENERIC_UNSUPPORTED_CONTENT_TYPE,
  lockTimeout: GENERIC_LOCK_TIMEOUT,
  unknownAccessToken: rfc6750InvalidToken("The access token is unknown."),
  revokedAccessToken: rfc6750InvalidToken("The access token was revoked."),
  expiredAccessToken: rfc6750InvalidToken("The access token expired."),
};

// ---------------------------------------------------------------------------------------------
// The profiles
// ---------------------------------------------------------------------------------------------

const bitbucketDc: FakeScmProfile = {
  name: "bitbucket_dc",
  tokenPath: "/rest/oauth2/latest/token",
  resourcePath: "/rest/api/latest/users/current", // stand-in for any authenticated REST call
  requestFormat: "form_only", // JAX-RS @FormParam
  clientAuth: ["body", "basic"], // body documented; Basic via `token.via.basic.authentication` = true
  requireRedirectUri: false, // jira.js says DC validates it; the decompiled build does not
  issueRefreshToken: true,
  rotateRefreshToken: true, // single-use
  oldAccessTokenOnRefresh: "revoke_immediately", // the AT row is deleted before the new one is created
  replayPolicy: "reject", // invalid_grant, no family revocation
  accessTokenTtlSeconds: 3600,
  refreshTokenTtlSeconds: 7_776_000, // 90 d from each RT's createdAt, so it slides
  concurrency: "global_lock", // one cluster lock for all refreshes
  globalLockTimeoutMs: 10_000, // max.lock.timeout.seconds = 10
  toctouBothSucceed: false,
  tokenFormat: "jwt_shaped",
  defaultScopes: ["REPO_READ", "REPO_WRITE"],
  authorizePath: "/rest/oauth2/latest/authorize",
  revocation: { kind: "none" }, // no revocation endpoint for incoming links
  authorizationCodeTtlSeconds: 600,
  responseQuirks: { ...PLAIN_QUIRKS, tokenType: "bearer" }, // no created_at
  errors: {
    invalidAuthorizationCode: INVALID_CODE, // exact text unverified
    // The plugin throws InvalidGrantException with this i18n key; rendered text and status 400 unverified.
    invalidGrant: { status: 400, body: { error: "invalid_grant", error_description: "oauth2.rest.error.invalid.refresh.token" } },
    invalidClient: RFC6749_INVALID_CLIENT,
    // Jersey rejects a non-form body for @FormParam resources with a 500 (OpenHands#14250).
    unsupportedContentType: {
      status: 500,
      body: {
        "status-code": 500,
        message:
          "java.lang.IllegalStateException: The @FormParam is utilized when the content of the request entity is not of the Content-Type application/x-www-form-urlencoded",
      },
    },
    // IllegalMonitorStateException "multiple create attempts" after max.lock.timeout.seconds; 500 is a guess.
    lockTimeout: {
      status: 500,
      body: { "status-code": 500, message: "java.lang.IllegalMonitorStateException: multiple create attempts" },
    },
    // Bitbucket's REST error envelope; the exact text for a dead OAuth token is unverified.
    unknownAccessToken: {
      status: 401,
      body: { errors: [{ context: null, message: "Authentication failed. Please check your credentials and try again.", exceptionName: null }] },
    },
    revokedAccessToken: {
      status: 401,
      body: { errors: [{ context: null, message: "Authentication failed. Please check your credentials and try again.", exceptionName: null }] },
    },
    expiredAccessToken: {
      status: 401,
      body: { errors: [{ context: null, message: "Authentication failed. Please check your credentials and try again.", exceptionName: null }] },
    },
  },
};

const gitlab: FakeScmProfile = {
  name: "gitlab",
  tokenPath: "/oauth/token",
  resourcePath: "/api/v4/user",
  requestFormat: "form_or_json", // Doorkeeper parses both
  clientAuth: ["basic", "body"], // Doorkeeper tries Basic, then params
  requireRedirectUri: false,
  issueRefreshToken: true,
  rotateRefreshToken: true,
  oldAccessTokenOnRefresh: "revoke_immediately", // AT and RT share one Doorkeeper row
  replayPolicy: "reject", // no reuse detection (gitlab#364111)
  accessTokenTtlSeconds: 7200,
  refreshTokenTtlSeconds: null, // "refresh tokens currently have no expiration" (gitlab#363525)
  concurrency: "serialized_one_winner", // refresh_token.lock! in a transaction
  globalLockTimeoutMs: 10_000,
  toctouBothSucceed: false,
  tokenFormat: "hex64",
  defaultScopes: ["api", "read_repository"],
  authorizePath: "/oauth/authorize",
  revocation: { kind: "rfc7009", path: "/oauth/revoke" }, // Doorkeeper
  authorizationCodeTtlSeconds: 600, // Doorkeeper's default authorization_code_expires_in
  responseQuirks: { ...PLAIN_QUIRKS, emitCreatedAt: true, tokenType: "Bearer" },
  errors: {
    invalidAuthorizationCode: { status: 400, body: { error: "invalid_grant", error_description: DOORKEEPER_INVALID_GRANT } },
    invalidGrant: {
      status: 400,
      body: { error: "invalid_grant", error_description: DOORKEEPER_INVALID_GRANT },
      headers: {
        "WWW-Authenticate": `Bearer realm="Doorkeeper", error="invalid_grant", error_description="${DOORKEEPER_INVALID_GRANT}"`,
      },
    },
    // Same Doorkeeper ErrorResponse path as invalid_grant (header for invalid_client unverified).
    invalidClient: {
      status: 401,
      body: { error: "invalid_client", error_description: DOORKEEPER_INVALID_CLIENT },
      headers: {
        "WWW-Authenticate": `Bearer realm="Doorkeeper", error="invalid_client", error_description="${DOORKEEPER_INVALID_CLIENT}"`,
      },
    },
    unsupportedContentType: GENERIC_UNSUPPORTED_CONTENT_TYPE,
    lockTimeout: GENERIC_LOCK_TIMEOUT,
    // Revoked / expired → invalid_token with these texts [code: GitLab auth finders];
    // an unknown token gets GitLab's plain API 401 (body unverified).
    unknownAccessToken: { status: 401, body: { message: "401 Unauthorized" } },
    revokedAccessToken: {
      status: 401,
      body: { error: "invalid_token", error_description: "Token was revoked. You have to re-authorize from the user." },
    },
    expiredAccessToken: {
      status: 401,
      body: { error: "invalid_token", error_description: "Token is expired. You can either do re-authorization or token refresh." },
    },
  },
};

const githubAppUser: FakeScmProfile = {
  name: "github_app_user",
  tokenPath: "/login/oauth/access_token",
  resourcePath: "/user",
  requestFormat: "form_or_json",
  clientAuth: ["body", "query"], // params in body or query string
  requireRedirectUri: false,
  issueRefreshToken: true,
  rotateRefreshToken: true,
  oldAccessTokenOnRefresh: "revoke_immediately", // "both it and the old user access token stop working"
  replayPolicy: "reject",
  accessTokenTtlSeconds: 28_800,
  refreshTokenTtlSeconds: 15_897_600, // about 6 months, per token
  concurrency: "serialized_one_winner",
  globalLockTimeoutMs: 10_000,
  toctouBothSucceed: false,
  tokenFormat: "github_user_to_server",
  defaultScopes: [],
  authorizePath: "/login/oauth/authorize",
  revocation: { kind: "github_grant", path: "/api/v3/applications/{client_id}/grant" }, // GHES layout; api.github.com has no /api/v3
  authorizationCodeTtlSeconds: 600, // "expires after 10 minutes"
  responseQuirks: { ...GITHUB_QUIRKS, scopeAlwaysEmpty: true }, // `scope: ""` for GitHub Apps
  errors: GITHUB_ERRORS,
};

const githubOauthApp: FakeScmProfile = {
  name: "github_oauth_app",
  tokenPath: "/login/oauth/access_token",
  resourcePath: "/user",
  requestFormat: "form_or_json",
  clientAuth: ["body", "query"],
  requireRedirectUri: false,
  issueRefreshToken: false, // `gho_` tokens do not expire and come without a refresh token
  rotateRefreshToken: false,
  oldAccessTokenOnRefresh: "keep_until_expiry",
  replayPolicy: "reject",
  accessTokenTtlSeconds: null,
  refreshTokenTtlSeconds: null,
  concurrency: "serialized_one_winner",
  globalLockTimeoutMs: 10_000,
  toctouBothSucceed: false,
  tokenFormat: "github_oauth",
  defaultScopes: ["repo"],
  authorizePath: "/login/oauth/authorize",
  revocation: { kind: "github_grant", path: "/api/v3/applications/{client_id}/grant" },
  authorizationCodeTtlSeconds: 600,
  responseQuirks: { ...GITHUB_QUIRKS, refreshTokenExpiresIn: false },
  errors: GITHUB_ERRORS,
};

const bitbucketCloud: FakeScmProfile = {
  name: "bitbucket_cloud",
  tokenPath: "/site/oauth2/access_token",
  resourcePath: "/2.0/user",
  requestFormat: "form_or_json",
  clientAuth: ["basic", "body"], // Basic is documented; body works too (dockstore#4228)
  requireRedirectUri: false,
  issueRefreshToken: true,
  rotateRefreshToken: true, // rotating from 2026-05-04
  oldAccessTokenOnRefresh: "keep_until_expiry", // unknown after 2026; historically kept — override to test both
  replayPolicy: "reject", // grace window unknown
  accessTokenTtlSeconds: 7200,
  refreshTokenTtlSeconds: null, // 2026: 3 months *unused*; inactivity expiry not modelled
  concurrency: "serialized_one_winner",
  globalLockTimeoutMs: 10_000,
  toctouBothSucceed: false,
  tokenFormat: "opaque",
  defaultScopes: ["account", "repository"],
  authorizePath: "/site/oauth2/authorize",
  revocation: { kind: "none" }, // none documented
  authorizationCodeTtlSeconds: 600, // unverified
  responseQuirks: {
    ...PLAIN_QUIRKS,
    scopeField: "both", // `scopes` before 2026-05-04, `scope` after
    tokenType: "bearer",
    extraFields: { state: "refresh_token" }, // non-standard `state` carries the grant type; value on refresh unverified
  },
  errors: {
    ...GENERIC_OAUTH_ERRORS,
    // invalid_request, not invalid_grant; status 400 assumed.
    invalidGrant: { status: 400, body: { error: "invalid_request", error_description: "Invalid refresh_token" } },
    // "An expired access token on the API gives 401"; the body is Bitbucket's error envelope (text unverified).
    unknownAccessToken: { status: 401, body: { type: "error", error: { message: "Access token expired." } } },
    revokedAccessToken: { status: 401, body: { type: "error", error: { message: "Access token expired." } } },
    expiredAccessToken: { status: 401, body: { type: "error", error: { message: "Access token expired." } } },
  },
};

const rfc9700Strict: FakeScmProfile = {
  name: "rfc9700_strict",
  tokenPath: "/oauth2/token",
  resourcePath: "/userinfo",
  requestFormat: "form_or_json",
  clientAuth: ["basic", "body"],
  requireRedirectUri: false,
  issueRefreshToken: true,
  rotateRefreshToken: true,
  oldAccessTokenOnRefresh: "revoke_immediately",
  replayPolicy: "reject_and_revoke_family", // RFC 9700 §4.14.2 / RFC 6749 §10.4
  accessTokenTtlSeconds: 3600,
  refreshTokenTtlSeconds: null,
  concurrency: "serialized_one_winner",
  globalLockTimeoutMs: 10_000,
  toctouBothSucceed: false,
  tokenFormat: "opaque",
  defaultScopes: ["read", "write"],
  authorizePath: "/oauth2/authorize",
  revocation: { kind: "rfc7009", path: "/oauth2/revoke" },
  authorizationCodeTtlSeconds: 60, // RFC 6749 §4.1.2: "a maximum lifetime of 10 minutes is RECOMMENDED"; strict servers use 60 s
  responseQuirks: PLAIN_QUIRKS,
  errors: GENERIC_OAUTH_ERRORS,
};

const keepsOldAccessTokens: FakeScmProfile = {
  ...rfc9700Strict,
  name: "keeps_old_access_tokens",
  oldAccessTokenOnRefresh: "keep_until_expiry", // Entra, Gitea: ATs cannot be revoked, they live until exp
  replayPolicy: "reject", // Gitea strict mode rejects replays without revoking the family
};

/**
 * A generic OAuth 2.0 server as RFC 9700 recommends and panva's oidc-provider implements it (the
 * conformance suite runs the same scenarios against both): refresh tokens rotate on every use, a
 * rotated one presented again revokes the whole grant, old access tokens stay valid until they
 * expire, RFC 7009 revocation of a refresh token ends the grant.
 */
const genericOAuth2: FakeScmProfile = {
  ...rfc9700Strict,
  name: "generic_oauth2",
  oldAccessTokenOnRefresh: "keep_until_expiry",
  replayPolicy: "reject_and_revoke_family",
};

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** The built-in profiles (frozen). Use `FakeScmServerOptions.overrides` to change a knob. */
export const FAKE_SCM_PROFILES: Readonly<Record<FakeScmProfileName, FakeScmProfile>> = deepFreeze({
  bitbucket_dc: bitbucketDc,
  gitlab,
  github_app_user: githubAppUser,
  github_oauth_app: githubOauthApp,
  bitbucket_cloud: bitbucketCloud,
  rfc9700_strict: rfc9700Strict,
  keeps_old_access_tokens: keepsOldAccessTokens,
  generic_oauth2: genericOAuth2,
});

/** The named profile with `overrides` applied (nested objects merged one level deep), checked for sanity. */
export function resolveProfile(name: FakeScmProfileName, overrides: FakeScmProfileOverrides = {}): FakeScmProfile {
  const base = FAKE_SCM_PROFILES[name];
  if (base === undefined) throw new RangeError(`FakeScmServer: unknown profile "${String(name)}"`);
  const profile: FakeScmProfile = {
    ...base,
    ...overrides,
    name,
    responseQuirks: { ...base.responseQuirks, ...overrides.responseQuirks },
    errors: { ...base.errors, ...overrides.errors },
  };
  checkProfile(profile);
  return deepFreeze(profile);
}

function checkProfile(p: FakeScmProfile): void {
  const ttlOk = (v: number | null) => v === null || (Number.isFinite(v) && v > 0);
  if (!ttlOk(p.accessTokenTtlSeconds)) throw new RangeError("FakeScmServer: accessTokenTtlSeconds must be null or a number > 0");
  if (!ttlOk(p.refreshTokenTtlSeconds)) throw new RangeError("FakeScmServer: refreshTokenTtlSeconds must be null or a number > 0");
  if (!Number.isFinite(p.globalLockTimeoutMs) || p.globalLockTimeoutMs < 0) {
    throw new RangeError("FakeScmServer: globalLockTimeoutMs must be a finite number >= 0");
  }
  if (!p.tokenPath.startsWith("/") || !p.resourcePath.startsWith("/") || p.tokenPath === p.resourcePath) {
    throw new RangeError("FakeScmServer: tokenPath and resourcePath must be distinct paths starting with '/'");
  }
  if (p.clientAuth.length === 0) throw new RangeError("FakeScmServer: clientAuth must accept at least one method");
  const paths = [p.tokenPath, p.resourcePath, p.authorizePath, ...(p.revocation.kind === "none" ? [] : [p.revocation.path])];
  if (!paths.every((path) => path.startsWith("/")) || new Set(paths).size !== paths.length) {
    throw new RangeError("FakeScmServer: tokenPath, resourcePath, authorizePath and the revocation path must be distinct paths starting with '/'");
  }
  if (!Number.isFinite(p.authorizationCodeTtlSeconds) || p.authorizationCodeTtlSeconds <= 0) throw new RangeError("FakeScmServer: authorizationCodeTtlSeconds must be a number > 0");
}
