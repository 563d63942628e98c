/** Messages between the contention benchmark (parent) and bench/contention-worker.ts (children). */

/** What a child needs, passed in its environment as JSON under CONTENTION_CONFIG. */
export interface WorkerConfig {
  databaseUrl: string;
  /** The parent's key ring (a benchmark-only random key). */
  encryptionKeys: { id: string; key: string }[];
  scmBaseUrl: string;
  host: string;
  userId: string;
  callers: number;
  lifetimeMinutes: number;
}

/** One getTokenForHost call. Times are epoch ms with sub-ms precision (performance.timeOrigin + now()). */
export interface CallRecord {
  startMs: number;
  endMs: number;
  /** sha256 prefix of the token value (the token itself never crosses the process boundary). */
  tokenHash?: string;
  error?: string;
}

export type ChildMessage =
  | { type: "ready" }
  | { type: "results"; pid: number; calls: CallRecord[]; handOutResults: Record<string, number>; refreshSeconds: number }
  | { type: "failed"; error: string };

export type ParentMessage = { type: "go"; atEpochMs: number } | { type: "exit" };

export const CONFIG_ENV = "CONTENTION_CONFIG";
