import type { Counter, Registry } from "prom-client";
import { SharedMetrics } from "../metrics/shared-metrics";

/** The `outcome` label of the broker's hand-out counter. */
export type BrokerOutcome =
  | "handed_out"
  | "no_token"
  | "unauthenticated"
  | "forbidden"
  | "too_many_requests"
  | "bad_request"
  | "reauthorization_required"
  | "unavailable"
  | "error";

/** The `result` label of the broker's release counter. */
export type BrokerReleaseResult = "released" | "deferred" | "not_held" | "invalid_handle" | "unknown_token" | "refused" | "error";

/**
 * The broker's metrics, on the service's registry with the same prefix:
 * - `{prefix}scm_token_broker_handouts_total{host,outcome}` — hand-out requests by outcome
 * - `{prefix}scm_token_broker_releases_total{result}` — release requests by result
 *
 * `host` is the requested host only when the caller was allowed to ask for it, else "other": a
 * caller cannot create label values. Never a user id, never a token.
 */
export class BrokerMetrics {
  private readonly shared: SharedMetrics;
  private readonly handOuts: Counter<"host" | "outcome">;
  private readonly releases: Counter<"result">;

  constructor(registry: Registry, prefix: string) {
    this.shared = new SharedMetrics(registry);
    this.handOuts = this.shared.counter({
      name: `${prefix}scm_token_broker_handouts_total`,
      help: "Token broker hand-out requests by host and outcome",
      labelNames: ["host", "outcome"] as const,
    });
    this.releases = this.shared.counter({
      name: `${prefix}scm_token_broker_releases_total`,
      help: "Token broker release requests by result",
      labelNames: ["result"] as const,
    });
  }

  handOut(host: string, outcome: BrokerOutcome): void {
    this.handOuts.inc({ host, outcome });
  }

  release(result: BrokerReleaseResult): void {
    this.releases.inc({ result });
  }

  close(): void {
    this.shared.release();
  }
}
