/**
 * `npm run bench` — the hand-out benchmarks (about 5 minutes):
 *  1. hand-out cells, library vs the fastest reasonable hand-written mysql2 code in the same run:
 *     write-free steady state (1 and 16 callers), one hot user, releasable (hand-out + release),
 *     must-write (first hand-outs), and must-write at random over 1M entries (table > buffer pool);
 *  2. reaping 100k dead rows while hand-outs run (write-free and must-write hand-outs);
 *  3. contention: 8 processes × 64 callers for one token that must be refreshed.
 * Prints aligned tables and writes bench/results/bench.json (`npx ts-node --transpile-only
 * bench/readme-tables.ts` prints the README's tables from it). Uses its own database on
 * BENCH_DATABASE_URL (default mariadb://root@127.0.0.1:3306), dropped at the end.
 *
 * Options: --entries N (rows of the cold cell; default 1000000)   --dead N (rows to reap, default 100000)
 *          --segment-ms N (default 2000)   --rounds N (default 5)   --warmup-ms N (default 1000)
 *          --sections cells,cold,reap,contention (default all)
 */
import "reflect-metadata";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { BenchDatabase } from "./lib/bench-database";
import { runClosedLoop } from "./lib/closed-loop";
import type { CompareTiming } from "./lib/compare";
import { contentionTable, runContention, type ContentionResult } from "./lib/contention";
import { BENCH_HOST, eachOnce, HandOutFixture, HOT_USER, roundRobin } from "./lib/handout-fixture";
import { CASE_NOTES, cellsTable, GOALS, runCell, type CellResult, type CellSpec } from "./lib/hot-path";
import { machineInfo } from "./lib/machine";
import { reapingTable, runReaping, type ReapingRun } from "./lib/reaping";
import { bulkUserId, countRows, readableUserId, shuffledRange } from "./lib/seed";
import { checkBaselineStatements } from "./lib/sql-capture";
import { renderTable } from "./lib/table";

/** Bulk users 0 … WARM_USERS-1 are the must-write cell's (library even, baseline odd); the rest the cold cell's. */
const WARM_USERS = 160_000;

