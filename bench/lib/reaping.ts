import { performance } from "node:perf_hooks";
import { runUntil } from "./closed-loop";
import { measure, merge, type SideResult } from "./compare";
import { BENCH_HOST, type HandOutFixture } from "./handout-fixture";
import { prepare } from "./hot-path";
import { bulkInsert } from "./seed";
import { renderTable, round2 } from "./table";

export interface ReapingResult {
  deadRows: number;
  deleted: number;
  remainingDead: number;
  reapSeconds: number;
  reapRowsPerSec: number;
  concurrency: number;
  /** Library hand-outs (unreserved case) with no reaper running. */
  idle: SideResult;
  /** The same, while `reapExpired({ batchSize: 1000 })` runs. */
  duringReap: SideResult;
  p99Ratio: number;
}

/** Inserts `deadRows` expired rows without refresh token, then reaps them while hand-outs run. */
export async function runReaping(fixture: HandOutFixture, deadRows: number, concurrency: number, idleMs: number, log: (s: string) => void): Promise<ReapingResult> {
  await bulkInsert(fixture.pool, BENCH_HOST, { kind: "dead", from: 0, to: deadRows }, 2);
  await prepare(fixture, "unreserved");
  const op = fixture.libraryOp(fixture.users);
  const idle = await measure(op, concurrency, idleMs, 500);
  log(`  idle: ${idle.opsPerSec} ops/s, p99 ${idle.latencyMs.p99} ms`);

  const t0 = performance.now();
  let reapMs = 0;
  const reap = fixture.service.reapExpired({ batchSize: 1000 }).then((n) => {
    reapMs = performance.now() - t0;
    return n;
  });
  const during = merge([await runUntil(concurrency, op, reap)]);
  const deleted = await reap;
  const [rows] = await fixture.pool.query("SELECT COUNT(*) AS n FROM scm_token_entry WHERE userId LIKE 'dead-%'");
  const remainingDead = Number((rows as { n: number | string }[])[0].n);
  log(`  reaped ${deleted} rows in ${(reapMs / 1000).toFixed(1)} s; during: ${during.opsPerSec} ops/s, p99 ${during.latencyMs.p99} ms`);
  return {
    deadRows,
    deleted,
    remainingDead,
    reapSeconds: round2(reapMs / 1000),
    reapRowsPerSec: Math.round(deleted / (reapMs / 1000)),
    concurrency,
    idle,
    duringReap: during,
    p99Ratio: round2(during.latencyMs.p99 / idle.latencyMs.p99),
  };
}

export function reapingTable(r: ReapingResult): string {
  return renderTable(
    `Reaping: reapExpired({ batchSize: 1000 }) over ${r.deadRows} dead rows while library hand-outs run (unreserved, concurrency ${r.concurrency})`,
    ["phase", "hand-outs/s", "p50 ms", "p99 ms", "max ms", "errors", "reaped", "reap s", "reap rows/s"],
    [
      ["idle", r.idle.opsPerSec, r.idle.latencyMs.p50, r.idle.latencyMs.p99, r.idle.latencyMs.max, r.idle.errors, undefined, undefined, undefined],
      ["during reap", r.duringReap.opsPerSec, r.duringReap.latencyMs.p50, r.duringReap.latencyMs.p99, r.duringReap.latencyMs.max, r.duringReap.errors, r.deleted, r.reapSeconds, r.reapRowsPerSec],
    ],
  ) + `\np99 during reap / idle: ${r.p99Ratio}×; dead rows left: ${r.remainingDead}`;
}
