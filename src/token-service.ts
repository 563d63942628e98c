import { randomUUID } from "node:crypto";
import { inspect } from "node:util";
import type { Registry } from "prom-client";
import type { Clock } from "./clock";
import { DecryptionError, InvalidArgumentError, ReauthorizationRequiredError, StorageError, TokenHeldError, TokenServiceError } from "./errors";
import type { FeatureFlags, TokenFlags } from "./flags/feature-flags";
import type { Logger } from "./logger";
import type { HandOutResult, TokenMetrics } from "./metrics/token-metrics";
import type { ScmProvider } from "./providers/scm-provider";
import { coveredWithoutWrite, refreshWindowMs, reservationEndMs, type ReservationState } from "./hand-out-reservation";
import { RefreshCoordinator, type LeaseOptions } from "./refresh-coordinator";
import { decide, type Decision, type EntryState, type HandOutRequest, type OpportunisticLabel, type RefreshPolicy } from "./refresh-policy";
import type { RetryOptions } from "./refresh-with-retries";
import { DEFAULT_REAP_BATCH_SIZE, reapDeadEntries } from "./reaper";
import type { StoredEntry, TokenStore } from "./storage/token-store";
import { REUSE_MODES, Token, type HandOutRef, type StoreTokenInput } from "./token";
import type { TokenCrypto } from "./token-crypto";
import { checkNumberArgument, checkObjectArgument, describeValue } from "./check-option";
import { disconnectHosts, type DisconnectResult } from "./oauth/disconnect";
import { checkHost, checkLifetimeMinutes, checkMaxWaitMs, checkOneOf, checkOptionalDate, checkOptionalString, checkScopes, checkSecretString, checkUserId } from "./validation";

/** Options of one hand-out. */
export interface GetTokenOptions {
  /** How long the token must stay valid, in minutes (default 5). */
  lifetimeMinutes?: number;
  /** Scopes the caller needs; the stored token must have them (see the token's reuse mode). */
  scopes?: string[];
  /**
   * How long this call may wait for other holders of a token that must be refreshed (drain), in ms.
   * Default: the service's `defaultMaxWaitMs` (10 minutes). When the holders' reservation ends later than
   * that, the call fails at once with TokenHeldError (or refreshes anyway with `ifHeld: "break"`);
   * pass a larger value (up to Infinity: as long as the reservation lasts) to wait longer.
   */
  maxWaitMs?: number;
  /** When the token is held by others and waiting is not allowed: "fail" (TokenHeldError, default) or "break" (refresh anyway; counted). */
  ifHeld?: "fail" | "break";
  /**
   * Make this hand-out releasable: call releaseReservation(token) when done (or use withToken), and
   * the token may be refreshed as soon as nobody else holds it. Costs one INSERT per hand-out (a
   * hold) and one DELETE at release; the hand-out is never write-free.
   */
  releasable?: boolean;
}

/** Tuning of refresh behaviour; every field has a sane default. */
export interface TokenServiceSettings {
  defaultLifetimeMinutes: number;
  /** maxWaitMs of a hand-out that passes none. */
  defaultMaxWaitMs: number;
  retry: RetryOptions;
  lease: LeaseOptions;
  /** While draining, re-check the entry at least this often (clock ms): a release can end the wait early. */
  drainPollMs: number;
  /** Releasable hand-outs also reserve the entry row, for replicas of 0.1 (TokenServiceOptions.legacyReplicas). */
  legacyReplicas?: boolean;
  /** What close() does: createTokenService closes the database it opened; in a container, nothing. */
  onClose?: () => Promise<void>;
}

const MAX_DECISION_ROUNDS = 50;

/** The keys of GetTokenOptions; any other key in a call's options is refused (a typo would be ignored). */
const GET_TOKEN_OPTION_KEYS = ["lifetimeMinutes", "scopes", "maxWaitMs", "ifHeld", "releasable"] as const satisfies ReadonlyArray<keyof GetTokenOptions>;
/** A misspelt key ("refreshTokn", "refresh_token") would drop its value silently: a stored token without its refresh token. */
const STORE_TOKEN_KEYS = ["value", "refreshToken", "expiryDate", "scopes", "username", "reuse"] as const satisfies ReadonlyArray<keyof StoreTokenInput>;

