import { inspect } from "node:util";
import * as oauth from "oauth4webapi";
import { checkUrlOption } from "../providers/check-provider-options";
import { systemClock, type Clock } from "../clock";
import {
  AuthorizationCodeRejectedError,
  AuthorizationDeniedError,
  AuthorizationStateError,
  ConfigurationError,
  InvalidArgumentError,
  ScmUnavailableError,
} from "../errors";
import { silentLogger, type Logger } from "../logger";
import { isAuthorizingProvider, RefreshRejectedError, TransientScmError, type AuthorizingScmProvider, type RefreshedToken } from "../providers/scm-provider";
import type { TakeOnceSecrets } from "../secrets/take-once/take-once-secrets";
import type { TokenService } from "../token-service";
import { canonicalHost } from "../providers/normalize-host";
import { checkScopes, checkUserId } from "../validation";
import { callbackParams, type AuthorizationCallback } from "./authorization-callback";
import { decodePending, encodePending } from "./pending-authorization";
import type { DisconnectResult } from "./disconnect";

export interface ScmConnectorOptions {
  /** Stores the tokens the exchanges return (its providers must include the hosts users connect). */
  service: TokenService;
  /** Keeps each pending authorization (state, PKCE verifier) encrypted and single-use until the callback. */
  secrets: TakeOnceSecrets;
  /** Your callback URL, as registered with every SCM's OAuth application, e.g. "https://app.example.com/oauth/callback". */
  redirectUri: string;
  /** How long a started authorization may take to come back, in ms. Default 10 minutes (at least 1 s; at most what `secrets` allows). */
  stateTtlMs?: number;
  /** Bound of the code exchange request, in ms. Default 10 000. */
  exchangeTimeoutMs?: number;
  clock?: Clock;
  /** Gets hosts and outcomes, never a code, state, verifier or token. */
  logger?: Logger;
}

/** What startAuthorization() returns. */
export interface StartedAuthorization {
  /** Redirect the user's browser here. */
  url: string;
  /** The `state` in the URL (also the pending authorization's id; single-use). Keep it out of logs. */
  state: string;
  /** After this instant the callback fails with AuthorizationStateError. */
  expiresAt: Date;
}

/** What completeAuthorization() stored — never the access or refresh token. */
export interface ConnectedToken {
  userId: string;
  host: string;
  /** The scopes the SCM granted (or, when it did not say, the ones requested). */
  scopes: string[];
  /** undefined: the token does not expire (GitHub OAuth Apps). */
  expiryDate?: Date;
  /** The SCM user name, when the SCM reported one (none of the built-in providers' token responses do). */
  username?: string;
  /** A refresh token was issued and stored: the service can keep the token alive. */
  refreshable: boolean;
}

const PURPOSE = "oauth-authorization";
const STATE = /^[0-9a-f]{64}$/;
const DEFAULT_STATE_TTL_MS = 10 * 60_000;

/**
 * The connect and disconnect ends of the OAuth lifecycle (docs/oauth-lifecycle.md):
 *
 * 1. `startAuthorization(userId, host)` → a URL (authorization code + PKCE S256 + state). The state and
 *    the code verifier stay on the server: a take-once secret, encrypted, expiring (10 min), usable once.
 * 2. `completeAuthorization(userId, callback)` on your callback route → exchanges the code, stores the
 *    token (TokenService.storeToken) and returns what was stored, never the tokens themselves. A bad
 *    state, a denial or a rejected code throws a typed error and stores nothing.
 * 3. `disconnect(userId, host?)` → deletes and revokes at the SCM where it can (TokenService.disconnect).
 *
 * @example
 * const connector = new ScmConnector({ service, secrets: new TakeOnceSecrets(dataSource, keyRing), redirectUri: "https://app.example.com/oauth/callback" });
 * app.get("/connect/:host", async (req, res) => res.redirect((await connector.startAuthorization(req.user.id, req.params.host, { scopes: ["api"] })).url));
 * app.get("/oauth/callback", async (req, res) => {
 *   try { const connected = await connector.completeAuthorization(req.user.id, req.originalUrl); res.send(`connected ${connected.host}`); }
 *   catch (e) { if (e instanceof AuthorizationDeniedError) res.send("You declined."); else throw e; }
 * });
 */
