import { createHash } from "node:crypto";
import type { RawFlagValues } from "../../src/flags/feature-flags";
import type { LeaseOptions } from "../../src/refresh-coordinator";
import type { RetryOptions } from "../../src/refresh-with-retries";
import type { Token } from "../../src/token";

/**
 * IPC between the mocha process and its replica processes (test/concurrency/replica-worker.ts).
 * Tokens never cross the channel in clear in `results`: callers' results carry a short SHA-256 of the value.
 * The scripted hand-outs below (release-race.test.ts) are the exception: their reports carry the fake
 * SCM's test token itself, so that the mocha process can ask the fake whether it is still live.
 *
 *   parent                         replica
 *   configure(config)     ───▶     builds a TokenService (closing the previous one), warms its pool
 *                         ◀───     configured
 *   arm(round, userId, calls) ─▶   remembers the calls
 *                         ◀───     armed            (every replica is armed: the barrier)
 *   go(round)             ───▶     starts every call in the same tick
 *                         ◀───     results(round, [...])
 *
 * Scripted hand-outs (release-race.test.ts), same barrier:
 *   armHandOuts(round, userId, handOuts) ─▶  remembers them            ◀─── armed
 *   go(round)             ───▶     starts each hand-out `delayMs` after go
 *                         ◀───     handedOut(round, id, report)   one per hand-out, as each settles
 *   release(id)           ───▶     releaseReservation() of that hand-out
 *                         ◀───     released(id, report)
 *   readMetrics(requestId) ───▶    ◀─── metrics(requestId, samples)   (the replica's own registry)
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
  /** createTokenService's drainPollMs (default: the library's). */
  drainPollMs?: number;
}

/** One concurrent caller. */
export interface CallSpec {
  lifetimeMinutes: number;
  /** This caller's flags say opportunistic_token_refresh = true. */
  opportunistic: boolean;
}

/** One scripted hand-out: getTokenForHost(userId, host, options) started `delayMs` after go. */
export interface HandOutSpec {
  /** Chosen by the mocha process; names the hand-out in reports and in `release`. */
  id: string;
  delayMs: number;
  lifetimeMinutes: number;
  releasable: boolean;
  maxWaitMs?: number;
  ifHeld?: "fail" | "break";
}

export type ToReplica =
  | { type: "configure"; config: ReplicaConfig }
  | { type: "arm"; round: number; userId: string; calls: CallSpec[] }
  | { type: "armHandOuts"; round: number; userId: string; handOuts: HandOutSpec[] }
  | { type: "go"; round: number }
  | { type: "release"; id: string }
  | { type: "readMetrics"; requestId: number };

export type CallResult =
  | { ok: true; tokenHash: string | null; expiry: string | null; finishedAt: number }
  | { ok: false; name: string; code: string | null; reason: string | null; oauthError: string | null; message: string; finishedAt: number };

/** How a scripted hand-out ended. Times are the replica's Date.now() (one machine, one clock). */
export type HandOutReport =
  | {
      ok: true;
      /** The fake SCM's test token (see the note at the top). */
      value: string;
      tokenHash: string;
      /** The entry version the token belongs to (Token.handOut.version). */
      version: number;
      /** A hold was recorded (releaseReservation will work). */
      releasable: boolean;
      expiry: string | null;
      reservedUntil: string | null;
      startedAt: number;
      finishedAt: number;
    }
  | { ok: false; name: string; code: string | null; reason: string | null; message: string; heldUntil: string | null; startedAt: number; finishedAt: number };

/** The short hash replicas report instead of a token. */
export function tokenHash(value: string): string {
  return createHash("sha256").update(value).digest("hex").slice(0, 16);
}

/** The report of a scripted hand-out that got `token` (built the same way in the replica and the mocha process). */
export function handOutSucceeded(token: Token, startedAt: number): HandOutReport {
  return {
    ok: true,
    value: token.value,
    tokenHash: tokenHash(token.value),
    version: token.handOut.version,
    releasable: token.handOut.holdId !== undefined,
    expiry: token.expiryDate?.toISOString() ?? null,
    reservedUntil: token.reservedUntilDate?.toISOString() ?? null,
    startedAt,
    finishedAt: Date.now(),
  };
}

export type ReleaseReport =
  | { ok: true; released: boolean; startedAt: number; finishedAt: number }
  | { ok: false; name: string; message: string; startedAt: number; finishedAt: number };

/** One value of the replica's metrics registry (a counter, or one series of a histogram). */
export interface MetricSample {
  name: string;
  labels: Record<string, string | number>;
  value: number;
}

export type FromReplica =
  | { type: "ready" }
  | { type: "configured" }
  | { type: "armed"; round: number }
  | { type: "results"; round: number; results: CallResult[] }
  | { type: "handedOut"; round: number; id: string; report: HandOutReport }
  | { type: "released"; id: string; report: ReleaseReport }
  | { type: "metrics"; requestId: number; samples: MetricSample[] }
  | { type: "failed"; stage: string; message: string };

/** The environment variable that carries the base64 encryption key to replicas. */
export const KEY_ENV = "SCM_TOKEN_TEST_ENCRYPTION_KEY";