/**
 * Stores users' SCM tokens and hands them out with a guaranteed remaining lifetime.
 *
 * Every hand-out reserves the token until now + lifetime; for SCMs whose refresh revokes the old
 * access token, a refresh happens only when nobody holds the token (or, when it must, after the
 * holders' reservations end). The decision table is explained in docs/how-it-works.md.
 *
 * @example
 * const service = await createTokenService({ databaseUrl: "sqljs::memory:", providers, encryptionKeys });
 * await service.storeToken("user-1", "bitbucket.example.com", { value, refreshToken, expiryDate });
 * const token = await service.getTokenForWorkspaceStart("user-1", "bitbucket.example.com");
 * gitClone({ username: token?.username ?? "x-token-auth", password: token?.value });
 */
export class TokenService {
  private readonly providers: ReadonlyMap<string, ScmProvider>;
  private readonly hosts: ReadonlySet<string>;
  private readonly coordinator: RefreshCoordinator;

  constructor(
    private readonly store: TokenStore,
    private readonly crypto: TokenCrypto,
    providers: readonly ScmProvider[],
    private readonly flags: FeatureFlags,
    private readonly metrics: TokenMetrics,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly settings: TokenServiceSettings,
  ) {
    this.providers = new Map(providers.map((p) => [p.host, p]));
    this.hosts = new Set(this.providers.keys());
    this.coordinator = new RefreshCoordinator(store, crypto, clock, logger, metrics, settings.retry, settings.lease, (host, result) => metrics.backgroundCommit(host, result));
  }

  /** The Prometheus registry the metrics are on (the one passed in options, or a private one). */
  get metricsRegistry(): Registry {
    return this.metrics.registry;
  }

  /** A safe summary: no tokens, no keys, no database handles. */
  toJSON(): Record<string, unknown> {
    return { hosts: [...this.hosts] };
  }

  /** `util.inspect` (console.log, most loggers) shows the same summary: the database options hold its password. */
  [inspect.custom](): string {
    return `TokenService ${inspect(this.toJSON())}`;
  }

  /**
   * Releases what the service opened itself (the database, when created from a databaseUrl). First
   * it waits — at most `pendingCommitsTimeoutMs` (default 20 000, real time) — for refreshed tokens
   * still being stored in the background after a database failure: the SCM has rotated those, they
   * exist nowhere else. Commits still pending then are given up (logged as errors). Call close() on
   * shutdown (e.g. on SIGTERM) before the process exits.
   */
  async close(options: { pendingCommitsTimeoutMs?: number } = {}): Promise<void> {
    await this.coordinator.flushPendingCommits(options.pendingCommitsTimeoutMs ?? 20_000, { stop: true });
    await this.settings.onClose?.();
    // Also in a container (tokenServiceModule): the metrics leave the registry unless another service uses them.
    this.metrics.release();
  }

  /**
   * Waits (at most `timeoutMs`, real time) until refreshed tokens still being stored in the background
   * after a database failure are stored or given up; returns how many are still pending. Useful in
   * tests and before a planned database switch-over; close() does it too.
   */
  flushPendingCommits(timeoutMs = 60_000): Promise<number> {
    return this.coordinator.flushPendingCommits(timeoutMs);
  }

  /**
   * Stores (or replaces) the token of `userId` for `host`, e.g. after the OAuth authorization-code
   * exchange. Replacing clears reservations and any "re-authorisation required" mark.
   *
   * User ids are opaque and compared byte for byte, on every database: "alice", "Alice", "alicé",
   * "alice\u200b" and the NFC and NFD forms of "José" are five different users. The library never
   * normalises ids (no case folding, no Unicode normalisation); if your ids can arrive in several
   * spellings, normalise them yourself, the same way on every call. Ids with surrounding whitespace or
   * control characters are rejected (InvalidArgumentError). Hosts are the exception: host names are
   * case-insensitive, so `host` is put in its one spelling (no surrounding spaces, lower case, no
   * trailing dot) and must then be a configured provider's host.
   *
   * @example
   * await service.storeToken("user-1", "gitlab.com", { value: at, refreshToken: rt, expiryDate: new Date(Date.now() + 7200_000), scopes: ["api"] });
   */
  async storeToken(userId: string, host: string, token: StoreTokenInput): Promise<void> {
    checkUserId(userId);
    const h = checkHost(host, this.hosts);
    if (typeof token !== "object" || token === null) throw new InvalidArgumentError("token", "token must be an object { value, refreshToken?, expiryDate?, scopes?, username?, reuse? }");
    checkObjectArgument(token, "token", STORE_TOKEN_KEYS);
    const value = checkSecretString(token.value, "token.value");
    const refreshToken = token.refreshToken === undefined ? undefined : checkSecretString(token.refreshToken, "token.refreshToken");
    const expiryDate = checkOptionalDate(token.expiryDate, "token.expiryDate");
    const scopes = checkScopes(token.scopes, "token.scopes");
    const username = checkOptionalString(token.username, "token.username", 255);
    const reuse = checkOneOf(token.reuse, REUSE_MODES, "token.reuse", "whenPossible");
    await this.store.upsert(
      userId,
      h,
      {
        accessTokenCiphertext: this.crypto.encrypt("access", userId, h, value),
        refreshTokenCiphertext: refreshToken === undefined ? undefined : this.crypto.encrypt("refresh", userId, h, refreshToken),
        scopes,
        username,
        reuse,
        expiryDate,
      },
      this.clock.now(),
    );
  }