export class ScmConnector {
  private readonly service: TokenService;
  private readonly secrets: TakeOnceSecrets;
  private readonly redirectUri: string;
  private readonly stateTtlMs: number;
  private readonly exchangeTimeoutMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger;

  constructor(options: ScmConnectorOptions) {
    if (typeof options !== "object" || options === null) throw new ConfigurationError("ScmConnector: pass { service, secrets, redirectUri }");
    if (!options.service || !options.secrets) throw new ConfigurationError("ScmConnector: service (a TokenService) and secrets (a TakeOnceSecrets) are required");
    const redirect = checkUrlOption(options.redirectUri, "redirectUri", "ScmConnector");
    if (redirect.hash !== "") throw new ConfigurationError("ScmConnector: redirectUri must not have a #fragment (RFC 6749 §3.1.2)", "redirectUri");
    this.service = options.service;
    this.secrets = options.secrets;
    this.redirectUri = redirect.href;
    this.stateTtlMs = checkMs(options.stateTtlMs, DEFAULT_STATE_TTL_MS, 1000, 24 * 3600_000, "stateTtlMs");
    this.exchangeTimeoutMs = checkMs(options.exchangeTimeoutMs, 10_000, 100, 120_000, "exchangeTimeoutMs");
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
  }

  /**
   * Starts an authorization of `host` for `userId`: returns the URL to redirect the browser to.
   *
   * @throws InvalidArgumentError (bad user id, unknown host, bad scopes), ConfigurationError (the host's
   *   provider cannot authorize, e.g. an OAuth2Provider without authorizeUrl)
   * @example
   * const { url } = await connector.startAuthorization("user-1", "gitlab.com", { scopes: ["api", "read_repository"] });
   */
  async startAuthorization(userId: string, host: string, options: { scopes?: string[] } = {}): Promise<StartedAuthorization> {
    checkUserId(userId);
    const provider = this.providerFor(host);
    if (typeof options !== "object" || options === null) throw new InvalidArgumentError("options", "options must be { scopes? }");
    const scopes = checkScopes(options.scopes);
    if (scopes.some((s) => s.includes(","))) throw new InvalidArgumentError("scopes", "scopes must not contain commas (some SCMs separate scopes with commas)");
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const codeChallenge = await oauth.calculatePKCECodeChallenge(codeVerifier);
    // The take-once secret's id is the state: 256 random bits, and the only key to the verifier.
    const { id: state, expiresAt } = await this.secrets.create(encodePending({ userId, host: provider.host, codeVerifier, redirectUri: this.redirectUri, scopes }), {
      expiresInMs: this.stateTtlMs,
      purpose: PURPOSE,
    });
    const url = provider.authorizationUrl({ redirectUri: this.redirectUri, state, codeChallenge, scopes });
    this.logger.info({ host: provider.host, scopes: scopes.length }, "Authorization started");
    return { url: url.href, state, expiresAt };
  }

