import type { RawFlagValues } from "../../src/flags/feature-flags";
import type { LeaseOptions } from "../../src/refresh-coordinator";
import type { RetryOptions } from "../../src/refresh-with-retries";

/**
 * IPC between the mocha process and its replica processes (test/concurrency/replica-worker.ts).
 * Tokens never cross the channel in clear: callers' results carry a short SHA-256 of the value.
 *
 *   parent                         replica
 *   configure(config)     ───▶     builds a TokenService (closing the previous one), warms its pool
 *                         ◀───     configured
 *   arm(round, userId, calls) ─▶   remembers the calls
 *                         ◀───     armed            (every replica is armed: the barrier)
 *   go(round)             ───▶     starts every call in the same tick
 *                         ◀───     results(round, [...])
 */

/** How a replica builds its TokenService. The encryption key comes separately, in the environment. */
export interface ReplicaConfig {
  databaseUrl: string;
  /** The fake SCM (in the mocha process). */
  scmBaseUrl: string;
  host: string;
  lease?: Partial<LeaseOptions>;
  retry?: Partial<RetryOptions>;
  /** Flags of every caller; a call with `opportunistic: true` also gets opportunisticRefresh = true. */
  flags?: RawFlagValues;
  poolSize?: number;
}

/** One concurrent caller. */
export interface CallSpec {
  lifetimeMinutes: number;
  /** This caller's flags say opportunistic_token_refresh = true. */
  opportunistic: boolean;
}

export type ToReplica =
  | { type: "configure"; config: ReplicaConfig }
  | { type: "arm"; round: number; userId: string; calls: CallSpec[] }
  | { type: "go"; round: number };

export type CallResult =
  | { ok: true; tokenHash: string | null; expiry: string | null; finishedAt: number }
  | { ok: false; name: string; code: string | null; reason: string | null; oauthError: string | null; message: string; finishedAt: number };

export type FromReplica =
  | { type: "ready" }
  | { type: "configured" }
  | { type: "armed"; round: number }
  | { type: "results"; round: number; results: CallResult[] }
  | { type: "failed"; stage: string; message: string };

/** The environment variable that carries the base64 encryption key to replicas. */
export const KEY_ENV = "SCM_TOKEN_TEST_ENCRYPTION_KEY";
