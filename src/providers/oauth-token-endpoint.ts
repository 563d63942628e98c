import * as oauth from "oauth4webapi";
import { AuthorizationDeniedError, ConfigurationError, ScmResponseError } from "../errors";
import { checkUrlOption } from "./check-provider-options";
import { RefreshRejectedError, TransientScmError, type CodeExchangeRequest, type RefreshContext, type RefreshedToken, type TokensToRevoke } from "./scm-provider";

/**
 * The RFC 6749 §6 refresh grant, shared by every provider. The protocol work (request encoding,
 * client authentication, response validation, OAuth error parsing) is oauth4webapi's; this file only
 * maps its outcomes onto the library's error classes and applies provider quirks given as data.
 */

/** Options every provider accepts. */
export interface OAuthClientOptions {
  /** The host tokens are stored under, e.g. "bitbucket.example.com". */
  host: string;
  /** Where the SCM lives; default `https://{host}`. Self-hosted SCMs and fake servers set it. */
  baseUrl?: string;
  clientId: string;
  clientSecret: string;
  /** Sent on refresh when set (Bitbucket DC may validate it). */
  redirectUri?: string;
  /** How the client authenticates: form body (default) or HTTP Basic. */
  clientAuth?: "body" | "basic";
  /** Allow plain http:// for a non-loopback baseUrl (never do this in production). Loopback is always allowed. */
  allowInsecureHttp?: boolean;
}

/** The keys of OAuthClientOptions (for the unknown-option check of the providers that take them). */
export const OAUTH_CLIENT_OPTION_KEYS: ReadonlyArray<keyof OAuthClientOptions> = ["host", "baseUrl", "clientId", "clientSecret", "redirectUri", "clientAuth", "allowInsecureHttp"];

/**
 * An OAuth error answer that means "this refresh token is dead, the user must authorise again":
 * an `error` code, or a code whose `error_description` must also match, for SCMs that reuse a code
 * for unrelated failures: Bitbucket Cloud answers a dead refresh token with `invalid_request`
 * "Invalid refresh_token", Gitea's strict mode with `unauthorized_client` "token was
 * already used" — and both use the same codes for mistakes in the request or the client
 * credentials, which must not send every user to a re-authorisation prompt. A string description
 * must equal the SCM's; a RegExp is tested against it.
 *
 * @example
 * { error: "invalid_request", description: "Invalid refresh_token" }
 */
export type RejectedRefreshTokenError = string | { readonly error: string; readonly description: string | RegExp };

/** Provider quirks, as data. */
export interface TokenResponseQuirks {
  /** GitHub answers some errors with HTTP 200 and an `error` field. */
  errorsInHttp200?: boolean;
  /** OAuth errors that mean "this refresh token is dead" besides invalid_grant (which always does, RFC 6749 §5.2). */
  rejectedRefreshTokenErrors?: readonly RejectedRefreshTokenError[];
  /** Used when the response omits expires_in (GitLab #360729), in seconds. */
  fallbackExpiresInSeconds?: number;
  /** Compute expiry from the response's `created_at` (GitLab) when it is earlier than our own clock says. */
  useCreatedAt?: boolean;
  /** Bitbucket Cloud reports scopes in `scopes` (before 2026-05-04) as well as `scope`. */
  extraScopeFields?: readonly string[];
  /** A response without expires_in means the token never expires (GitHub OAuth Apps). */
  missingExpiryMeansNever?: boolean;
}

/** RFC 6749 §5.2: the refresh token is "invalid, expired, revoked, … or was issued to another client". */
const ALWAYS_REJECTED = "invalid_grant";
/**
 * OAuth errors that mean "this authorization code is dead" on the code exchange: RFC 6749 §5.2's
 * invalid_grant (expired, redeemed, PKCE or redirect URI mismatch) and GitHub's bad_verification_code.
 */
const CODE_REJECTED: readonly RejectedRefreshTokenError[] = ["invalid_grant", "bad_verification_code"];
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/** A resolved token endpoint for one provider instance. */
export class OAuthTokenEndpoint {
  private readonly as: oauth.AuthorizationServer;
  private readonly client: oauth.Client;
  private readonly auth: oauth.ClientAuth;
  private readonly insecure: boolean;
  private readonly host: string;
  private readonly redirectUri?: string;

  /** Where the SCM lives (the base URL, parsed). */
  readonly baseUrl: URL;
  readonly clientId: string;
  private readonly allowInsecureHttp: boolean;

