/**
 * `npm run bench` — the hand-out benchmarks:
 *  1. hot path: library getTokenForHost vs a hand-written mysql2 baseline, same run, same rows;
 *  2. scale: the concurrency-16 cell at 1k and at 1M (or 100k) entries, and reaping under load;
 *  3. contention: 8 processes × 64 callers for one token that must be refreshed.
 * Prints aligned tables and writes bench/results/bench.json. Uses its own database on
 * BENCH_DATABASE_URL (default mariadb://root@127.0.0.1:3306), dropped at the end.
 *
 * Options: --entries N (scale size; default 1M if it seeds in under 60 s, else 100k)
 *          --dead N (rows to reap, default 100000)   --segment-ms N (default 600)   --rounds N (default 4)
 *          --sections hot,scale,reap,contention (default all)
 */
import "reflect-metadata";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { BenchDatabase } from "./lib/bench-database";
import type { CompareTiming } from "./lib/compare";
import { contentionTable, runContention, type ContentionResult } from "./lib/contention";
import { BENCH_HOST, HandOutFixture } from "./lib/handout-fixture";
import { CASE_NOTES, GOAL, hotPathTable, runHotPath, type HotPathCell } from "./lib/hot-path";
import { machineInfo } from "./lib/machine";
import { reapingTable, runReaping, type ReapingResult } from "./lib/reaping";
import { runScale, scaleTable, type ScaleResult } from "./lib/scale";
import { readableUserId } from "./lib/seed";
import { checkBaselineStatements } from "./lib/sql-capture";
import { renderTable } from "./lib/table";

const CONCURRENCIES = [1, 16, 64];
const SCALE_CONCURRENCY = 16;

async function main(): Promise<void> {
  const started = performance.now();
  const { values } = parseArgs({
    options: {
      entries: { type: "string" },
      dead: { type: "string", default: "100000" },
      "segment-ms": { type: "string", default: "600" },
      "warmup-ms": { type: "string", default: "500" },
      rounds: { type: "string", default: "4" },
      sections: { type: "string", default: "hot,scale,reap,contention" },
    },
  });
  const sections = new Set(values.sections.split(","));
  const timing: CompareTiming = { warmupMs: int(values["warmup-ms"], "--warmup-ms"), segmentMs: int(values["segment-ms"], "--segment-ms"), rounds: int(values.rounds, "--rounds") };
  const entries = values.entries === undefined ? undefined : int(values.entries, "--entries");
  const log = (s: string) => process.stderr.write(`${s}\n`);

  const db = await BenchDatabase.create();
  process.once("SIGINT", () => {
    log(`interrupted: dropping ${db.name}`);
    void db.drop().finally(() => process.exit(130));
  });
  const out: Record<string, unknown> = { startedAt: new Date().toISOString() };
  try {
    const machine = machineInfo(await db.serverVersion());
    out.machine = machine;
    out.config = { database: db.name, poolSize: 10, lifetimeMinutes: 5, timing, concurrencies: CONCURRENCIES, scaleConcurrency: SCALE_CONCURRENCY, goal: GOAL, cases: CASE_NOTES };
    console.log(
      renderTable("Machine", ["item", "value"], [
        ["cores", machine.cores],
        ["CPU", machine.cpuModel],
        ["memory GiB", machine.memoryGiB],
        ["OS", machine.platform],
        ["Node", machine.node],
        ["database", machine.database],
        ["load average (1 min) at start", machine.loadAverageAtStart],
        ["timing per cell", `warm-up ${timing.warmupMs} ms per side, then ${timing.rounds} × ${timing.segmentMs} ms per side, alternating`],
      ]),
    );

    if (machine.loadAverageAtStart > machine.cores / 2) {
      console.log(`WARNING: load average ${machine.loadAverageAtStart} on ${machine.cores} cores: other work is running; ratios will be noisy (CPU µs/op is the steadier measure)`);
    }
    const fixture = await HandOutFixture.create(db);
    try {
      const check = await checkBaselineStatements(db, BENCH_HOST, readableUserId(0));
      out.baselineCheck = check;
      console.log(
        check.inSync
          ? "\nbaseline check: one library hand-out sends exactly the baseline's SELECT + reserve UPDATE"
          : `\nWARNING: the baseline is out of date; the library now sends:\n${check.libraryStatements.map((q) => `  ${q}`).join("\n")}\nupdate bench/lib/baseline-mysql2.ts`,
      );
      if (sections.has("hot")) {
        log("hot path…");
        const cells: HotPathCell[] = await runHotPath(fixture, CONCURRENCIES, 16, timing, log);
        out.hotPath = cells;
        console.log(hotPathTable(cells));
        console.log(Object.entries(CASE_NOTES).map(([k, v]) => `  ${k}: ${v}`).join("\n"));
        console.log(`  goal: tput × ≥ ${GOAL.throughputRatio}, p99 × ≤ ${GOAL.p99Ratio}; latencies in ms`);
      }
      if (sections.has("scale")) {
        log("scale…");
        const scale: ScaleResult = await runScale(fixture, { entries, fallbackEntries: 100_000, maxSeedSeconds: 60, concurrency: SCALE_CONCURRENCY }, timing, log);
        out.scale = scale;
        console.log(scaleTable(scale, SCALE_CONCURRENCY));
      }
      if (sections.has("reap")) {
        log("reaping…");
        const reaping: ReapingResult = await runReaping(fixture, int(values.dead, "--dead"), SCALE_CONCURRENCY, 2500, log);
        out.reaping = reaping;
        console.log(reapingTable(reaping));
      }
    } finally {
      await fixture.close();
    }
    if (sections.has("contention")) {
      log("contention…");
      const contention: ContentionResult = await runContention(db, { processes: 8, callersPerProcess: 64, scmLatencyMs: 50 }, log);
      out.contention = contention;
      console.log(contentionTable(contention));
    }
  } finally {
    await db.drop();
  }
  const wallSeconds = Math.round((performance.now() - started) / 100) / 10;
  out.wallSeconds = wallSeconds;
  const file = path.join(__dirname, "results", "bench.json");
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwall time ${wallSeconds} s; results in ${path.relative(process.cwd(), file)}`);
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
