import type { Counter, Histogram, Registry } from "prom-client";
import { ConfigurationError } from "../errors";
import type { OpportunisticLabel } from "../refresh-policy";
import { SharedMetrics } from "./shared-metrics";

/** The `result` label of the hand-out counter (one increment per getTokenForHost call). */
export type HandOutResult =
  | "no_token"
  | "still_valid"
  | "success"
  | "not_refreshable"
  | "reauthorization_required"
  | "scm_unavailable"
  | "waited"
  | "error";

/**
 * The library's Prometheus metrics, on a registry the caller owns (never the global one).
 * Labels carry the host and enums only: no user id, no token.
 *
 * - `{prefix}scm_token_refresh_requests_total{host,result,opportunisticRefresh}`
 * - `{prefix}scm_token_refresh_duration_seconds{host}` — around the SCM call only
 * - `{prefix}scm_token_reservations_broken_total{host}` — a refresh revoked a token someone still held
 * - `{prefix}scm_token_handout_wait_seconds{host,reason}` — time a hand-out waited (drain or a sibling's refresh)
 * - `{prefix}scm_token_handout_waits_started_total{host,reason}` — hand-outs that began waiting for holders (counted at the start)
 * - `{prefix}scm_token_reauthorization_required_total{host,reason}`
 * - `{prefix}scm_token_short_lived_total{host}` — the SCM issued a token shorter than requested
 * - `{prefix}scm_token_reservations_released_total{host}` — releasable hand-outs given back early
 * - `{prefix}scm_token_handouts_write_free_total{host}` — hand-outs an earlier reservation already covered (no database write)
 * - `{prefix}scm_token_revocations_total{host,result}` — disconnects: revoked, unsupported (the SCM cannot revoke), failed (logged; alert on it)
 * - `{prefix}scm_token_background_commits_total{host,result}` — refreshed tokens stored in the background after a database failure (result: stored, superseded, gave_up; alert on gave_up)
 */
export class TokenMetrics {
  private readonly requests: Counter<"host" | "result" | "opportunisticRefresh">;
  private readonly refreshDuration: Histogram<"host">;
  private readonly broken: Counter<"host">;
  private readonly waits: Histogram<"host" | "reason">;
  private readonly waitStarts: Counter<"host" | "reason">;
  private readonly reauth: Counter<"host" | "reason">;
  private readonly shortLived: Counter<"host">;
  private readonly releases: Counter<"host">;
  private readonly writeFree: Counter<"host">;
  private readonly backgroundCommits: Counter<"host" | "result">;
  private readonly revocations: Counter<"host" | "result">;

  private readonly shared: SharedMetrics;

