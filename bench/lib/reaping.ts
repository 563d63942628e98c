import { performance } from "node:perf_hooks";
import { runUntil, type Operation } from "./closed-loop";
import { measure, merge, type SideResult } from "./compare";
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
  /** Library hand-outs with no reaper running (just before). */
  idle: SideResult;
  /** The same hand-outs while `reapExpired()` (default batch size and pacing) runs. */
  duringReap: SideResult;
  p99Ratio: number;
  throughputRatio: number;
}

export const REAPING_GOAL = { p99Ratio: 2, throughputRatio: 0.7 };

/** Inserts `deadRows` expired rows without refresh token (ids `from`…), then reaps them while `op` runs. */
export async function runReaping(
  fixture: HandOutFixture,
  handOuts: string,
  op: Operation,
  dead: { from: number; rows: number },
  concurrency: number,
  idleMs: number,
  log: (s: string) => void,
): Promise<ReapingRun> {
  await bulkInsert(fixture.pool, BENCH_HOST, { kind: "dead", from: dead.from, to: dead.from + dead.rows }, 2);
  const idle = await measure(op, concurrency, idleMs, 1000);
  log(`  ${handOuts} idle: ${idle.opsPerSec} ops/s, p99 ${idle.latencyMs.p99} ms`);
  const t0 = performance.now();
  let reapMs = 0;
  const reap = fixture.service.reapExpired().then((n) => {
    reapMs = performance.now() - t0;
    return n;
  });
  const during = merge([await runUntil(concurrency, op, reap)]);
  const deleted = await reap;
  const [rows] = await fixture.pool.query("SELECT COUNT(*) AS n FROM scm_token_entry WHERE userId LIKE 'dead-%'");
  const remainingDead = Number((rows as { n: number | string }[])[0].n);
  log(`  reaped ${deleted} rows in ${(reapMs / 1000).toFixed(1)} s; during: ${during.opsPerSec} ops/s, p99 ${during.latencyMs.p99} ms`);
  return {
    handOuts,
    deadRows: dead.rows,
    deleted,
    remainingDead,
    reapSeconds: round2(reapMs / 1000),
    reapRowsPerSec: Math.round(deleted / (reapMs / 1000)),
    concurrency,
    idle,
    duringReap: during,
    p99Ratio: round2(during.latencyMs.p99 / idle.latencyMs.p99),
    throughputRatio: round2(during.opsPerSec / idle.opsPerSec),
  };
}

export function reapingTable(runs: ReapingRun[]): string {
  return renderTable(
    `Reaping: reapExpired() (defaults: batches of 1000, paced) over dead rows while library hand-outs run; goal p99 ≤ ${REAPING_GOAL.p99Ratio}× idle, throughput ≥ ${REAPING_GOAL.throughputRatio}× idle`,
    ["hand-outs", "phase", "conc", "ops/s", "p50 ms", "p99 ms", "max ms", "errors", "reaped", "reap s", "rows/s", "tput ×", "p99 ×", "goal"],
    runs.flatMap((r) => [
      [r.handOuts, "idle", r.concurrency, r.idle.opsPerSec, r.idle.latencyMs.p50, r.idle.latencyMs.p99, r.idle.latencyMs.max, r.idle.errors, undefined, undefined, undefined, undefined, undefined, undefined],
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
        r.p99Ratio,
        r.p99Ratio <= REAPING_GOAL.p99Ratio && r.throughputRatio >= REAPING_GOAL.throughputRatio && r.remainingDead === 0 ? "ok" : "MISS",
      ],
    ]),
  );
}
