import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { systemClock, type Clock } from "../../clock";
import { AuthorizationCodes } from "./authorization-codes";
import { newCounters, resetCounters, type FakeScmCounters } from "./counters";
import { FailureQueue, HTML_502_PAGE, TRUNCATED_JSON, type InjectedFailure } from "./failure-injection";
import { authenticateClient, parseBasic, parseTokenRequest, readBody, send, sendError, sendTokenEndpoint, type TokenRequest } from "./http-wire";
import { KeyedLocks } from "./locks";
import { PausePoints, type PauseHandle, type PausePoint } from "./pause-points";
import { resolveProfile, type FakeScmHttpError, type FakeScmProfile, type FakeScmProfileName, type FakeScmProfileOverrides } from "./profiles";
import { RefreshFlow } from "./refresh-flow";
import { TokenFamilies, type IssuedTokens } from "./token-families";
import { tokenResponseBody } from "./token-response";

export interface FakeScmServerOptions {
  profile: FakeScmProfileName;
  /** Default "test-client". Requests with other credentials get the profile's `invalidClient` error. */
  clientId?: string;
  /** Default "test-secret". */
  clientSecret?: string;
  /** The client's registered redirect URI, checked on refresh when `requireRedirectUri` is on. Default "http://127.0.0.1/oauth/callback". */
  redirectUri?: string;
  /** Drives token issuance, expiry and the global-lock timeout. Default `systemClock`; share a `FakeClock` with the code under test. */
  clock?: Clock;
  /** Any profile knob; `responseQuirks` and `errors` may be given partially. */
  overrides?: FakeScmProfileOverrides;
}