  /**
   * Hands out the token of `userId` for `host`, valid for at least `lifetimeMinutes` (default 5),
   * refreshing it if needed. Returns undefined when no token is stored.
   *
   * `userId` must be byte for byte the id the token was stored under (see storeToken): a look-alike
   * spelling (other case, accents, normal form, invisible characters) is another user and gets
   * undefined. The token is decrypted as this (userId, host), so a row of anyone else can never be
   * handed out: it fails with DecryptionError.
   *
   * @throws InvalidArgumentError, ReauthorizationRequiredError, ScmUnavailableError, TokenHeldError,
   *   DecryptionError (the stored token does not decrypt: its key is not in encryptionKeys, or the row
   *   is not this user's; nothing is reserved or consumed, so the call can succeed once the key is back)
   * @example
   * const token = await service.getTokenForHost("user-1", "bitbucket.example.com", { lifetimeMinutes: 5 });
   */
  async getTokenForHost(userId: string, host: string, options: GetTokenOptions = {}): Promise<Token | undefined> {
    checkUserId(userId);
    const h = checkHost(host, this.hosts);
    checkObjectArgument(options, "options", GET_TOKEN_OPTION_KEYS);
    const lifetimeMs = checkLifetimeMinutes(options.lifetimeMinutes ?? this.settings.defaultLifetimeMinutes);
    const scopes = checkScopes(options.scopes);
    const maxWaitMs = checkMaxWaitMs(options.maxWaitMs, this.settings.defaultMaxWaitMs);
    const ifHeld = checkOneOf(options.ifHeld, ["fail", "break"] as const, "ifHeld", "fail");
    if (options.releasable !== undefined && typeof options.releasable !== "boolean") throw new InvalidArgumentError("releasable", "releasable must be true or false");
    const flags = await this.flags.getFlags(userId);
    return this.handOut(userId, h, { lifetimeMs, maxWaitMs, ifHeld }, scopes, flags, options.releasable === true);
  }

  /**
   * Hands out a token for cloning a new workspace: the lifetime comes from the flag
   * `workspace_start_scm_access_token_lifetime` (default 10 minutes), and the token is reserved
   * for that long, so no opportunistic refresh revokes it mid-clone. `lifetimeMinutes` is the flag's:
   * passing one throws InvalidArgumentError (it would otherwise be ignored).
   */
  async getTokenForWorkspaceStart(userId: string, host: string, options: Omit<GetTokenOptions, "lifetimeMinutes"> = {}): Promise<Token | undefined> {
    checkUserId(userId);
    checkHost(host, this.hosts);
    // lifetimeMinutes is the flag's to set here: passing one would be overridden silently, so it is refused.
    checkObjectArgument(options, "options", GET_TOKEN_OPTION_KEYS.filter((k) => k !== "lifetimeMinutes"));
    const flags = await this.flags.getFlags(userId);
    return this.getTokenForHost(userId, host, { ...options, lifetimeMinutes: flags.workspaceStartLifetimeMinutes });
  }

  /**
   * Gives back the reservation of a releasable hand-out (the clone finished, the API call returned),
   * so the token may be refreshed as soon as no one else holds it. Idempotent: returns false when
   * the hand-out was already released or its hold has ended.
   *
   * @example
   * const token = await service.getTokenForWorkspaceStart(userId, host, { releasable: true });
   * try { await clone(token); } finally { if (token) await service.releaseReservation(token); }
   */
  async releaseReservation(handOut: Token | HandOutRef): Promise<boolean> {
    const ref = handOut instanceof Token ? handOut.handOut : handOut;
    // The ref comes back from the caller: only ids this service could have issued reach the database,
    // and only a configured host reaches a log line or a metric label.
    if (typeof ref !== "object" || ref === null || !isId(ref.entryId) || typeof ref.host !== "string" || !this.hosts.has(ref.host)) {
      throw new InvalidArgumentError("handOut", "pass the Token (or its handOut) returned by getTokenForHost / getTokenForWorkspaceStart");
    }
    if (ref.holdId === undefined) {
      throw new InvalidArgumentError("handOut", "this hand-out is not releasable: request it with { releasable: true } or use withToken()");
    }
    if (!isId(ref.holdId)) throw new InvalidArgumentError("handOut", "handOut.holdId is not a hold id this service issued; pass the Token returned by a releasable hand-out");
    // The hold is the whole reservation of a releasable hand-out: deleting it is the release.
    if (!(await this.store.deleteHold(ref.holdId))) return false;
    this.metrics.released(ref.host);
    return true;
  }