  constructor(
    options: OAuthClientOptions,
    tokenPath: string,
    private readonly quirks: TokenResponseQuirks = {},
    endpoints: { revocationUrl?: string; issuer?: string } = {},
  ) {
    // The client secret lives only inside oauth4webapi's ClientAuth closure: no field holds it,
    // so JSON.stringify or util.inspect of a provider cannot show it.
    this.host = options.host;
    this.redirectUri = options.redirectUri;
    if (typeof options.clientId !== "string" || options.clientId === "" || typeof options.clientSecret !== "string" || options.clientSecret === "") {
      throw new ConfigurationError(`provider ${options.host}: clientId and clientSecret must be non-empty strings (from the SCM's OAuth application settings)`);
    }
    const base = checkUrlOption(options.baseUrl ?? `https://${options.host}`, "baseUrl", `provider ${options.host}`);
    const tokenUrl = new URL(tokenPath, base.href.endsWith("/") ? base.href : `${base.href}/`);
    if (tokenPath.startsWith("/")) tokenUrl.pathname = base.pathname.replace(/\/$/, "") + tokenPath;
    this.insecure = tokenUrl.protocol === "http:";
    if (this.insecure && !LOOPBACK.has(tokenUrl.hostname) && !options.allowInsecureHttp) {
      throw new ConfigurationError(`the token endpoint ${tokenUrl.origin} for ${options.host} uses plain http; use https, or set allowInsecureHttp: true for a test server`);
    }
    this.baseUrl = base;
    this.clientId = options.clientId;
    this.allowInsecureHttp = options.allowInsecureHttp === true;
    this.as = { issuer: endpoints.issuer ?? base.origin, token_endpoint: tokenUrl.href };
    if (endpoints.revocationUrl !== undefined) this.as = { ...this.as, revocation_endpoint: this.checkedUrl(endpoints.revocationUrl, "revocation").href };
    this.client = { client_id: options.clientId };
    this.auth = options.clientAuth === "basic" ? oauth.ClientSecretBasic(options.clientSecret) : oauth.ClientSecretPost(options.clientSecret);
  }

  async refresh(refreshToken: string, context: RefreshContext): Promise<RefreshedToken> {
    const additionalParameters: Record<string, string> = {};
    if (this.redirectUri) additionalParameters.redirect_uri = this.redirectUri;
    const response = await this.call(context, (common) => oauth.refreshTokenGrantRequest(this.as, this.client, this.auth, refreshToken, { additionalParameters, ...common }));
    if (this.quirks.errorsInHttp200 && response.status === 200) await this.rejectErrorBodyIn200(response);
    let json: oauth.TokenEndpointResponse;
    try {
      json = await oauth.processRefreshTokenResponse(this.as, this.client, await withoutIdToken(response));
    } catch (e) {
      throw this.mapProcessingError(e, response.status);
    }
    return this.toRefreshedToken(json, context.now);
  }