/**
 * A real HTTP OAuth 2.0 server on 127.0.0.1 that behaves like one SCM's token endpoint, so that
 * refresh code can be tested against the behaviours that break it in production: rotation that
 * revokes the old access token at once, replay errors in each provider's exact shape, concurrent
 * refreshes with one winner, responses lost after the server committed.
 *
 * Pick a profile, mint a token family the way an authorization-code flow would, point the code
 * under test at `baseUrl`, then assert on HTTP behaviour and on `counters`. Complete example
 * (a mocha test in `test/`; a bare `fetch` plays the code under test):
 *
 * ```ts
 * import { expect } from "chai";
 * import { FakeClock } from "../src/testing/fake-clock";
 * import { FakeScmServer } from "../src/testing/fake-scm";
 *
 * it("shows what Bitbucket DC does on refresh", async () => {
 *   const clock = new FakeClock("2026-01-01T00:00:00Z");
 *   const scm = await FakeScmServer.start({ profile: "bitbucket_dc", clock });
 *   try {
 *     // 1. A user authorized the app: a new token family.
 *     const first = scm.issueTokens({ userId: "alice" }); // { accessToken, refreshToken, expiresAt, scopes, familyId }
 *     const refresh = (refreshToken: string) =>
 *       fetch(scm.baseUrl + scm.tokenPath, {
 *         method: "POST", // BB DC takes form bodies only; JSON gets a 500
 *         body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: "test-client", client_secret: "test-secret" }),
 *       });
 *
 *     // 2. Refresh. BB DC rotates the refresh token and revokes the old access token at once.
 *     const second = (await (await refresh(first.refreshToken!)).json()) as { access_token: string; refresh_token: string };
 *     const api = await fetch(scm.baseUrl + scm.profile.resourcePath, { headers: { Authorization: `Bearer ${first.accessToken}` } });
 *     expect(api.status).to.equal(401); // a workspace still cloning with the old token just broke
 *     expect(scm.isAccessTokenLive(second.access_token)).to.equal(true);
 *
 *     // 3. A replayed refresh token gets the profile's exact error.
 *     expect((await refresh(first.refreshToken!)).status).to.equal(400); // {"error":"invalid_grant",...}
 *
 *     // 4. Hold a refresh between validation and commit (it keeps BB DC's global lock meanwhile).
 *     const held = scm.pauseAt("afterValidate");
 *     const pending = refresh(second.refresh_token);
 *     await held.reached;
 *     expect(scm.isAccessTokenLive(second.access_token)).to.equal(true); // not committed yet
 *     held.release();
 *     expect((await pending).status).to.equal(200);
 *
 *     // 5. Lose a response after the server committed: the client is left with dead tokens.
 *     scm.failNext({ kind: "commit_then_fail" });
 *
 *     // 6. Time moves only when the test says so.
 *     clock.advanceMinutes(61); // every access token issued above is now expired
 *
 *     expect(scm.counters).to.include({ refreshSuccesses: 2, replays: 1, resourceRejectedRevokedByRefresh: 1 });
 *   } finally {
 *     await scm.close(); // also frees held and hanging requests
 *   }
 * });
 * ```
 *
 * Endpoints:
 * - `POST {tokenPath}`: `grant_type=refresh_token` and `authorization_code` (with PKCE S256 and the
 *   registered `redirect_uri`; anything else: 400 `unsupported_grant_type`; missing parameters: 400
 *   `invalid_request`); the request format, client authentication, response fields and error shapes
 *   are the profile's (see `FAKE_SCM_PROFILES`).
 * - `GET {authorizePath}`: approves as "user-1" and redirects to the callback; `authorize()` does the
 *   same without HTTP and can also deny (`error=access_denied`).
 * - Revocation, per the profile's `revocation`: RFC 7009 `POST` (GitLab, the generic profiles) or
 *   GitHub's `DELETE …/applications/{client_id}/grant`; Bitbucket DC and Cloud have none.
 * - `GET {resourcePath}` with `Authorization: Bearer <access token>` (or `token <…>`): 200 `{ user }`
 *   for a live token, else the profile's 401 for an unknown, revoked or expired token.
 *
 * Time: issuance, expiry (a token is live strictly before `expiresAt`) and BB DC's lock timeout all
 * read the injected clock. A refresh waiting for the global lock times out only once the clock has
 * moved `globalLockTimeoutMs` past the start of its wait; it never moves a `FakeClock` itself.
 *
 * What it does **not** model:
 * - The device and client-credentials grants (`issueTokens()` stands in for them), consent screens,
 *   login, `prompt`/`max_age`, PKCE `plain`, and authorization-code lifetimes other than the profile's.
 * - Grace / reuse windows (Cognito, Auth0, dex), `revoke_on_first_use_of_new_AT` (Doorkeeper's
 *   `previous_refresh_token` mode), randomized access-token lifetimes (Entra), and inactivity or
 *   absolute-from-consent refresh-token expiry (Bitbucket Cloud 2026, Atlassian): only per-token TTLs.
 * - Provider rate-limit budgets (GitHub's 2,000 tokens/h, the 10-token cap of OAuth apps) and 403
 *   rate-limit answers on the resource API; only the injected 429 `rate_limited`.
 * - Read-after-write lag of new tokens (GitHub replicas), client–server clock skew, secret rotation,
 *   org policies, token introspection, `id_token`s,
 *   GitHub's device-flow exemption from `client_secret`.
 * - Legacy Azure DevOps (`assertion` parameter), Gitea and Entra profiles: `keeps_old_access_tokens`
 *   approximates the latter two. Error texts marked unverified in the profiles are best guesses.
 * - Per-provider shapes of `invalid_request` / `unsupported_grant_type` / `invalid_scope`: these are
 *   plain RFC 6749 §5.2 bodies with status 400 on every profile.
 * - Per-endpoint latency distributions: `setLatency()` is one fixed real-time delay.
 */
export class FakeScmServer {
  readonly profile: FakeScmProfile;
  /** Live object: read it at any time; `resetCounters()` zeroes it in place. */
  readonly counters: FakeScmCounters = newCounters();