  /**
   * get → use → release: hands a releasable token to `use` and releases it when `use` settles.
   *
   * @example
   * await service.withToken(userId, host, { lifetimeMinutes: 10 }, async (token) => clone(repo, token));
   */
  async withToken<T>(userId: string, host: string, options: Omit<GetTokenOptions, "releasable">, use: (token: Token | undefined) => Promise<T>): Promise<T> {
    // Checked before the hand-out: a bad callback must not cost a reservation.
    checkObjectArgument(options, "options", GET_TOKEN_OPTION_KEYS.filter((k) => k !== "releasable"));
    if (typeof use !== "function") throw new InvalidArgumentError("use", `use must be a function (token) => Promise<T>, got ${describeValue(use)}`);
    const token = await this.getTokenForHost(userId, host, { ...options, releasable: true });
    try {
      return await use(token);
    } finally {
      if (token) await this.releaseReservation(token);
    }
  }

  /**
   * The provider configured for `host` (any spelling of the host name).
   * @throws InvalidArgumentError when no provider has this host
   */
  getProvider(host: string): ScmProvider {
    return this.providers.get(checkHost(host, this.hosts))!;
  }

  /**
   * Disconnects a user from one host (or all): deletes the stored tokens, then revokes them at the SCM
   * where it offers revocation (each provider's `revocation` capability; docs/oauth-lifecycle.md). A
   * failed revocation never blocks or undoes the deletion: it is logged (never the token), counted in
   * `scm_token_revocations_total{result="failed"}` and reported in the result.
   *
   * @example
   * const { deleted, hosts } = await service.disconnect("user-1", "gitlab.com");
   * // hosts: [{ host: "gitlab.com", revocation: "revoked" }]
   */
  async disconnect(userId: string, host?: string, options: { timeoutMs?: number } = {}): Promise<DisconnectResult> {
    checkUserId(userId);
    const hosts = host === undefined ? [...this.hosts] : [checkHost(host, this.hosts)];
    checkObjectArgument(options, "options", ["timeoutMs"]);
    const timeoutMs = options.timeoutMs === undefined ? 10_000 : checkNumberArgument(options.timeoutMs, "timeoutMs", { min: 100, max: 120_000 });
    return disconnectHosts({ store: this.store, crypto: this.crypto, providers: this.providers, metrics: this.metrics, logger: this.logger, clock: this.clock, timeoutMs }, userId, hosts);
  }

  /**
   * Deletes the stored tokens of a user (for one host, or all). Returns how many were deleted.
   * Does not revoke them at the SCM: use disconnect() for that.
   */
  async deleteTokens(userId: string, host?: string): Promise<number> {
    checkUserId(userId);
    const h = host === undefined ? undefined : checkHost(host, this.hosts);
    return this.store.delete(userId, h);
  }

  /**
   * Deletes entries that can never be handed out again (expired with no refresh token, or expired
   * and marked for re-authorisation), then releasable holds that ended over an hour ago, in paced
   * batches of `batchSize` (default 250; src/reaper.ts). Safe to run on every replica at once.
   * Returns the number of entries deleted.
   */
  async reapExpired(options: { batchSize?: number; maxBatches?: number } = {}): Promise<number> {
    checkObjectArgument(options, "options", ["batchSize", "maxBatches"]);
    const batchSize = options.batchSize === undefined ? DEFAULT_REAP_BATCH_SIZE : checkNumberArgument(options.batchSize, "batchSize", { min: 1, max: 100_000, integer: true });
    const maxBatches = options.maxBatches === undefined ? Number.POSITIVE_INFINITY : checkNumberArgument(options.maxBatches, "maxBatches", { min: 1, max: Number.POSITIVE_INFINITY, integer: true });
    return (await reapDeadEntries(this.store, { batchSize, maxBatches, now: () => this.clock.now() })).deleted;
  }

