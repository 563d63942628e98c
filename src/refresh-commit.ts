import type { Clock } from "./clock";
import { StorageError } from "./errors";
import type { Logger } from "./logger";
import type { StoredEntry, TokenStore } from "./storage/token-store";

/** The encrypted new tokens of a refresh, as TokenStore.commitRefresh writes them. */
export type RefreshCommitValues = Parameters<TokenStore["commitRefresh"]>[2];

/** The refresh lease the commit runs under: who holds it and until when. */
export interface CommitLease {
  owner: string;
  /** The lease's end on the service's clock (as written to the row). */
  until: Date;
  /** The same end in real time (Date.now() when the lease was taken + leaseMs): a fake clock may not move. */
  untilRealMs: number;
}

/** How the background commit of one refresh ended. */
export type BackgroundCommitResult = "stored" | "superseded" | "gave_up";

/**
 * The tries the caller waits for before it is answered and the commit goes on in the background: up
 * to 5 (≈ 0.75 s of backoff when each fails fast, e.g. refused connections), none started after 3 s
 * (tries that each wait out a lock-wait timeout or a statement deadline).
 */
const FOREGROUND_ATTEMPTS = 5;
const FOREGROUND_MAX_MS = 3_000;
const FIRST_RETRY_DELAY_MS = 50;
/** Background retries back off to this delay, so a database that returns is used within ~2 s. */
const MAX_RETRY_DELAY_MS = 2_000;

/**
 * Stores the tokens of a refresh the SCM has committed. Those tokens exist nowhere else — for a
 * rotating SCM the old refresh token is already dead — so a database outage must not drop them:
 *
 * - The write is a compare-and-set on the entry's version (not on the lease: a holder whose lease
 *   expired under a slow SCM still stores a rotation that a process which took over could not get —
 *   its refresh with the rotated-away token fails and it re-reads the row). When a try's answer
 *   is lost (connection cut mid-statement, statement deadline) the next try matches nothing; the
 *   row is then re-read, and the ciphertext this refresh wrote tells "stored by my earlier try" from
 *   "someone else changed the entry".
 * - Transient failures are retried a few times (FOREGROUND_ATTEMPTS, within FOREGROUND_MAX_MS) while
 *   the caller waits. After that the caller gets the transient StorageError and the commit goes on
 *   in the background (real-time backoff, ≤ 2 s between tries) while this process's refresh lease
 *   lasts: nobody else refreshes the entry meanwhile (hand-outs wait for the lease), and once the
 *   commit lands they get the new token. An outage shorter than the lease (default 60 s) loses no
 *   rotation.
 * - `flush()` waits for background commits (TokenService.close() calls it, bounded) so a graceful
 *   shutdown does not drop them.
 *
 * Logs name the host and driver code only, never a token.
 */
export class RefreshCommitter {
  private readonly pending = new Map<string, Promise<BackgroundCommitResult>>();
  private stopped = false;

  constructor(
    private readonly store: TokenStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly onBackgroundResult: (host: string, result: BackgroundCommitResult) => void = () => undefined,
  ) {}