  private readonly clock: Clock;
  private readonly clientId: string;
  private readonly clientSecret: string;
  private readonly redirectUri: string;
  private readonly codes: AuthorizationCodes;
  private readonly families: TokenFamilies;
  private readonly failures = new FailureQueue();
  private readonly pauses = new PausePoints();
  private readonly flow: RefreshFlow;
  private readonly http: Server;
  private readonly sockets = new Set<Socket>();
  private latencyMs = 0;
  private url = "";
  private closing: Promise<void> | undefined;
  private signalClosed!: () => void;
  private readonly closed = new Promise<void>((resolve) => (this.signalClosed = resolve));

  /** Starts a server on 127.0.0.1 on a random free port. */
  static async start(options: FakeScmServerOptions): Promise<FakeScmServer> {
    const server = new FakeScmServer(options);
    await server.listen();
    return server;
  }

  private constructor(options: FakeScmServerOptions) {
    this.profile = resolveProfile(options.profile, options.overrides);
    this.clock = options.clock ?? systemClock;
    this.clientId = nonEmpty(options.clientId ?? "test-client", "clientId");
    this.clientSecret = nonEmpty(options.clientSecret ?? "test-secret", "clientSecret");
    const redirectUri = nonEmpty(options.redirectUri ?? "http://127.0.0.1/oauth/callback", "redirectUri");
    this.redirectUri = redirectUri;
    this.codes = new AuthorizationCodes(this.clock);
    this.families = new TokenFamilies(this.profile, this.clock, this.counters);
    this.flow = new RefreshFlow(this.profile, this.families, new KeyedLocks(this.clock), this.pauses, this.counters, redirectUri);
    this.http = createServer((req, res) => void this.handle(req, res));
    this.http.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  /** e.g. "http://127.0.0.1:41234" (no trailing slash). */
  get baseUrl(): string {
    return this.url;
  }

  /** The profile's token endpoint path, e.g. "/rest/oauth2/latest/token". */
  get tokenPath(): string {
    return this.profile.tokenPath;
  }

  /** Simulates a completed authorization-code flow: a new token family. */
  issueTokens(input: { userId?: string; scopes?: string[] } = {}): IssuedTokens {
    const userId = nonEmpty(input.userId ?? "user-1", "userId");
    const scopes = input.scopes ?? [...this.profile.defaultScopes];
    if (!scopes.every((s) => typeof s === "string" && s !== "" && !/[\s,]/.test(s))) {
      throw new RangeError("FakeScmServer.issueTokens: scopes must be non-empty strings without spaces or commas");
    }
    return this.families.issue(this.clientId, userId, scopes);
  }

  /**
   * Plays the user at the authorization endpoint, without a browser: takes the URL the code under test
   * would redirect the browser to (e.g. `ScmConnector.startAuthorization().url`) and returns the URL the
   * SCM would send the browser back to — `?code=…&state=…` when `approve` (default true), or
   * `?error=access_denied&state=…`. The code is single-use, expires after the profile's
   * `authorizationCodeTtlSeconds` (injected clock) and is bound to the client, the redirect URI and the
   * PKCE challenge (S256), all checked by the token endpoint's `grant_type=authorization_code`.
   *
   * Like a real SCM, an unknown `client_id` or a `redirect_uri` other than the registered one is not
   * redirected (that would be an open redirector): it throws RangeError. Other request errors come
   * back as `error=invalid_request` / `unsupported_response_type`.
   *
   * @example
   * const { url } = await connector.startAuthorization("alice", "gitlab.example.com");
   * const callbackUrl = scm.authorize(url, { approve: true, userId: "alice" });
   * await connector.completeAuthorization("alice", callbackUrl);
   */
  authorize(authorizationUrl: string, options: { approve?: boolean; userId?: string } = {}): string {
    const url = new URL(authorizationUrl);
    if (url.pathname !== this.profile.authorizePath) throw new RangeError(`FakeScmServer.authorize: not this profile's authorization endpoint (${this.profile.authorizePath})`);
    const params = url.searchParams;
    if (params.get("client_id") !== this.clientId) throw new RangeError("FakeScmServer.authorize: unknown client_id (the SCM shows an error page, it does not redirect)");
    const redirectUri = params.get("redirect_uri") ?? this.redirectUri;
    if (redirectUri !== this.redirectUri) throw new RangeError("FakeScmServer.authorize: redirect_uri is not the registered one (the SCM shows an error page, it does not redirect)");
    this.counters.authorizations += 1;
    const back = new URL(redirectUri);
    const state = params.get("state");
    if (state !== null) back.searchParams.set("state", state);
    const fail = (error: string, description: string) => {
      back.searchParams.set("error", error);
      back.searchParams.set("error_description", description);
      return back.href;
    };
    if (params.get("response_type") !== "code") return fail("unsupported_response_type", "Only response_type=code is supported.");
    const challenge = params.get("code_challenge") ?? undefined;
    if (challenge !== undefined && params.get("code_challenge_method") !== "S256") return fail("invalid_request", "code_challenge_method must be S256.");
    if (options.approve === false) return fail("access_denied", "The resource owner denied the request.");
    const requested = (params.get("scope") ?? "").split(/[ ,]+/).filter((s) => s !== "");
    const code = this.codes.issue({
      clientId: this.clientId,
      redirectUri,
      codeChallenge: challenge,
      userId: nonEmpty(options.userId ?? "user-1", "userId"),
      scopes: requested.length > 0 ? requested : [...this.profile.defaultScopes],
      ttlSeconds: this.profile.authorizationCodeTtlSeconds,
    });
    back.searchParams.set("code", code);
    return back.href;
  }

  /** The resource endpoint's verdict, without an HTTP round trip and without counting. */
  isAccessTokenLive(accessToken: string): boolean {
    return this.families.accessTokenState(accessToken)?.status === "active";
  }

  /**
   * Would the SCM accept this refresh token now? "active", "rotated" (used up by a refresh), "revoked"
   * (the family was revoked), "expired", or "unknown" (never issued here). Reads without counting.
   *
   * @example
   * expect(scm.refreshTokenStatus(stored.refreshToken!)).to.equal("rotated"); // a refresh used it up
   */
  refreshTokenStatus(refreshToken: string): "active" | "rotated" | "revoked" | "expired" | "unknown" {
    const record = this.families.findRefreshToken(refreshToken);
    if (!record) return "unknown";
    const view = this.families.refreshTokenView(record);
    if (view.stored !== "active") return view.stored;
    if (view.familyRevoked) return "revoked";
    return view.expired ? "expired" : "active";
  }

  /** Out-of-band revocation (the user revoked the app), by any access or refresh token of the family. */
  revokeFamilyOf(token: string): void {
    const familyId = this.families.familyIdOf(token);
    if (familyId === undefined) throw new RangeError("FakeScmServer.revokeFamilyOf: this server never issued that token");
    this.families.revokeFamily(familyId);
  }

  /** The admin deleted the client / incoming link: every family dies (BB DC `removeByClientId`). */
  revokeAll(): void {
    this.families.revokeAll();
  }

  /** Queues `failure` for the next `times` token requests (default 1). */
  failNext(failure: InjectedFailure, times = 1): void {
    this.failures.push(failure, times);
  }

  /** The next refresh request that reaches `point` stops there until `release()`. */
  pauseAt(point: PausePoint): PauseHandle {
    return this.pauses.arm(point);
  }

  /** Real-time delay before each token request is handled (I/O latency, not the injected clock). Default 0. */
  setLatency(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`FakeScmServer.setLatency: ms must be a finite number >= 0, got ${ms}`);
    this.latencyMs = ms;
  }