  /**
   * Completes the authorization the callback belongs to: checks the state (issued here, for this
   * user — and this host, when `options.host` is given —, not expired, not used), exchanges the code
   * with its PKCE verifier, stores the token and returns what was stored.
   *
   * @throws AuthorizationStateError (missing, unknown, expired, replayed or mismatched state),
   *   AuthorizationDeniedError (the callback carries `error`, e.g. access_denied),
   *   AuthorizationCodeRejectedError (the SCM refused the code), ScmUnavailableError (the SCM failed
   *   or timed out; start again), ScmResponseError. In every case nothing is stored.
   * @example
   * const connected = await connector.completeAuthorization("user-1", "https://app.example.com/oauth/callback?code=…&state=…");
   */
  async completeAuthorization(userId: string, callback: AuthorizationCallback, options: { host?: string } = {}): Promise<ConnectedToken> {
    checkUserId(userId);
    const params = callbackParams(callback);
    const expectedHost = options.host === undefined ? undefined : this.providerFor(options.host).host;
    const state = params.get("state");
    if (state === null || !STATE.test(state)) throw this.stateError("missing", expectedHost);
    const value = await this.secrets.take(state, { purpose: PURPOSE });
    const pending = value === undefined ? undefined : decodePending(value);
    if (!pending) throw this.stateError("unknown_expired_or_used", expectedHost);
    // Byte-for-byte, like every user id in the library; the host in its canonical spelling.
    if (pending.userId !== userId || (expectedHost !== undefined && canonicalHost(pending.host) !== expectedHost)) throw this.stateError("mismatch", pending.host);
    const provider = this.providerFor(pending.host);

    let token: RefreshedToken;
    try {
      token = await provider.exchangeCode(
        { callback: params, expectedState: state, codeVerifier: pending.codeVerifier, redirectUri: pending.redirectUri },
        { now: this.clock.now(), timeoutMs: this.exchangeTimeoutMs },
      );
    } catch (e) {
      throw this.exchangeError(e, provider.host);
    }
    const scopes = token.scopes ?? pending.scopes;
    await this.service.storeToken(userId, provider.host, { value: token.accessToken, refreshToken: token.refreshToken, expiryDate: token.expiresAt, scopes });
    this.logger.info({ host: provider.host, refreshable: token.refreshToken !== undefined }, "Authorization completed; token stored");
    return { userId, host: provider.host, scopes, expiryDate: token.expiresAt, refreshable: token.refreshToken !== undefined };
  }

  /** Deletes the user's tokens (one host or all) and revokes them at the SCM where it can; see TokenService.disconnect. */
  disconnect(userId: string, host?: string): Promise<DisconnectResult> {
    return this.service.disconnect(userId, host);
  }

  /** Names the redirect URI and the state lifetime; never a secret, a key or a database handle. */
  toJSON(): Record<string, unknown> {
    return { redirectUri: this.redirectUri, stateTtlMs: this.stateTtlMs };
  }

  [inspect.custom](): string {
    return `ScmConnector ${inspect(this.toJSON())}`;
  }

  private providerFor(host: string): AuthorizingScmProvider {
    const provider = this.service.getProvider(host);
    if (!isAuthorizingProvider(provider)) {
      throw new ConfigurationError(`the provider of ${provider.host} cannot run the authorization-code flow (a custom ScmProvider without authorizationUrl/exchangeCode/revoke)`);
    }
    return provider;
  }

  private stateError(reason: AuthorizationStateError["reason"], host: string | undefined): AuthorizationStateError {
    this.logger.warn({ host, reason }, "Authorization callback refused: bad state; nothing stored");
    return new AuthorizationStateError(reason);
  }

  private exchangeError(e: unknown, host: string): unknown {
    if (e instanceof AuthorizationDeniedError) {
      this.logger.info({ host, oauthError: e.oauthError }, "Authorization denied at the SCM; nothing stored");
      return e;
    }
    if (e instanceof RefreshRejectedError) {
      this.logger.warn({ host, oauthError: e.oauthError }, "The SCM rejected the authorization code; nothing stored");
      return new AuthorizationCodeRejectedError(host, e.oauthError);
    }
    if (e instanceof TransientScmError) {
      this.logger.warn({ host, status: e.status, detail: e.detail }, "The code exchange failed; nothing stored");
      return new ScmUnavailableError(host, 1, e.status, `${e.detail}; the code is single-use: start a new authorization`);
    }
    return e;
  }
}

function checkMs(value: unknown, fallback: number, min: number, max: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new ConfigurationError(`ScmConnector: ${name} must be a number of milliseconds from ${min} to ${max}`, name);
  }
  return value;
}