  private async handOut(userId: string, host: string, request: HandOutRequest, scopes: string[], flags: TokenFlags, releasable: boolean): Promise<Token | undefined> {
    const provider = this.providers.get(host)!;
    const policy: RefreshPolicy = {
      opportunistic: flags.opportunisticRefresh,
      horizonMs: flags.horizonMinutes === undefined ? undefined : flags.horizonMinutes * 60_000,
      horizonMarginMs: flags.horizonMarginMinutes === undefined ? null : flags.horizonMarginMinutes * 60_000,
      drain: flags.drain,
    };
    const traits = { revokesOnRefresh: provider.requiresOpportunisticRefresh };
    // How long before expiry an opportunistic refresh may happen: the reservation slack stays out of it.
    const windowMs = refreshWindowMs(policy, traits);
    const startedMs = this.clock.now().getTime();
    let label: OpportunisticLabel = "false";
    let refreshed = false;
    /** The version this call's refresh stored (its commit reserved it for this call). */
    let refreshedVersion: number | undefined;
    let waited = false;
    let drained = false;

    let counted = false;
    const count = (result: HandOutResult) => {
      counted = true;
      this.metrics.handOut(host, result, label);
    };
    try {
      for (let round = 0; round < MAX_DECISION_ROUNDS; round++) {
        const entry = await this.store.find(userId, host);
        if (entry && (entry.userId !== userId || entry.host !== host)) throw this.misroutedRow(host);
        if (entry?.reauthorizationReason) {
          throw new ReauthorizationRequiredError(host, "marked", entry.reauthorizationReason);
        }
        if (entry) this.checkScopes(entry, scopes, host);
        const now = this.clock.now().getTime();
        if (entry?.reuse === "never") {
          // A one-shot token (reuse "never"): handed out once, taken atomically, never refreshed.
          if (entry.expiryDate && entry.expiryDate.getTime() < now + request.lifetimeMs) {
            count("not_refreshable");
            throw new ReauthorizationRequiredError(host, "not_refreshable");
          }
          // Decrypt before taking: a token that does not decrypt (its key left the ring) stays stored, and
          // can still be handed out once the key is back. Exactly one concurrent taker wins the DELETE.
          const value = this.decryptAccess(userId, host, entry);
          if (!(await this.store.takeOnce(entry.id, entry.version))) continue;
          count("still_valid");
          return this.toToken(userId, host, entry, value, undefined);
        }
        const remainingWait = request.maxWaitMs - (now - startedMs);
        const decided = this.decideWithHolds(entry, { ...request, maxWaitMs: Math.max(0, remainingWait) }, now, policy, traits);
        // Not `await` on a decision already made (the usual case): it would yield to the event loop for nothing.
        let decision = decided instanceof Promise ? await decided : decided;
        if (refreshed && entry?.expiryDate && entry.expiryDate.getTime() > now && (decision.action === "refresh" || decision.action === "wait" || decision.action === "held")) {
          // Invariant 1's exception: this call just refreshed and the SCM's new token is still shorter
          // than the lifetime (the commit logged and counted it). Hand it out; refreshing again would loop.
          decision = { action: "reuse", label: "false", extendReservation: true };
        }
        if ("label" in decision && !refreshed) label = decision.label;

        switch (decision.action) {
          case "none":
            count("no_token");
            return undefined;
          case "not_refreshable":
            count("not_refreshable");
            this.metrics.reauthorizationRequired(host, "not_refreshable");
            throw new ReauthorizationRequiredError(host, "not_refreshable");
          case "held":
            count("error");
            throw new TokenHeldError(host, new Date(decision.untilMs));
          case "wait":
            if (!drained) this.drainStarts(entry!, decision.untilMs, request.maxWaitMs);
            waited = drained = true;
            await this.drain(entry!, decision.untilMs);
            // A drain poll is not a contended attempt: the wait is bounded by maxWaitMs and by the end of
            // the reservation (no hand-out extends it while draining), not by MAX_DECISION_ROUNDS.
            round--;
            continue;
          case "reuse": {
            const outcome = await this.reserveAndHandOut(userId, host, entry!, now, { lifetimeMs: request.lifetimeMs, releasable, refreshWindowMs: windowMs, ownRefresh: entry!.version === refreshedVersion });
            waited ||= outcome.waitedForLease;
            if (!outcome.token) continue;
            count(waited ? "waited" : refreshed ? "success" : "still_valid");
            return outcome.token;
          }
          case "refresh": {
            const outcome = await this.coordinator.refresh({
              entry: entry!,
              provider,
              forced: decision.forced,
              breaksReservation: decision.breaksReservation,
              lifetimeMs: request.lifetimeMs,
              // For the log line: the refresh a drain waited for, one the request needs, or one by choice.
              mode: entry!.drainingSince ? "drained" : decision.forced ? "forced" : "opportunistic",
            });
            if (outcome.kind === "refreshed") {
              refreshed = true;
              refreshedVersion = entry!.version + 1;
            }
            if (outcome.kind === "waited_for_other") {
              waited = true;
              this.metrics.waited(host, "lease", outcome.waitedMs / 1000);
            }
            if (outcome.kind === "keep_current") {
              // The opportunistic refresh failed transiently; the stored token still covers the request.
              const kept = await this.reserveAndHandOut(userId, host, entry!, now, { lifetimeMs: request.lifetimeMs, releasable, refreshWindowMs: windowMs, ownRefresh: false });
              waited ||= kept.waitedForLease;
              if (!kept.token) continue;
              label = "false";
              count("still_valid");
              return kept.token;
            }
            continue;
          }
        }
      }
      throw new TokenServiceError("STORAGE", `the entry for ${host} kept changing during ${MAX_DECISION_ROUNDS} attempts to hand it out; retry`);
    } catch (e) {
      if (!counted) count(resultOf(e));
      throw e;
    } finally {
      if (drained) this.metrics.waited(host, "drain", (this.clock.now().getTime() - startedMs) / 1000);
    }
  }