  resetCounters(): void {
    resetCounters(this.counters);
  }

  /** Stops listening, destroys open sockets (hanging requests included) and releases every pause. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.signalClosed();
      this.pauses.releaseAll();
      this.failures.clear();
      this.http.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
    return this.closing;
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.http.once("error", reject);
      this.http.listen(0, "127.0.0.1", () => {
        this.http.off("error", reject);
        const { port } = this.http.address() as AddressInfo;
        this.url = `http://127.0.0.1:${port}`;
        resolve();
      });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? "/", "http://fake-scm.invalid");
      if (url.pathname === this.profile.tokenPath) {
        if (req.method !== "POST") return send(res, 405, "application/json", JSON.stringify({ error: "method_not_allowed" }), { Allow: "POST" });
        return await this.handleToken(req, res, url);
      }
      if (url.pathname === this.profile.authorizePath) {
        if (req.method !== "GET") return send(res, 405, "application/json", JSON.stringify({ error: "method_not_allowed" }), { Allow: "GET" });
        return this.handleAuthorize(req, res);
      }
      if (this.profile.revocation.kind === "rfc7009" && url.pathname === this.profile.revocation.path) {
        if (req.method !== "POST") return send(res, 405, "application/json", JSON.stringify({ error: "method_not_allowed" }), { Allow: "POST" });
        return await this.handleRfc7009Revocation(req, res, url);
      }
      if (this.profile.revocation.kind === "github_grant" && grantPathMatches(this.profile.revocation.path, url.pathname)) {
        if (req.method !== "DELETE") return send(res, 405, "application/json", JSON.stringify({ message: "Not Found" }), { Allow: "DELETE" });
        return await this.handleGitHubGrantDeletion(req, res, url);
      }
      if (url.pathname === this.profile.resourcePath) {
        if (req.method !== "GET") return send(res, 405, "application/json", JSON.stringify({ error: "method_not_allowed" }), { Allow: "GET" });
        return this.handleResource(req, res);
      }
      send(res, 404, "application/json", JSON.stringify({ error: "not_found" }));
    } catch {
      // Never echo the request (it may carry tokens); a generic 500 is enough for a fake.
      send(res, 500, "application/json", JSON.stringify({ error: "server_error" }));
    }
  }

  private async handleToken(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    this.counters.tokenRequests += 1;
    const body = await readBody(req);
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));

    const failure = this.failures.take();
    if (failure && (await this.answerBeforeProcessing(failure, res))) return;

    const parsed = parseTokenRequest(req, body, url, this.profile);
    if (!parsed.ok) {
      if (parsed.reason === "unsupported_content_type") return sendError(res, this.profile.errors.unsupportedContentType);
      if (parsed.reason === "too_large") return sendError(res, { status: 413, body: { error: "invalid_request", error_description: parsed.description } });
      return this.oauthError(res, acceptsJson(req), 400, "invalid_request", parsed.description);
    }
    const request = parsed.request;

    const auth = authenticateClient(request, this.profile.clientAuth, this.clientId, this.clientSecret);
    if (!auth.ok) {
      const e = this.profile.errors.invalidClient;
      // RFC 6749 §5.2: a failed Basic authentication gets 401 with WWW-Authenticate.
      const challenge: Record<string, string> =
        auth.usedBasic && e.status === 401 && !hasHeader(e, "www-authenticate") ? { "WWW-Authenticate": 'Basic realm="fake-scm"' } : {};
      return sendTokenEndpoint(res, this.profile, request.acceptsJson, e.status, e.body, { ...e.headers, ...challenge });
    }

    const grantType = request.params["grant_type"];
    if (grantType === undefined || grantType === "") return this.oauthError(res, request.acceptsJson, 400, "invalid_request", "Missing parameter: grant_type.");
    if (grantType === "authorization_code") return this.exchangeCode(res, request, failure);
    if (grantType !== "refresh_token") return this.oauthError(res, request.acceptsJson, 400, "unsupported_grant_type", "Only grant_type=refresh_token and authorization_code are supported.");
    const refreshToken = request.params["refresh_token"];
    if (refreshToken === undefined || refreshToken === "") return this.oauthError(res, request.acceptsJson, 400, "invalid_request", "Missing parameter: refresh_token.");

    this.counters.refreshAttempts += 1;
    const outcome = await this.flow.run({
      refreshToken,
      redirectUri: request.params["redirect_uri"],
      scope: request.params["scope"],
      forceLockTimeout: failure?.kind === "lock_timeout",
    });
    if (outcome.kind === "error") return this.sendErrorFor(res, request, outcome.error);

    // Committed. The injected failures below lose the response after the state changed.
    if (failure?.kind === "commit_then_fail") {
      return send(res, failure.status ?? 502, "application/json", JSON.stringify({ error: "server_error" }));
    }
    if (failure?.kind === "commit_then_reset") {
      res.destroy();
      return;
    }
    sendTokenEndpoint(res, this.profile, request.acceptsJson, 200, tokenResponseBody(this.profile, outcome.tokens));
  }

  /** `grant_type=authorization_code` (RFC 6749 §4.1.3 + RFC 7636 §4.5): a new token family. */
  private exchangeCode(res: ServerResponse, request: TokenRequest, failure: InjectedFailure | undefined): void {
    const code = request.params["code"];
    if (code === undefined || code === "") return this.oauthError(res, request.acceptsJson, 400, "invalid_request", "Missing parameter: code.");
    const outcome = this.codes.redeem(code, this.clientId, request.params["redirect_uri"], request.params["code_verifier"]);
    if (!outcome.ok) {
      // RFC 6749 §4.1.2: a code used twice SHOULD revoke the tokens issued from it.
      if (outcome.replayedFamilyId !== undefined) this.families.revokeFamily(outcome.replayedFamilyId);
      const e = this.profile.errors.invalidAuthorizationCode;
      return sendTokenEndpoint(res, this.profile, request.acceptsJson, e.status, e.body, e.headers);
    }
    const issued = this.families.issue(this.clientId, outcome.grant.userId, outcome.grant.scopes);
    outcome.bind(issued.familyId);
    this.counters.codeExchanges += 1;
    if (failure?.kind === "commit_then_fail") return send(res, failure.status ?? 502, "application/json", JSON.stringify({ error: "server_error" }));
    if (failure?.kind === "commit_then_reset") {
      res.destroy();
      return;
    }
    const body = tokenResponseBody(this.profile, { accessToken: issued.accessToken, refreshToken: issued.refreshToken, scopes: issued.scopes, issuedAt: this.clock.now() });
    sendTokenEndpoint(res, this.profile, request.acceptsJson, 200, body);
  }