  /**
   * True once stored (by this call or by an earlier try whose answer was lost), false when the entry
   * changed under the refresh (a newer token is stored). Throws the transient StorageError when the
   * database did not come back within the foreground budget: the commit then continues in the
   * background (see hasPending), or a non-transient StorageError.
   */
  async commit(entry: StoredEntry, values: RefreshCommitValues, now: Date, lease: CommitLease): Promise<boolean> {
    const started = Date.now();
    let delayMs = FIRST_RETRY_DELAY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.attempt(entry, values, now)) === "stored";
      } catch (e) {
        if (!(e instanceof StorageError && e.transient)) throw e;
        if (attempt >= FOREGROUND_ATTEMPTS || Date.now() - started + delayMs > FOREGROUND_MAX_MS) {
          this.continueInBackground(entry, values, now, lease, attempt, e);
          throw e;
        }
        this.logger.warn({ host: entry.host, attempt, driverCode: e.driverCode }, "Could not store the refreshed token; retrying");
        await realDelay(delayMs);
        delayMs *= 2;
      }
    }
  }

  /** Whether a background commit under this lease owner is still running (its lease must not be released). */
  hasPending(owner: string): boolean {
    return this.pending.has(owner);
  }

  /** How many background commits are running. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Waits until every background commit has ended, at most `timeoutMs` (real time). Returns how many
   * were still running then; with `stop`, those stop retrying (their tokens are lost: logged as errors).
   */
  async flush(timeoutMs: number, options: { stop?: boolean } = {}): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, timeoutMs));
    });
    await Promise.race([Promise.allSettled([...this.pending.values()]), timeout]);
    clearTimeout(timer);
    const left = this.pending.size;
    if (options.stop) this.stopped = true;
    return left;
  }

  /** One compare-and-set; a miss is told apart by re-reading the row. */
  private async attempt(entry: StoredEntry, values: RefreshCommitValues, now: Date): Promise<"stored" | "changed"> {
    if (await this.store.commitRefresh(entry.id, entry.version, values, now)) return "stored";
    const current = await this.store.findById(entry.id);
    // Each encryption has its own random IV: equal ciphertext means this refresh's own write.
    const ours = !!current && current.version === entry.version + 1 && current.accessTokenCiphertext === values.accessTokenCiphertext;
    return ours ? "stored" : "changed";
  }

  private continueInBackground(entry: StoredEntry, values: RefreshCommitValues, now: Date, lease: CommitLease, attemptsSoFar: number, lastError: StorageError): void {
    this.logger.warn(
      { host: entry.host, attempts: attemptsSoFar, driverCode: lastError.driverCode, leaseUntil: lease.until.toISOString() },
      "Could not store the refreshed token; the caller gets a retryable error and storing goes on in the background while the refresh lease lasts",
    );
    const run = this.retryInBackground(entry, values, now, lease, attemptsSoFar)
      .catch((e: unknown): BackgroundCommitResult => {
        this.logger.error({ host: entry.host, error: e instanceof Error ? e.name : typeof e }, "Background storing of a refreshed token failed unexpectedly");
        return "gave_up";
      })
      .then((result) => {
        this.pending.delete(lease.owner);
        this.onBackgroundResult(entry.host, result);
        return result;
      });
    this.pending.set(lease.owner, run);
  }

  private async retryInBackground(entry: StoredEntry, values: RefreshCommitValues, now: Date, lease: CommitLease, attemptsSoFar: number): Promise<BackgroundCommitResult> {
    const started = Date.now();
    let delayMs = FIRST_RETRY_DELAY_MS * 2;
    let lastCode: string | undefined;
    for (let attempt = attemptsSoFar + 1; ; attempt++) {
      const leftMs = Math.min(lease.untilRealMs - Date.now(), lease.until.getTime() - this.clock.now().getTime());
      if (this.stopped || leftMs <= 0) {
        const why = this.stopped ? "the service was closed" : "the refresh lease ended";
        this.logger.error(
          { host: entry.host, attempts: attempt - 1, driverCode: lastCode, waitedMs: Date.now() - started },
          `Gave up storing the refreshed token: ${why} before the database came back. If the SCM rotates refresh tokens, the user will have to re-authorise`,
        );
        return "gave_up";
      }
      await realDelay(Math.min(delayMs, leftMs));
      delayMs = Math.min(MAX_RETRY_DELAY_MS, delayMs * 2);
      try {
        const outcome = await this.attempt(entry, values, now);
        if (outcome === "stored") {
          this.logger.info({ host: entry.host, attempts: attempt, waitedMs: Date.now() - started }, "Stored the refreshed token in the background after a database failure");
          return "stored";
        }
        this.logger.error({ host: entry.host, attempts: attempt }, "Gave up storing the refreshed token: the entry changed meanwhile (a new token was stored, or another process took over the expired lease)");
        return "superseded";
      } catch (e) {
        if (!(e instanceof StorageError && e.transient)) {
          this.logger.error({ host: entry.host, attempts: attempt, driverCode: e instanceof StorageError ? e.driverCode : undefined }, "Gave up storing the refreshed token: the database failed permanently");
          return "gave_up";
        }
        lastCode = e.driverCode;
      }
    }
  }
}

/** Waits for the database, not for the token's clock. */
function realDelay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