  /**
   * decide() on the effective reservation: the entry's reservedUntilDate (non-releasable hand-outs)
   * and the latest live hold (releasable ones). The holds are read only when they can change the
   * outcome — when decide() on the row alone would refresh, wait or fail, or while the entry drains
   * (a hand-out joins a drain only within the reservation) — so a hand-out that reuses the token
   * stays one SELECT (plus its own write). More reservation never turns a reuse into anything else.
   */
  private decideWithHolds(entry: StoredEntry | undefined, request: HandOutRequest, nowMs: number, policy: RefreshPolicy, traits: { revokesOnRefresh: boolean }): Decision | Promise<Decision> {
    const decision = decide(entry && toEntryState(entry), request, nowMs, policy, traits);
    if (!entry || !traits.revokesOnRefresh) return decision;
    if (decision.action !== "refresh" && decision.action !== "wait" && decision.action !== "held" && !entry.drainingSince) return decision;
    return this.store.liveHolds(entry.id, entry.version, new Date(nowMs)).then((holds) => decide(toEntryState(entry, holds.latestUntil), request, nowMs, policy, traits));
  }

  /**
   * A hand-out starts waiting for holders: said at warn (a caller blocked for long must be visible
   * while it waits, not only afterwards) and counted now, so a wait that ends in an error is counted too.
   */
  private drainStarts(entry: StoredEntry, untilMs: number, maxWaitMs: number): void {
    const waitMs = Math.max(0, untilMs - this.clock.now().getTime());
    this.metrics.waitStarted(entry.host, "drain");
    this.logger.warn(
      { host: entry.host, reservedUntil: new Date(untilMs).toISOString(), waitMs, maxWaitMs: Number.isFinite(maxWaitMs) ? maxWaitMs : "Infinity" },
      "Token must be refreshed but is held; waiting for holders to finish",
    );
  }

  /**
   * Drain: stop further extensions of the reservation, then wait (clock time) until it ends — or
   * less, re-reading the entry every drainPollMs, because holders may release early.
   */
  private async drain(entry: StoredEntry, untilMs: number): Promise<void> {
    if (!entry.drainingSince) await this.store.markDraining(entry.id, entry.version, this.clock.now());
    await this.clock.sleep(Math.min(this.settings.drainPollMs, Math.max(0, untilMs - this.clock.now().getTime())));
  }

  /**
   * Records this hand-out (a hold if releasable, else a pinned reservation) and hands the token out.
   * No token when the entry changed under us and the caller must decide again — after waiting
   * (bounded) if another process holds the refresh lease.
   *
   * The token is decrypted first: a token that does not decrypt throws DecryptionError before any
   * hold or reservation is written, so a failed hand-out never keeps the token from being refreshed.
   *
   * During a drain (the entry was read draining) the write drops its drain guard: decide() has let
   * this hand-out join, normally only within the effective reservation it read (see
   * docs/how-it-works.md, "Drain"), so the drain ends no later than the reservation it found.
   */
  private async reserveAndHandOut(userId: string, host: string, entry: StoredEntry, nowMs: number, how: RecordOptions): Promise<{ token?: Token; waitedForLease: boolean }> {
    const { lifetimeMs } = how;
    const value = this.decryptAccess(userId, host, entry);
    const recorded = how.releasable ? await this.recordHold(entry, nowMs, lifetimeMs, how.ownRefresh) : await this.recordPin(entry, nowMs, lifetimeMs, how.refreshWindowMs);
    if (recorded) {
      // The caller's own promise (now + lifetime) or the longer pinned reservation it joined; not the slack.
      const reservedUntil = new Date(Math.max(nowMs + lifetimeMs, entry.reservedUntilDate?.getTime() ?? 0));
      return { token: this.toToken(userId, host, entry, value, reservedUntil, recorded.holdId), waitedForLease: false };
    }
    const waitedMs = await this.coordinator.waitWhileLeased(entry);
    if (waitedMs > 0) this.metrics.waited(entry.host, "lease", waitedMs / 1000);
    return { waitedForLease: waitedMs > 0 };
  }