  /** GET on the authorization endpoint: approves as "user-1" and redirects (a stand-in for a browser that clicks "Authorize"). */
  private handleAuthorize(req: IncomingMessage, res: ServerResponse): void {
    let location: string;
    try {
      location = this.authorize(new URL(req.url ?? "/", this.url).href);
    } catch (e) {
      return send(res, 400, "text/plain; charset=utf-8", e instanceof Error ? e.message : "invalid authorization request");
    }
    send(res, 302, "text/plain; charset=utf-8", "", { Location: location });
  }

  /** RFC 7009: 200 for any token, known or not (RFC 7009 §2.2); client authentication as on the token endpoint. */
  private async handleRfc7009Revocation(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const parsed = parseTokenRequest(req, await readBody(req), url, this.profile);
    if (!parsed.ok) return sendError(res, { status: 400, body: { error: "invalid_request", error_description: parsed.description } });
    const request = parsed.request;
    const auth = authenticateClient(request, this.profile.clientAuth, this.clientId, this.clientSecret);
    if (!auth.ok) return sendError(res, this.profile.errors.invalidClient);
    const token = request.params["token"];
    if (token === undefined || token === "") return sendError(res, { status: 400, body: { error: "invalid_request", error_description: "Missing parameter: token." } });
    this.families.revokeToken(token);
    this.counters.revocations += 1;
    send(res, 200, "application/json; charset=utf-8", "{}");
  }

