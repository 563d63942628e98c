import { randomUUID } from "node:crypto";
import type { Clock } from "./clock";
import { ReauthorizationRequiredError, RefreshInProgressError, ScmUnavailableError } from "./errors";
import type { Logger } from "./logger";
import type { TokenMetrics } from "./metrics/token-metrics";
import { RefreshRejectedError, TransientScmError, type RefreshedToken, type ScmProvider } from "./providers/scm-provider";
import { RefreshCommitter, type BackgroundCommitResult, type CommitLease } from "./refresh-commit";
import { refreshWithRetries, type RetryOptions, type RetryTrail } from "./refresh-with-retries";
import type { StoredEntry, TokenStore } from "./storage/token-store";
import type { TokenCrypto } from "./token-crypto";

/** Cross-process refresh lease settings. */
export interface LeaseOptions {
  /** How long a lease protects a refresh; a holder that dies is taken over after this (default 60 s, clock time). */
  leaseMs: number;
  /** How long a caller waits for another process's refresh before giving up (default 30 s, real time). */
  waitForOtherMs: number;
}

export const DEFAULT_LEASE: LeaseOptions = { leaseMs: 60_000, waitForOtherMs: 30_000 };

/** What the caller should do next. */
export type RefreshOutcome =
  | { kind: "refreshed" }          // a new token is committed: re-read and hand it out
  | { kind: "changed" }            // the entry changed under us (a sibling refreshed, a hand-out reserved it): decide again
  | { kind: "waited_for_other"; waitedMs: number } // another process refreshed (or gave up): decide again
  | { kind: "held" }               // a releasable hand-out holds the token (found under the lease, which was given back): decide again
  | { kind: "keep_current" };      // a non-forced refresh failed transiently; the current token still covers the request

/** What the caller decided (from decide()). */
export interface RefreshRequest {
  entry: StoredEntry;
  provider: ScmProvider;
  forced: boolean;
  breaksReservation: boolean;
  lifetimeMs: number;
  /** "opportunistic" | "forced" | "drained", for the log line. */
  mode: string;
}

/**
 * Makes sure at most one refresh per entry is in flight ("one refresh at a time" and "no lost rotation"
 * in docs/how-it-works.md):
 * in this process through one shared promise per entry version; across processes through a lease on
 * the row taken by a conditional UPDATE. The new token is committed by compare-and-set on `version`
 * before anyone uses it; an invalid_grant is believed only after re-reading the row.
 */
export class RefreshCoordinator {
  private readonly inFlight = new Map<string, Promise<RefreshOutcome>>();
  private readonly processId = randomUUID().slice(0, 8);
  private readonly committer: RefreshCommitter;

  constructor(
    private readonly store: TokenStore,
    private readonly crypto: TokenCrypto,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly metrics: TokenMetrics,
    private readonly retry: RetryOptions,
    private readonly lease: LeaseOptions,
    onBackgroundCommit?: (host: string, result: BackgroundCommitResult) => void,
  ) {
    this.committer = new RefreshCommitter(store, clock, logger, onBackgroundCommit);
  }

  /**
   * Waits (at most `timeoutMs`, real time) for refreshed tokens still being stored in the background
   * after a database failure; returns how many were still pending. With `stop`, those give up.
   */
  flushPendingCommits(timeoutMs: number, options: { stop?: boolean } = {}): Promise<number> {
    return this.committer.flush(timeoutMs, options);
  }