async function main(): Promise<void> {
  const started = performance.now();
  const { values } = parseArgs({
    options: {
      entries: { type: "string", default: "1000000" },
      dead: { type: "string", default: "100000" },
      "segment-ms": { type: "string", default: "2000" },
      "warmup-ms": { type: "string", default: "1000" },
      rounds: { type: "string", default: "5" },
      sections: { type: "string", default: "cells,cold,reap,contention" },
    },
  });
  const sections = new Set(values.sections.split(","));
  const timing: CompareTiming = { warmupMs: int(values["warmup-ms"], "--warmup-ms"), segmentMs: int(values["segment-ms"], "--segment-ms"), rounds: int(values.rounds, "--rounds") };
  const entries = int(values.entries, "--entries");
  const deadRows = int(values.dead, "--dead");
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const loads: number[] = [];
  const sampleLoad = () => loads.push(Math.round(os.loadavg()[0] * 100) / 100);

  const db = await BenchDatabase.create();
  process.once("SIGINT", () => {
    log(`interrupted: dropping ${db.name}`);
    void db.drop().finally(() => process.exit(130));
  });
  const out: Record<string, unknown> = { startedAt: new Date().toISOString() };
  try {
    const machine = machineInfo(await db.serverVersion());
    const probePool = db.pool(1);
    const [bp] = (await probePool.query("SELECT @@innodb_buffer_pool_size AS b, @@innodb_flush_log_at_trx_commit AS f").finally(() => probePool.end())) as unknown as [{ b: string; f: string }[]];
    const bufferPoolMiB = Math.round(Number(bp[0].b) / 2 ** 20);
    out.machine = { ...machine, innodbBufferPoolMiB: bufferPoolMiB, innodbFlushLogAtTrxCommit: Number(bp[0].f) };
    out.config = { database: db.name, poolSize: 10, lifetimeMinutes: 5, timing, entries, deadRows, goals: GOALS, cases: CASE_NOTES };
    console.log(
      renderTable("Machine", ["item", "value"], [
        ["cores", machine.cores],
        ["CPU", machine.cpuModel],
        ["memory GiB", machine.memoryGiB],
        ["OS", machine.platform],
        ["Node", machine.node],
        ["database", `${machine.database}, innodb_buffer_pool_size ${bufferPoolMiB} MiB, innodb_flush_log_at_trx_commit ${bp[0].f}`],
        ["load average (1 min) at start", machine.loadAverageAtStart],
        ["timing per cell", `warm-up ${timing.warmupMs} ms per side (order alternates by cell), then ${timing.rounds} × ${timing.segmentMs} ms per side, alternating`],
      ]),
    );
    if (machine.loadAverageAtStart > machine.cores / 2) {
      console.log(`WARNING: load average ${machine.loadAverageAtStart} on ${machine.cores} cores: other work is running; ratios will be noisy (see the per-round spread)`);
    }
    const fixture = await HandOutFixture.create(db);
    const cells: CellResult[] = [];
    let cellIndex = 0;
    const cell = async (spec: CellSpec) => {
      sampleLoad();
      cells.push(await runCell(fixture, spec, timing, cellIndex++ % 2 === 1, log));
    };
    try {
      const check = await checkBaselineStatements(db, BENCH_HOST, readableUserId(0), fixture.encryptionKeys);
      out.baselineCheck = check;
      console.log(
        check.inSync
          ? "\nstatement check: a first hand-out sends SELECT + the baseline's reserve UPDATE; a repeated one only the SELECT; a releasable one SELECT + INSERT … SELECT of a hold, its release the baseline's DELETE"
          : `\nWARNING: the library's statements changed; first hand-out:\n${lines(check.firstHandOut)}\nsecond:\n${lines(check.secondHandOut)}\nreleasable:\n${lines(check.releasableHandOut)}\nrelease:\n${lines(check.release)}\nupdate bench/lib/baseline-mysql2.ts`,
      );
      if (sections.has("cells")) {
        log("hand-out cells…");
        const users = fixture.users;
        // The steady state: every user has been handed out once (and so pinned) before the write-free cells.
        await runClosedLoop(16, fixture.libraryOp(roundRobin([...users, HOT_USER])), (_ms, ops) => ops >= users.length + 1);
        await cell({ name: "write-free", kind: "write-free", users: "1000", concurrency: 16, library: fixture.libraryOp(roundRobin(users)), baseline: fixture.baselineOp(roundRobin(users)) });
        await cell({ name: "write-free", kind: "write-free", users: "1000", concurrency: 1, library: fixture.libraryOp(roundRobin(users)), baseline: fixture.baselineOp(roundRobin(users)) });
        await cell({ name: "write-free, one hot user", kind: "write-free", users: "1", concurrency: 16, library: fixture.libraryOp(() => HOT_USER), baseline: fixture.baselineOp(() => HOT_USER) });
        await cell({ name: "releasable (hand-out + release)", kind: "releasable", users: "1000", concurrency: 16, library: fixture.libraryReleasableOp(roundRobin(users)), baseline: fixture.baselineReleasableOp(roundRobin(users)) });
      }
      if (sections.has("cold") || sections.has("cells")) {
        log(`seeding ${entries} readable rows…`);
        const t0 = performance.now();
        await fixture.seedReadable(0, entries);
        const seedSeconds = Math.round((performance.now() - t0) / 100) / 10;
        const rows = await countRows(fixture.pool);
        out.seed = { rows, seedSeconds };
        log(`  ${rows} rows in ${seedSeconds} s`);
        if (sections.has("cells")) {
          // Warm the must-write cell's rows (they fit in the buffer pool), then hand out each once.
          await fixture.pool.query("SELECT COUNT(*), SUM(LENGTH(accessToken)) FROM scm_token_entry WHERE userId >= ? AND userId < ?", [bulkUserId(0), bulkUserId(WARM_USERS)]);
          const even = shuffledRange(0, WARM_USERS / 2, 1).map((k) => 2 * k);
          const odd = shuffledRange(0, WARM_USERS / 2, 2).map((k) => 2 * k + 1);
          await cell({ name: "must-write (first hand-out of each user)", kind: "must-write", users: `${WARM_USERS / 2000}k`, concurrency: 16, library: fixture.libraryOp(eachOnce(even, bulkUserId)), baseline: fixture.baselineOp(eachOnce(odd, bulkUserId)) });
        }
        if (sections.has("cold")) {
          const cold = shuffledRange(WARM_USERS, entries, 3);
          const half = Math.floor(cold.length / 2);
          await cell({
            name: `cold: random over ${Math.round(rows / 1000)}k entries`,
            kind: "cold",
            users: `${Math.round((entries - WARM_USERS) / 1000)}k`,
            concurrency: 16,
            library: fixture.libraryOp(eachOnce(cold.subarray(0, half), bulkUserId)),
            baseline: fixture.baselineOp(eachOnce(cold.subarray(half), bulkUserId)),
          });
          out.coldNote = `table ${rows} rows vs innodb_buffer_pool_size ${bufferPoolMiB} MiB (global on a shared server: left as is)`;
        }
      }
      out.cells = cells;
      if (cells.length > 0) {
        console.log(cellsTable(cells));
        console.log(Object.entries(CASE_NOTES).map(([k, v]) => `  ${k}: ${v}`).join("\n"));
      }
      if (sections.has("reap")) {
        log("reaping…");
        sampleLoad();
        const runs: ReapingRun[] = [];
        runs.push(await runReaping(fixture, "write-free", fixture.libraryOp(roundRobin(fixture.users)), { from: 0, rows: deadRows }, 16, timing.segmentMs, log));
        // Must-write hand-outs: first hand-outs of cold-range users the cells did not touch (reverse order).
        const fresh = Int32Array.from({ length: Math.max(0, entries - WARM_USERS) }, (_, i) => entries - 1 - i);
        runs.push(await runReaping(fixture, "must-write", fixture.libraryOp(eachOnce(fresh, bulkUserId)), { from: deadRows, rows: deadRows }, 16, timing.segmentMs, log));
        out.reaping = runs;
        console.log(reapingTable(runs));
      }
    } finally {
      await fixture.close();
    }
    if (sections.has("contention")) {
      log("contention…");
      sampleLoad();
      const contention: ContentionResult = await runContention(db, { processes: 8, callersPerProcess: 64, scmLatencyMs: 50 }, log);
      out.contention = contention;
      console.log(contentionTable(contention));
    }
  } finally {
    await db.drop();
  }
  sampleLoad();
  out.loadAverages = loads;
  const wallSeconds = Math.round((performance.now() - started) / 100) / 10;
  out.wallSeconds = wallSeconds;
  const file = path.join(__dirname, "results", "bench.json");
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nload average (1 min) during the run: ${loads.join(", ")}`);
  console.log(`wall time ${wallSeconds} s; results in ${path.relative(process.cwd(), file)}`);
}

/** Statements, one per indented line. */
function lines(statements: string[]): string {
  return statements.map((q) => `  ${q}`).join("\n");
}

function int(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${value}`);
  return n;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
