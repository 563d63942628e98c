import { performance } from "node:perf_hooks";
import type { ReapCursor, TokenStore } from "./storage/token-store";

/**
 * Entries deleted per statement unless the caller says otherwise. Small, because while a batch's
 * DELETE runs it takes the database's attention from hand-outs: in the benchmark (bench/,
 * "reaping"), batches of 1000 raised write-free hand-outs' p99 2.1× (6 s for 100k rows), batches of
 * 250 1.5–1.8× (8–9 s).
 */
export const DEFAULT_REAP_BATCH_SIZE = 250;

/** Holds that were never released end with their reservation; they are dropped this long afterwards. */
export const ENDED_HOLD_GRACE_MS = 3_600_000;

/** After each full batch the reaper rests this many times as long as the batch took, at most MAX_PAUSE_MS. */
const PAUSE_FACTOR = 2;
const MAX_PAUSE_MS = 1_000;

export interface ReapProgress {
  /** Dead entries deleted. */
  deleted: number;
  /** Batches of entries run (the last one may have found fewer than a batch, or none). */
  batches: number;
  /** Ended holds deleted. */
  holds: number;
  /** The last batch of entries was full: more may remain (maxBatches or a stop ended the walk). */
  lastBatchFull: boolean;
}

export interface ReapOptions {
  batchSize: number;
  maxBatches: number;
  /** The time entries and holds are judged by (the service's clock; the CLI's wall clock). */
  now: () => Date;
  /** Checked before every batch: true ends the reap early (the CLI's Ctrl-C). */
  stopped?: () => boolean;
  /** Told after every batch of entries (the CLI's progress bar). */
  onBatch?: (progress: Readonly<ReapProgress>) => void;
}

/**
 * Deletes entries that can never be handed out again, then holds that ended over an hour ago, in
 * bounded batches — shared by TokenService.reapExpired and `scm-token-service reap`, so both keep
 * hand-outs' latency the same way. Batches walk the expiry index with a cursor (a kept expired
 * entry is scanned once per reap) and are paced: after each full batch the reaper rests twice as
 * long as the batch took (real time), so a large reap takes about a third of the database's
 * attention. Safe to run on several replicas at once: every DELETE re-checks its rows.
 */
export async function reapDeadEntries(store: TokenStore, options: ReapOptions): Promise<ReapProgress> {
  const progress: ReapProgress = { deleted: 0, batches: 0, holds: 0, lastBatchFull: false };
  const cursor: ReapCursor = {};
  while (progress.batches < options.maxBatches && !options.stopped?.()) {
    const startedMs = performance.now();
    const deleted = await store.deleteDeadBatch(options.now(), options.batchSize, cursor);
    progress.batches++;
    progress.deleted += deleted;
    progress.lastBatchFull = deleted === options.batchSize;
    options.onBatch?.(progress);
    if (!progress.lastBatchFull) break;
    // Also after the last batch maxBatches allows: a caller that reaps one batch at a time stays paced.
    await pause(Math.min(MAX_PAUSE_MS, (performance.now() - startedMs) * PAUSE_FACTOR));
  }
  const holdsBefore = new Date(options.now().getTime() - ENDED_HOLD_GRACE_MS);
  for (let batch = 0; batch < options.maxBatches && !options.stopped?.(); batch++) {
    const deleted = await store.deleteEndedHoldsBatch(holdsBefore, options.batchSize);
    progress.holds += deleted;
    if (deleted < options.batchSize) break;
  }
  return progress;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