  constructor(
    readonly registry: Registry,
    prefix = "",
  ) {
    checkMetricsPrefix(prefix);
    const name = (n: string) => `${prefix}${n}`;
    // Metrics already on the registry (another service's) are shared, not registered twice; see release().
    const metrics = new SharedMetrics(registry);
    this.shared = metrics;
    const counter = <L extends string>(n: string, labelNames: readonly L[], help: string) => metrics.counter<L>({ name: name(n), help, labelNames });
    const histogram = <L extends string>(n: string, labelNames: readonly L[], buckets: number[], help: string) => metrics.histogram<L>({ name: name(n), help, labelNames, buckets });
    this.requests = counter("scm_token_refresh_requests_total", ["host", "result", "opportunisticRefresh"], "Token hand-outs by outcome and refresh mode (opportunisticRefresh: true = refreshed because unreserved, reserved = refresh skipped because held, false = otherwise)");
    this.refreshDuration = histogram("scm_token_refresh_duration_seconds", ["host"], [0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10], "Duration of SCM token refresh requests, retries included");
    this.broken = counter("scm_token_reservations_broken_total", ["host"], "Refreshes that revoked a token while a hand-out still held it (only when a caller chose ifHeld: break, or drain is off)");
    this.waits = histogram("scm_token_handout_wait_seconds", ["host", "reason"], [0.01, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600], "Time a hand-out waited: for holders to finish (drain) or for another process's refresh (lease)");
    this.waitStarts = counter("scm_token_handout_waits_started_total", ["host", "reason"], "Hand-outs that started waiting for holders to finish (drain); counted when the wait starts, so a wait still in progress or ending in an error is seen");
    this.reauth = counter("scm_token_reauthorization_required_total", ["host", "reason"], "Refresh tokens found dead (invalid_grant, lost rotation, expired without refresh token)");
    this.shortLived = counter("scm_token_short_lived_total", ["host"], "Refreshes where the SCM issued a token shorter than the requested lifetime (handed out anyway)");
    this.releases = counter("scm_token_reservations_released_total", ["host"], "Releasable hand-outs given back early (releaseReservation / withToken)");
    this.writeFree = counter("scm_token_handouts_write_free_total", ["host"], "Hand-outs that wrote nothing: an earlier non-releasable hand-out of the same token had already reserved it long enough (a subset of scm_token_refresh_requests_total)");
    this.backgroundCommits = counter("scm_token_background_commits_total", ["host", "result"], "Refreshed tokens whose storing went on in the background after a database failure, by how it ended (stored; superseded: a newer token was stored meanwhile; gave_up: lost, the user may have to re-authorise)");
    this.revocations = counter("scm_token_revocations_total", ["host", "result"], "Tokens deleted on disconnect, by what revoking them at the SCM gave (revoked; unsupported: the SCM offers no revocation; failed: logged, the token stays valid at the SCM until it expires)");
  }

  /** A disconnect deleted a token and tried to revoke it at the SCM. */
  revocation(host: string, result: "revoked" | "unsupported" | "failed"): void {
    this.revocations.inc({ host, result });
  }

  /** A background commit of refreshed tokens ended (see RefreshCommitter). */
  backgroundCommit(host: string, result: "stored" | "superseded" | "gave_up"): void {
    this.backgroundCommits.inc({ host, result });
  }

  /**
   * Stops using the metrics: removes from the registry the ones no other service on it still uses.
   * Called by TokenService.close() (through createTokenService); idempotent.
   */
  release(): void {
    this.shared.release();
  }

  /** A hand-out was covered by the token's existing reservation and wrote nothing. */
  writeFreeHandOut(host: string): void {
    this.writeFree.inc({ host });
  }

  released(host: string): void {
    this.releases.inc({ host });
  }

  handOut(host: string, result: HandOutResult, label: OpportunisticLabel): void {
    this.requests.inc({ host, result, opportunisticRefresh: label });
  }

  startRefreshTimer(host: string): () => void {
    const end = this.refreshDuration.startTimer({ host });
    return () => {
      end();
    };
  }

  reservationBroken(host: string): void {
    this.broken.inc({ host });
  }

  waited(host: string, reason: "drain" | "lease", seconds: number): void {
    this.waits.observe({ host, reason }, seconds);
  }

  /** A hand-out starts waiting for holders (once per hand-out, before the wait). */
  waitStarted(host: string, reason: "drain"): void {
    this.waitStarts.inc({ host, reason });
  }

  reauthorizationRequired(host: string, reason: string): void {
    this.reauth.inc({ host, reason });
  }

  shortLivedToken(host: string): void {
    this.shortLived.inc({ host });
  }
}

/** Prometheus' metric name rule; a prefix must itself be a valid name start (or empty). */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function checkMetricsPrefix(prefix: unknown): void {
  if (typeof prefix !== "string" || (prefix !== "" && !METRIC_NAME.test(prefix))) {
    throw new ConfigurationError(
      `metricsPrefix must be empty or match Prometheus' metric name rule [a-zA-Z_:][a-zA-Z0-9_:]*, e.g. "gitpod_"; got ${typeof prefix === "string" ? JSON.stringify(prefix.slice(0, 60)) : typeof prefix}`,
      "metricsPrefix",
    );
  }
}