  /** GitHub's `DELETE /applications/{client_id}/grant`: Basic auth, `{"access_token": …}`; 204, or 404 for a dead or unknown token. */
  private async handleGitHubGrantDeletion(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const notFound = () => send(res, 404, "application/json; charset=utf-8", JSON.stringify({ message: "Not Found", documentation_url: "https://docs.github.com/rest/apps/oauth-applications#delete-an-app-authorization" }));
    const body = await readBody(req);
    const basic = parseBasic(req.headers.authorization);
    const clientInPath = decodeURIComponent(url.pathname.split("/").at(-2) ?? "");
    const authenticated = basic !== undefined && authenticateClient({ params: {}, basic, acceptsJson: true }, ["basic"], this.clientId, this.clientSecret).ok;
    if (!authenticated || clientInPath !== this.clientId) return notFound(); // GitHub answers 404 for bad app credentials too
    let accessToken: unknown;
    try {
      accessToken = body === "too_large" ? undefined : (JSON.parse(body.toString("utf8")) as { access_token?: unknown }).access_token;
    } catch {
      accessToken = undefined;
    }
    if (typeof accessToken !== "string") return send(res, 422, "application/json; charset=utf-8", JSON.stringify({ message: "Validation Failed" }));
    if (!this.isAccessTokenLive(accessToken)) return notFound();
    this.revokeFamilyOf(accessToken);
    this.counters.revocations += 1;
    send(res, 204, "application/json", "");
  }