  refresh(request: RefreshRequest): Promise<RefreshOutcome> {
    const key = `${request.entry.id}:${request.entry.version}`;
    let promise = this.inFlight.get(key);
    if (!promise) {
      promise = this.refreshOnce(request).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, promise);
    }
    return promise;
  }

  private async refreshOnce(request: RefreshRequest): Promise<RefreshOutcome> {
    const { entry } = request;
    const now = this.clock.now();
    const owner = `${this.processId}-${randomUUID().slice(0, 8)}`;
    const tookOverExpiredLease = !!entry.refreshLeaseUntil && entry.refreshLeaseUntil.getTime() < now.getTime();
    // A refresh that must not break holders requires, atomically, that nobody holds the token now (the
    // row's reservation), and checks the holds once it has the lease. At a provider whose refresh leaves
    // the old access token valid there is nothing to break: a holder keeps working, so a forced refresh
    // must not wait for (or loop on) a reservation. A refresh that breaks reservations on purpose ignores both.
    const respectsHolders = !request.breaksReservation && request.provider.requiresOpportunisticRefresh;
    const onlyIfUnreservedAt = respectsHolders ? now : undefined;
    const lease: CommitLease = { owner, until: new Date(now.getTime() + this.lease.leaseMs), untilRealMs: Date.now() + this.lease.leaseMs };
    const leased = await this.store.takeLease(entry.id, entry.version, owner, lease.until, now, onlyIfUnreservedAt);
    if (!leased) return this.afterLostLease(entry);
    if (tookOverExpiredLease) {
      this.logger.warn({ host: entry.host, previousOwner: entry.refreshLeaseOwner }, "Took over an expired refresh lease; its holder may have died mid-refresh");
    }
    try {
      if (respectsHolders && (await this.heldUnderLease(request, now))) return { kind: "held" };
      return await this.refreshUnderLease(request, lease, tookOverExpiredLease);
    } finally {
      // No-op when the commit already cleared the lease. A commit still retrying in the background
      // keeps it: the lease is what stops anyone else from refreshing with the rotated-away token.
      if (!this.committer.hasPending(owner)) await this.store.releaseLease(entry.id, owner).catch((e: unknown) => this.logger.warn({ host: entry.host, error: errorName(e) }, "Could not release the refresh lease; it expires by itself"));
    }
  }

  /**
   * The refresher's half of the hold protocol (src/hand-out-reservation.ts): the lease UPDATE has
   * committed, so no hold of this version can be inserted any more, and this read — a new statement
   * — sees every hold that was. A live one (it ends after now, and before the token expires) means a
   * releasable hand-out holds the token: the caller gives the lease back (finally in refreshOnce)
   * and decides again. Asked only by a refresh that respects holders (see refreshOnce).
   */
  private async heldUnderLease(request: RefreshRequest, now: Date): Promise<boolean> {
    const { entry } = request;
    if (entry.expiryDate && entry.expiryDate.getTime() <= now.getTime()) return false;
    const holds = await this.store.liveHolds(entry.id, entry.version, now);
    if (holds.count === 0) return false;
    this.logger.debug({ host: entry.host, heldUntil: holds.latestUntil?.toISOString(), mode: request.mode }, "Refresh skipped: a releasable hand-out holds the token (its hold came before the lease)");
    return true;
  }

  private async refreshUnderLease(request: RefreshRequest, lease: CommitLease, tookOverExpiredLease: boolean): Promise<RefreshOutcome> {
    const { entry, provider } = request;
    const refreshToken = this.crypto.decrypt("refresh", entry.userId, entry.host, entry.refreshTokenCiphertext!);
    const trail: RetryTrail = { attempts: 0, sawAmbiguousFailure: false };
    const stopTimer = this.metrics.startRefreshTimer(entry.host);
    let refreshed: RefreshedToken;
    try {
      refreshed = await refreshWithRetries(provider, refreshToken, this.clock, this.retry, trail);
    } catch (e) {
      if (e instanceof RefreshRejectedError) return this.onRejected(entry, e, trail.sawAmbiguousFailure || tookOverExpiredLease);
      if (e instanceof TransientScmError) return this.onUnavailable(request, e, trail);
      throw e;
    } finally {
      stopTimer();
    }
    return this.commit(request, refreshed, refreshToken, lease);
  }

  /** Persist first (invariant 5): nothing else sees the new token before it is in the store. */
  private async commit(request: RefreshRequest, refreshed: RefreshedToken, oldRefreshToken: string, lease: CommitLease): Promise<RefreshOutcome> {
    const { entry, lifetimeMs } = request;
    const now = this.clock.now();
    // An SCM that does not rotate omits refresh_token: keep the one we have (never erase a good refresh token).
    const refreshToken = refreshed.refreshToken ?? oldRefreshToken;
    const values = {
      accessTokenCiphertext: this.crypto.encrypt("access", entry.userId, entry.host, refreshed.accessToken),
      refreshTokenCiphertext: this.crypto.encrypt("refresh", entry.userId, entry.host, refreshToken),
      scopes: refreshed.scopes ?? entry.scopes,
      expiryDate: refreshed.expiresAt,
      reservedUntilDate: new Date(now.getTime() + lifetimeMs),
    };
    // Throws a transient StorageError when the database stays away; storing then goes on in the background.
    const committed = await this.committer.commit(entry, values, now, lease);
    if (!committed) {
      this.logger.warn({ host: entry.host, owner: lease.owner }, "Refreshed token discarded: the entry changed while refreshing (a newer token was stored)");
      return { kind: "changed" };
    }
    if (request.breaksReservation) {
      this.metrics.reservationBroken(entry.host);
      this.logger.warn({ host: entry.host, reservedUntil: entry.reservedUntilDate?.toISOString() }, "Forced refresh revoked a token that was still reserved");
    }
    if (refreshed.expiresAt && refreshed.expiresAt.getTime() < now.getTime() + lifetimeMs) {
      this.metrics.shortLivedToken(entry.host);
      this.logger.warn({ host: entry.host, expiresAt: refreshed.expiresAt.toISOString(), requestedMinutes: lifetimeMs / 60_000 }, "The SCM issued a token shorter than the requested lifetime");
    }
    this.logger.info(
      { host: entry.host, mode: request.mode, oldExpiry: entry.expiryDate?.toISOString(), newExpiry: refreshed.expiresAt?.toISOString(), reservationBroken: request.breaksReservation },
      "Token refreshed",
    );
    return { kind: "refreshed" };
  }

  /** A reservation was refused: if another process's refresh lease is live, wait for it instead of spinning. */
  async waitWhileLeased(entry: StoredEntry): Promise<number> {
    const outcome = await this.afterLostLease(entry);
    return outcome.kind === "waited_for_other" ? outcome.waitedMs : 0;
  }

  /** invalid_grant: believe it only if the row still holds the token we sent (a sibling may have won). */
  private async onRejected(entry: StoredEntry, error: RefreshRejectedError, mayHaveLostRotation: boolean): Promise<RefreshOutcome> {
    const current = await this.store.findById(entry.id);
    if (!current || current.version !== entry.version) return { kind: "changed" };
    const reason = mayHaveLostRotation ? "lost_rotation" : "invalid_grant";
    // The mark only makes later calls fail fast; failing to write it must not hide the verdict.
    await this.store
      .markReauthorizationRequired(entry.id, entry.version, reason)
      .catch((e: unknown) => this.logger.warn({ host: entry.host, error: errorName(e) }, "Could not mark the entry for re-authorisation"));
    this.metrics.reauthorizationRequired(entry.host, reason);
    this.logger.warn({ host: entry.host, reason, oauthError: error.oauthError }, "Refresh token rejected by the SCM; the user must re-authorise");
    throw new ReauthorizationRequiredError(entry.host, reason, error.oauthError);
  }

  private onUnavailable(request: RefreshRequest, error: TransientScmError, trail: RetryTrail): RefreshOutcome {
    const { entry, provider } = request;
    this.logger.warn({ host: entry.host, attempts: trail.attempts, status: error.status, detail: error.detail, forced: request.forced }, "SCM unavailable for token refresh");
    // A non-forced refresh may fall back to the current token, unless an attempt may have rotated it
    // at a provider that revokes the old access token (then the current one may already be dead).
    if (!request.forced && !(trail.sawAmbiguousFailure && provider.requiresOpportunisticRefresh)) return { kind: "keep_current" };
    throw new ScmUnavailableError(entry.host, trail.attempts, error.status, error.detail, error.retryAfterMs);
  }

  /** Someone else holds the lease (or the entry changed). Wait for their result, in real time. */
  private async afterLostLease(entry: StoredEntry): Promise<RefreshOutcome> {
    const started = Date.now();
    let pollMs = 20;
    let polls = 0;
    for (;; polls++) {
      const current = await this.store.findById(entry.id);
      if (!current || current.version !== entry.version) return polls === 0 ? { kind: "changed" } : { kind: "waited_for_other", waitedMs: Date.now() - started };
      const leaseLive = !!current.refreshLeaseUntil && current.refreshLeaseUntil.getTime() >= this.clock.now().getTime();
      if (!leaseLive || current.reauthorizationReason) return { kind: "changed" };
      if (Date.now() - started >= this.lease.waitForOtherMs) throw new RefreshInProgressError(entry.host, Date.now() - started);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      pollMs = Math.min(50, pollMs * 2); // one primary-key SELECT per waiting process every 50 ms at most
    }
  }
}

function errorName(e: unknown): string {
  return e instanceof Error ? e.name : typeof e;
}