  /**
   * `path` under the base URL (a relative URL keeps the base's path prefix, as the token endpoint
   * does), or an absolute URL as is; plain http only for loopback or with allowInsecureHttp.
   */
  resolve(path: string, purpose: string): URL {
    if (/^https?:\/\//i.test(path)) return this.checkedUrl(path, purpose);
    const url = new URL(path, this.baseUrl.href.endsWith("/") ? this.baseUrl.href : `${this.baseUrl.href}/`);
    if (path.startsWith("/")) url.pathname = this.baseUrl.pathname.replace(/\/$/, "") + path;
    return this.checkedUrl(url.href, purpose);
  }

  /**
   * RFC 6749 §4.1.2–4.1.4 with PKCE: checks the callback (an `error` → AuthorizationDeniedError; a
   * wrong `iss` → ScmResponseError), then redeems the code. A rejected code is RefreshRejectedError
   * (the caller maps it), a 5xx or network failure TransientScmError — never retried: a code is single-use.
   */
  async exchangeCode(request: CodeExchangeRequest, context: RefreshContext): Promise<RefreshedToken> {
    let params: URLSearchParams;
    try {
      params = oauth.validateAuthResponse(this.as, this.client, request.callback, request.expectedState);
    } catch (e) {
      if (e instanceof oauth.AuthorizationResponseError) throw new AuthorizationDeniedError(this.host, e.error);
      throw new ScmResponseError(this.host, 0, `the authorization callback is not valid: ${sanitize(e instanceof Error ? e.message : String(e))}`);
    }
    const response = await this.call(context, (common) => oauth.authorizationCodeGrantRequest(this.as, this.client, this.auth, params, request.redirectUri, request.codeVerifier, common));
    if (this.quirks.errorsInHttp200 && response.status === 200) await this.rejectErrorBodyIn200(response, CODE_REJECTED);
    let json: oauth.TokenEndpointResponse;
    try {
      json = await oauth.processAuthorizationCodeResponse(this.as, this.client, await withoutIdToken(response));
    } catch (e) {
      throw this.mapProcessingError(e, response.status, CODE_REJECTED);
    }
    return this.toRefreshedToken(json, context.now);
  }

  /**
   * RFC 7009: revokes the refresh token (a compliant server then also invalidates the access tokens
   * of the grant), then the access token (for servers that do not cascade). Resolves when the server
   * confirmed both; an unknown or already-dead token is confirmed too (RFC 7009 §2.2).
   */
  async revokeRfc7009(tokens: TokensToRevoke, context: RefreshContext): Promise<void> {
    if (this.as.revocation_endpoint === undefined) throw new ConfigurationError(`provider ${this.host}: no revocation endpoint is configured`);
    const list: Array<[string, "refresh_token" | "access_token"]> = [];
    if (tokens.refreshToken !== undefined) list.push([tokens.refreshToken, "refresh_token"]);
    list.push([tokens.accessToken, "access_token"]);
    for (const [token, hint] of list) {
      const response = await this.call(context, (common) => oauth.revocationRequest(this.as, this.client, this.auth, token, { additionalParameters: { token_type_hint: hint }, ...common }));
      try {
        await oauth.processRevocationResponse(response);
      } catch (e) {
        if (e instanceof oauth.ResponseBodyError) throw new ScmResponseError(this.host, e.status, `revocation refused (${e.error})`, e.error);
        throw new ScmResponseError(this.host, response.status, `revocation refused: ${sanitize(e instanceof Error ? e.message : String(e))}`);
      }
    }
  }

  private checkedUrl(value: string, purpose: string): URL {
    const url = checkUrlOption(value, `${purpose} URL`, `provider ${this.host}`);
    if (url.protocol === "http:" && !LOOPBACK.has(url.hostname) && !this.allowInsecureHttp) {
      throw new ConfigurationError(`the ${purpose} endpoint ${url.origin} for ${this.host} uses plain http; use https, or set allowInsecureHttp: true for a test server`);
    }
    return url;
  }

  /**
   * Sends one request to the SCM (`request` gets the timeout signal and the http switch). A network
   * failure, a 5xx or a 429 becomes a TransientScmError; any other response is the caller's to read.
   */
  private async call(context: RefreshContext, request: (common: { signal: AbortSignal; [oauth.allowInsecureRequests]: boolean }) => Promise<Response>): Promise<Response> {
    let response: Response;
    try {
      response = await request({ signal: AbortSignal.timeout(context.timeoutMs), [oauth.allowInsecureRequests]: this.insecure });
    } catch (e) {
      const detail = describeNetworkError(e);
      // A timeout or reset after the request was sent is ambiguous; a refused connection is not.
      throw new TransientScmError(undefined, detail, !/ECONNREFUSED|ENOTFOUND|EAI_AGAIN/.test(detail));
    }
    if (response.status >= 500 || response.status === 429) {
      await response.body?.cancel();
      // A 5xx may come after the SCM committed (a rotation, a code exchange); a 429 did nothing.
      throw new TransientScmError(response.status, `HTTP ${response.status}`, response.status !== 429, retryAfterMs(response, context.now));
    }
    return response;
  }

  private async rejectErrorBodyIn200(response: Response, rejected?: readonly RejectedRefreshTokenError[]): Promise<void> {
    let body: unknown;
    try {
      body = await response.clone().json();
    } catch {
      return; // not JSON: processRefreshTokenResponse reports it
    }
    if (isRecord(body) && typeof body.error === "string") {
      throw this.classifyOAuthError(body.error, 200, typeof body.error_description === "string" ? body.error_description : undefined, rejected);
    }
  }

  private classifyOAuthError(error: string, status: number, description: string | undefined, rejectedErrors?: readonly RejectedRefreshTokenError[]): Error {
    const rejected = rejectedErrors ?? [ALWAYS_REJECTED, ...(this.quirks.rejectedRefreshTokenErrors ?? [])];
    if (rejected.some((r) => isRejection(r, error, description))) return new RefreshRejectedError(error, status);
    if (error === "invalid_client" || error === "incorrect_client_credentials" || error === "unauthorized_client") {
      return new ScmResponseError(this.host, status, `client authentication failed (${error}): check clientId and clientSecret for ${this.host}`, error);
    }
    return new ScmResponseError(this.host, status, `OAuth error ${error}`, error);
  }

  private mapProcessingError(e: unknown, status: number, rejected?: readonly RejectedRefreshTokenError[]): Error {
    if (e instanceof oauth.ResponseBodyError) return this.classifyOAuthError(e.error, e.status, e.error_description, rejected);
    if (e instanceof oauth.WWWAuthenticateChallengeError) {
      const challenge = e.cause.find((c) => typeof c.parameters.error === "string");
      const description = challenge?.parameters.error_description;
      return this.classifyOAuthError(challenge?.parameters.error ?? "invalid_client", e.status, typeof description === "string" ? description : undefined, rejected);
    }
    const message = e instanceof Error ? e.message : String(e);
    return new ScmResponseError(this.host, status, sanitize(message));
  }

  private toRefreshedToken(json: oauth.TokenEndpointResponse, now: Date): RefreshedToken {
    const expiresIn = json.expires_in ?? (this.quirks.missingExpiryMeansNever ? undefined : this.quirks.fallbackExpiresInSeconds);
    if (expiresIn === undefined && !this.quirks.missingExpiryMeansNever) {
      throw new ScmResponseError(this.host, 200, "the response has no expires_in and the provider has no default lifetime");
    }
    let expiresAt = expiresIn === undefined ? undefined : new Date(now.getTime() + expiresIn * 1000);
    const createdAt = json.created_at;
    if (expiresAt && this.quirks.useCreatedAt && typeof createdAt === "number" && Number.isFinite(createdAt)) {
      // GitLab: expiry = created_at + expires_in by the server's clock; take the earlier of both views
      // so clock skew can only make us refresh early, never hand out a token that is already dead.
      const serverExpiry = (createdAt + (expiresIn ?? 0)) * 1000;
      if (serverExpiry < expiresAt.getTime()) expiresAt = new Date(serverExpiry);
    }
    return {
      accessToken: json.access_token,
      refreshToken: json.refresh_token,
      expiresAt,
      scopes: this.scopesOf(json),
    };
  }

  private scopesOf(json: oauth.TokenEndpointResponse): string[] | undefined {
    for (const field of ["scope", ...(this.quirks.extraScopeFields ?? [])]) {
      const value = json[field];
      if (typeof value === "string") return value.split(/[\s,]+/).filter(Boolean);
    }
    return undefined;
  }
}

function isRejection(rule: RejectedRefreshTokenError, error: string, description: string | undefined): boolean {
  if (typeof rule === "string") return rule === error;
  if (rule.error !== error || description === undefined) return false;
  // search() ignores a RegExp's lastIndex, so a /g pattern shared between calls still matches every time.
  return typeof rule.description === "string" ? rule.description === description : description.search(rule.description) !== -1;
}

/**
 * GitLab and Gitea add an `id_token` when the `openid` scope was granted. oauth4webapi would validate
 * it against an issuer derived from baseUrl — which differs from the SCM's public URL behind a proxy
 * or under a relative URL — and fail *after* the SCM rotated the tokens, losing them. The library
 * never uses the id_token, so it is dropped before validation.
 */
async function withoutIdToken(response: Response): Promise<Response> {
  if (response.status !== 200) return response;
  let body: unknown;
  try {
    body = await response.clone().json();
  } catch {
    return response;
  }
  if (!isRecord(body) || !("id_token" in body)) return response;
  const { id_token: _ignored, ...rest } = body;
  return new Response(JSON.stringify(rest), { status: response.status, statusText: response.statusText, headers: response.headers });
}

function retryAfterMs(response: Response, now: Date): number | undefined {
  const header = response.headers.get("retry-after");
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.max(0, date - now.getTime()) : undefined;
}

function describeNetworkError(e: unknown): string {
  if (!(e instanceof Error)) return "network error";
  const cause = (e as { cause?: { code?: unknown } }).cause;
  const code = typeof cause?.code === "string" ? cause.code : undefined;
  if (e.name === "TimeoutError" || e.name === "AbortError") return "timeout";
  return code ?? e.name;
}

/** oauth4webapi messages can quote the body; keep only the first sentence, never response content. */
function sanitize(message: string): string {
  return message.split("\n")[0].slice(0, 200);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