  /**
   * A releasable hand-out: one INSERT … SELECT of a hold of exactly its lifetime, which a release
   * deletes. The entry row is not written (src/hand-out-reservation.ts says why that is safe).
   *
   * `ownRefresh`: this call refreshed this version, and the refresh's commit reserved it for this
   * call on the entry row (so that nobody refreshed it again before this hand-out was recorded). A
   * release could not give that back: once the hold is in, it is ended (one more UPDATE, on this
   * rare path only).
   *
   * A hold this call cannot hand out is deleted before the error reaches the caller, who never learns
   * its id and so could never release it: when the INSERT fails with an unknown outcome (a transient
   * StorageError — the connection was lost or the statement deadline passed, possibly after the server
   * committed; the id is chosen here, before the statement is sent), and when the legacyReplicas row
   * reservation after it fails. Best effort (abandonHold): the caller gets the original error, at most
   * one statement deadline later; if the DELETE fails too (the database is still away) the hold ends by
   * itself at its heldUntil (now + lifetime), and until then a refresh that must not break holders
   * waits for it or fails with TokenHeldError, as for any unreleased hand-out.
   */
  private async recordHold(entry: StoredEntry, nowMs: number, lifetimeMs: number, ownRefresh: boolean): Promise<{ holdId: string } | undefined> {
    const until = new Date(nowMs + lifetimeMs);
    const duringDrain = entry.drainingSince !== undefined;
    const newHoldId = randomUUID();
    let holdId: string | undefined;
    try {
      holdId = await this.store.insertHold(entry.id, entry.version, until, new Date(nowMs), { duringDrain }, newHoldId);
    } catch (e) {
      // Any other failure is the server's refusal: nothing was inserted.
      if (e instanceof StorageError && e.transient) await this.abandonHold(newHoldId, entry.host);
      throw e;
    }
    if (holdId === undefined) return undefined;
    // A 0.1 replica sees only the row's reservation: reserve the row too, after the hold and under the
    // lease guard, in 0.1's own order (its release recomputes the reservation from the holds, so the
    // hold must be there first). A refresh lease taken in between: no hand-out, the hold goes.
    if (this.settings.legacyReplicas) {
      let reserved: boolean;
      try {
        reserved = await this.store.reserve(entry.id, entry.version, until, new Date(nowMs), { pin: false, duringDrain });
      } catch (e) {
        await this.abandonHold(holdId, entry.host);
        throw e;
      }
      if (reserved) return { holdId };
      await this.store.deleteHold(holdId);
      return undefined;
    }
    if (ownRefresh) {
      await this.store
        .endRefreshReservation(entry.id, entry.version)
        .catch((e: unknown) => this.logger.warn({ host: entry.host, error: e instanceof Error ? e.name : typeof e }, "Could not end the refresh's reservation after recording the hold; it ends by itself"));
    }
    return { holdId };
  }

  /**
   * Deletes a hold that a failed hand-out may have left (see recordHold). Never throws: the caller is
   * about to rethrow its own error, which must stay what it is. A failure is logged at warn — the host
   * and the error's name and driver code, never an id or a token — and the hold ends by itself at its
   * heldUntil. Bounded by the statement deadline (statementTimeoutMs), as every statement.
   */
  private async abandonHold(holdId: string, host: string): Promise<void> {
    try {
      await this.store.deleteHold(holdId);
    } catch (e) {
      this.logger.warn(
        { host, error: e instanceof Error ? e.name : typeof e, ...(e instanceof StorageError ? { driverCode: e.driverCode ?? "unknown" } : {}) },
        "Could not delete the hold of a failed releasable hand-out; it ends by itself at the end of the hand-out's lifetime, and until then a refresh that must not break holders waits for it",
      );
    }
  }

