import { performance } from "node:perf_hooks";
import { DEFAULT_REAP_BATCH_SIZE } from "../../src/reaper";
import { runFor, runUntil, type LoopResult, type Operation } from "./closed-loop";
import { merge, type SideResult } from "./compare";
import { BENCH_HOST, type HandOutFixture } from "./handout-fixture";
import { bulkInsert } from "./seed";
import { renderTable, round2 } from "./table";

export interface ReapingRun {
  /** Which hand-outs ran: "write-free" (repeated, the steady state) or "must-write" (first hand-outs). */
  handOuts: string;
  deadRows: number;
  deleted: number;
  remainingDead: number;
  reapSeconds: number;
  reapRowsPerSec: number;
  concurrency: number;
  /** Library hand-outs with no reaper running (the idle segments). */
  idle: SideResult;
  /** The same hand-outs while `reapExpired()` (its default batches and pacing) runs. */
  duringReap: SideResult;
  p99Ratio: number;
  throughputRatio: number;
  /** Throughput during / idle of each alternating pair: the noise. */
  pairRatios: number[];
}

export const REAPING_GOAL = { p99Ratio: 2, throughputRatio: 0.7 };

/**
 * Inserts `dead.rows` expired rows without refresh token, then reaps them while `op` runs, in
 * alternating segments of `segmentMs`: hand-outs alone (idle), then hand-outs while reapExpired()
 * runs (called with maxBatches 1 in a loop, so its own pacing applies and the segment can end), the
 * order flipping every pair — like the comparison cells, so load from elsewhere hits both phases alike.
 */
export async function runReaping(
  fixture: HandOutFixture,
  handOuts: string,
  op: Operation,
  dead: { from: number; rows: number },
  concurrency: number,
  segmentMs: number,
  log: (s: string) => void,
  batchSize = DEFAULT_REAP_BATCH_SIZE,
): Promise<ReapingRun> {
  await bulkInsert(fixture.pool, BENCH_HOST, { kind: "dead", from: dead.from, to: dead.from + dead.rows }, 2);
  await runFor(concurrency, op, 1000); // warm-up
  const idle: LoopResult[] = [];
  const during: LoopResult[] = [];
  let deleted = 0;
  let reapMs = 0;
  let done = false;
  const reapSegment = async () => {
    const t0 = performance.now();
    const reaping = (async () => {
      while (!done && performance.now() - t0 < segmentMs) {
        const n = await fixture.service.reapExpired({ batchSize, maxBatches: 1 });
        deleted += n;
        if (n < batchSize) done = true;
      }
    })();
    during.push(await runUntil(concurrency, op, reaping));
    reapMs += performance.now() - t0;
  };
  for (let pair = 0; !done; pair++) {
    if (pair % 2 === 0) {
      idle.push(await runFor(concurrency, op, segmentMs));
      await reapSegment();
    } else {
      await reapSegment();
      idle.push(await runFor(concurrency, op, segmentMs));
    }
  }
  const rows = await fixture.pool.query("SELECT COUNT(*) AS n FROM scm_token_entry WHERE userId LIKE 'dead-%'");
  const remainingDead = Number(rows[0].n);
  const i = merge(idle);
  const d = merge(during);
  log(`  ${handOuts}: reaped ${deleted} rows in ${(reapMs / 1000).toFixed(1)} s; idle ${i.opsPerSec} ops/s p99 ${i.latencyMs.p99} ms, during ${d.opsPerSec} ops/s p99 ${d.latencyMs.p99} ms`);
  return {
    handOuts,
    deadRows: dead.rows,
    deleted,
    remainingDead,
    reapSeconds: round2(reapMs / 1000),
    reapRowsPerSec: Math.round(deleted / (reapMs / 1000)),
    concurrency,
    idle: i,
    duringReap: d,
    p99Ratio: round2(d.latencyMs.p99 / i.latencyMs.p99),
    throughputRatio: round2(d.opsPerSec / i.opsPerSec),
    pairRatios: during.map((r, k) => round2(r.ops / r.elapsedMs / (idle[k].ops / idle[k].elapsedMs))),
  };
}

export function reapingTable(runs: ReapingRun[]): string {
  return renderTable(
    `Reaping: reapExpired() (batches of ${DEFAULT_REAP_BATCH_SIZE}, paced) over dead rows while library hand-outs run, alternating idle and reaping segments; goal p99 ≤ ${REAPING_GOAL.p99Ratio}× idle, throughput ≥ ${REAPING_GOAL.throughputRatio}× idle`,
    ["hand-outs", "phase", "conc", "ops/s", "p50 ms", "p99 ms", "max ms", "errors", "reaped", "reap s", "rows/s", "tput ×", "pairs ×", "p99 ×", "goal"],
    runs.flatMap((r) => [
      [r.handOuts, "idle", r.concurrency, r.idle.opsPerSec, r.idle.latencyMs.p50, r.idle.latencyMs.p99, r.idle.latencyMs.max, r.idle.errors, undefined, undefined, undefined, undefined, undefined, undefined, undefined],
      [
        r.handOuts,
        "during reap",
        r.concurrency,
        r.duringReap.opsPerSec,
        r.duringReap.latencyMs.p50,
        r.duringReap.latencyMs.p99,
        r.duringReap.latencyMs.max,
        r.duringReap.errors,
        r.deleted,
        r.reapSeconds,
        r.reapRowsPerSec,
        r.throughputRatio,
        `${Math.min(...r.pairRatios)}–${Math.max(...r.pairRatios)}`,
        r.p99Ratio,
        r.p99Ratio <= REAPING_GOAL.p99Ratio && r.throughputRatio >= REAPING_GOAL.throughputRatio && r.remainingDead === 0 ? "ok" : "MISS",
      ],
    ]),
  );
}