  /** Failures that change no state answer at once; returns false for those that act later. */
  private async answerBeforeProcessing(failure: InjectedFailure, res: ServerResponse): Promise<boolean> {
    switch (failure.kind) {
      case "fail_before_commit":
        send(res, failure.status ?? 503, "application/json", JSON.stringify({ error: "temporarily_unavailable" }));
        return true;
      case "hang":
        await this.closed; // close() destroys the socket
        return true;
      case "malformed_json":
        send(res, 200, "application/json; charset=utf-8", TRUNCATED_JSON);
        return true;
      case "html_502":
        send(res, 502, "text/html", HTML_502_PAGE);
        return true;
      case "empty_body":
        send(res, 200, "application/json; charset=utf-8", "");
        return true;
      case "rate_limited":
        send(res, 429, "application/json", JSON.stringify({ error: "rate_limited", error_description: "Too many requests." }), {
          "Retry-After": String(failure.retryAfterSeconds ?? 60),
        });
        return true;
      case "commit_then_fail":
      case "commit_then_reset":
      case "lock_timeout":
        return false;
    }
  }

  private sendErrorFor(res: ServerResponse, request: TokenRequest, error: FakeScmHttpError): void {
    sendTokenEndpoint(res, this.profile, request.acceptsJson, error.status, error.body, error.headers);
  }

  private oauthError(res: ServerResponse, json: boolean, status: number, error: string, description: string): void {
    sendTokenEndpoint(res, this.profile, json, status, { error, error_description: description });
  }

  private handleResource(req: IncomingMessage, res: ServerResponse): void {
    this.counters.resourceRequests += 1;
    const match = /^(?:Bearer|token)\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
    const state = match ? this.families.accessTokenState(match[1]!) : undefined;
    const errors = this.profile.errors;
    if (!state) return sendError(res, errors.unknownAccessToken);
    switch (state.status) {
      case "active":
        return send(res, 200, "application/json; charset=utf-8", JSON.stringify({ user: state.userId }));
      case "rotated":
        this.counters.resourceRejectedRevokedByRefresh += 1;
        return sendError(res, errors.revokedAccessToken);
      case "revoked":
        return sendError(res, errors.revokedAccessToken);
      case "expired":
        return sendError(res, errors.expiredAccessToken);
    }
  }
}

/** Does `pathname` match a path template with `{client_id}`? */
function grantPathMatches(template: string, pathname: string): boolean {
  const [before, after] = template.split("{client_id}");
  return after !== undefined && pathname.startsWith(before!) && pathname.endsWith(after) && pathname.length > before!.length + after.length && !pathname.slice(before!.length, pathname.length - after.length).includes("/");
}

function acceptsJson(req: IncomingMessage): boolean {
  return (req.headers.accept ?? "").toLowerCase().includes("application/json");
}

function hasHeader(error: FakeScmHttpError, name: string): boolean {
  return Object.keys(error.headers ?? {}).some((k) => k.toLowerCase() === name);
}

function nonEmpty(value: string, name: string): string {
  if (typeof value !== "string" || value === "") throw new RangeError(`FakeScmServer: ${name} must be a non-empty string`);
  return value;
}