  /**
   * A non-releasable hand-out. Write-free when the version's pin already covers it
   * (src/hand-out-reservation.ts says why that is safe); else one conditional UPDATE that pins the
   * token a little longer than asked (the slack), so that the next hand-outs are write-free.
   */
  private async recordPin(entry: StoredEntry, nowMs: number, lifetimeMs: number, windowMs: number | undefined): Promise<{ holdId?: undefined } | undefined> {
    const state = toReservationState(entry);
    if (coveredWithoutWrite(state, nowMs, lifetimeMs)) {
      this.metrics.writeFreeHandOut(entry.host);
      return {};
    }
    const until = new Date(reservationEndMs(nowMs, lifetimeMs, state, windowMs));
    return (await this.store.reserve(entry.id, entry.version, until, new Date(nowMs), { pin: true, duringDrain: state.draining })) ? {} : undefined;
  }

  private checkScopes(entry: StoredEntry, requested: string[], host: string): void {
    if (requested.length === 0) return;
    const stored = new Set(entry.scopes);
    const missing = requested.filter((s) => !stored.has(s));
    if (missing.length > 0) {
      throw new InvalidArgumentError("scopes", `the stored token for ${host} lacks the scopes ${missing.join(", ")}; the user must authorise them`);
    }
    if (entry.reuse === "exactly" && stored.size !== requested.length) {
      throw new InvalidArgumentError("scopes", `the stored token for ${host} may only be reused for exactly its scopes (${entry.scopes.join(" ")}); requested ${requested.join(" ")}`);
    }
  }

  /**
   * Decrypts the access token as the caller's (userId, host) — the identity the public method was
   * called with, never the row's — so a row that is not the caller's fails authentication
   * (DecryptionError) however it was found.
   */
  private decryptAccess(userId: string, host: string, entry: StoredEntry): string {
    return this.crypto.decrypt("access", userId, host, entry.accessTokenCiphertext);
  }

  /**
   * The store returned a row of another (userId, host) than asked for: on MySQL/MariaDB that means
   * the identifier columns compare case- or accent-insensitively (the library's migrations have not
   * all run). Nothing is handed out, refreshed or reserved. Names neither user.
   */
  private misroutedRow(host: string): DecryptionError {
    this.logger.error({ host }, "The database returned another user's token row for a lookup; nothing was handed out. Run the library's migrations (identifier columns must compare byte for byte)");
    return new DecryptionError(
      `the database returned another user's token row for this user and ${host}; nothing was handed out. Run the library's migrations (BinaryIdentifierCollation): identifier columns must compare byte for byte`,
    );
  }

  private toToken(userId: string, host: string, entry: StoredEntry, value: string, reservedUntil: Date | undefined, holdId?: string): Token {
    return new Token(value, entry.scopes, entry.expiryDate, reservedUntil, entry.username, {
      userId,
      host,
      entryId: entry.id,
      version: entry.version,
      reservedUntil,
      holdId,
    });
  }
}

/** How reserveAndHandOut records a hand-out. */
interface RecordOptions {
  lifetimeMs: number;
  releasable: boolean;
  /** The horizon when opportunistic refresh is on (see reservationEndMs). */
  refreshWindowMs: number | undefined;
  /** This call's own refresh stored the entry's version (see recordHold). */
  ownRefresh: boolean;
}

/** An entry or hold id as the store issues them (a UUID); anything else is not ours. */
function isId(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= 64 && /^[0-9A-Za-z-]+$/.test(value);
}

function toReservationState(entry: StoredEntry): ReservationState {
  return {
    expiresAtMs: entry.expiryDate?.getTime(),
    pinnedUntilMs: entry.pinnedUntilDate?.getTime(),
    draining: entry.drainingSince !== undefined,
    refreshLeaseUntilMs: entry.refreshLeaseUntil?.getTime(),
  };
}

/**
 * What decide() sees. The reservation is the entry's reservedUntilDate (non-releasable hand-outs,
 * and the requester of the last refresh) or, when given, the later end of the live holds. (Rows
 * written before holds became the releasable reservation may carry a reservedUntilDate raised by
 * releasable hand-outs; it ends by itself.)
 */
function toEntryState(entry: StoredEntry, latestHold?: Date): EntryState {
  const reserved = Math.max(entry.reservedUntilDate?.getTime() ?? 0, latestHold?.getTime() ?? 0);
  return {
    expiresAtMs: entry.expiryDate?.getTime(),
    reservedUntilMs: reserved > 0 ? reserved : undefined,
    refreshable: entry.refreshTokenCiphertext !== undefined,
    draining: entry.drainingSince !== undefined,
  };
}

function resultOf(error: unknown): HandOutResult {
  if (error instanceof ReauthorizationRequiredError) return "reauthorization_required";
  if (error instanceof TokenServiceError && error.code === "SCM_UNAVAILABLE") return "scm_unavailable";
  return "error";
}
