/**
 * `npx ts-node --transpile-only bench/readme-tables.ts [bench/results/bench.json ...]`
 *
 * Prints the README's benchmark tables (markdown) from one or more results `npm run bench` wrote:
 * MariaDB's cells and reaping (the top level of bench.json), then PostgreSQL's cells (its `postgres`
 * part, in runs that had one). With several files (runs), each cell shows the ratio of the first
 * file and the range over all of them, so the noise between runs is visible. Deterministic: the
 * same files give the same text.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { CellResult } from "./lib/hot-path";
import type { ReapingRun } from "./lib/reaping";

interface BenchResults {
  startedAt: string;
  machine: { cores: number; cpuModel: string; memoryGiB: number; node: string; database: string; loadAverageAtStart: number; innodbBufferPoolMiB?: number };
  config: { timing: { warmupMs: number; segmentMs: number; rounds: number } };
  seed?: { rows: number; seedSeconds: number };
  cells?: CellResult[];
  reaping?: ReapingRun[];
  /** Runs with PostgreSQL cells (`--databases` with postgres). */
  postgres?: { server: { version: string; settings: Record<string, string | number> }; cells?: CellResult[] };
  loadAverages?: number[];
  wallSeconds: number;
}

const files = process.argv.length > 2 ? process.argv.slice(2) : [resolve(__dirname, "results", "bench.json")];
const runs = files.map((f) => JSON.parse(readFileSync(f, "utf8")) as BenchResults);
const first = runs[0];

function ms(v: number): string {
  return v.toFixed(1);
}

function range(values: number[]): string {
  const min = Math.min(...values);
  const max = Math.max(...values);
  return min === max ? String(min) : `${min}–${max}`;
}

const lines: string[] = [];
const m = first.machine;
const loads = runs.flatMap((r) => r.loadAverages ?? [r.machine.loadAverageAtStart]);
const starts = runs.map((r) => r.machine.loadAverageAtStart);
lines.push(
  `Runs: ${runs.map((r) => r.startedAt.slice(0, 16).replace("T", " ")).join(", ")} UTC — ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, MariaDB ${m.database}` +
    `${m.innodbBufferPoolMiB ? `, buffer pool ${m.innodbBufferPoolMiB} MiB` : ""}; 1-minute load average at the start of each run ${starts.join(" / ")}, during the runs ${Math.min(...loads)}–${Math.max(...loads)} (the benchmark's own callers and database server). Each cell: ${first.config.timing.rounds} × ${first.config.timing.segmentMs} ms per side, alternating; wall time ${runs.map((r) => r.wallSeconds).join(" / ")} s.`,
  "",
);

/** A cell's goal column over the runs that have it: met in all, or in how many; no goal = information only. */
function goalText(c: CellResult, same: CellResult[]): string {
  if (!c.goal) return "information (no goal)";
  const met = same.filter((x) => x.met).length;
  const verdict = met === same.length ? (same.length > 1 ? `met in all ${same.length} runs` : "met") : `**missed** in ${same.length - met} of ${same.length} run${same.length > 1 ? "s" : ""}`;
  return `${verdict} (≥ ${c.goal.throughputRatio}×, p99 ≤ ${c.goal.p99Ratio}×)`;
}

/** The cells table of one server: `cellsOf` picks that server's cells from a run. */
function cellsTable(cellsOf: (run: BenchResults) => CellResult[] | undefined): void {
  const cells = cellsOf(first);
  if (!cells?.length) return;
  lines.push(
    "| cell | users | callers | library ops/s | baseline ops/s | throughput × | per-round × (min–max) | p99 ms (lib / base) | p99 × | write-free share | goal |",
    "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---|",
  );
  cells.forEach((c, i) => {
    const same = runs.map((r) => cellsOf(r)?.[i]).filter((x): x is CellResult => x !== undefined && x.name === c.name && x.concurrency === c.concurrency);
    const perRound = same.flatMap((x) => x.roundRatios);
    const tput = same.length > 1 ? `${c.throughputRatio} (runs ${range(same.map((x) => x.throughputRatio))})` : String(c.throughputRatio);
    const p99 = same.length > 1 ? `${c.p99Ratio} (runs ${range(same.map((x) => x.p99Ratio))})` : String(c.p99Ratio);
    lines.push(
      `| ${c.name} | ${c.users} | ${c.concurrency} | ${c.library.opsPerSec} | ${c.baseline.opsPerSec} | ${tput} | ${range(perRound)} | ${ms(c.library.latencyMs.p99)} / ${ms(c.baseline.latencyMs.p99)} | ${p99} | ${c.writeFreeShare} | ${goalText(c, same)} |`,
    );
  });
  lines.push("");
}

cellsTable((r) => r.cells);

if (first.reaping?.length) {
  lines.push(
    "| hand-outs during the reap | idle ops/s | during ops/s | throughput × | per-pair × (min–max) | p99 ms idle → during | p99 × | rows reaped | reap s (rows/s) |",
    "|---|---:|---:|---:|---|---|---:|---:|---|",
  );
  first.reaping.forEach((r, i) => {
    if (!Array.isArray(r.pairRatios)) return;
    // Runs of an older bench (one idle phase, then one reaping phase) have no pairRatios: not comparable.
    const same = runs.map((x) => x.reaping?.[i]).filter((x): x is ReapingRun => x !== undefined && Array.isArray(x.pairRatios));
    const note = (v: number, all: number[]) => (same.length > 1 ? `${v} (runs ${range(all)})` : String(v));
    lines.push(
      `| ${r.handOuts} | ${r.idle.opsPerSec} | ${r.duringReap.opsPerSec} | ${note(r.throughputRatio, same.map((x) => x.throughputRatio))} | ${range(same.flatMap((x) => x.pairRatios))} | ${ms(r.idle.latencyMs.p99)} → ${ms(r.duringReap.latencyMs.p99)} | ${note(r.p99Ratio, same.map((x) => x.p99Ratio))} | ${r.deleted} | ${r.reapSeconds} (${r.reapRowsPerSec}) |`,
    );
  });
  lines.push("");
}

const pg = first.postgres;
if (pg?.cells?.length) {
  const settings = Object.entries(pg.server.settings).map(([k, v]) => `${k} ${v}`).join(", ");
  lines.push(
    `PostgreSQL ${pg.server.version} (${settings}), the same runs; baseline: a hand-written pg loop (pg.Pool callback API, named prepared statements) sending the same statements. The cold, reaping and contention sections run on MariaDB only.`,
    "",
  );
  cellsTable((r) => r.postgres?.cells);
}

process.stdout.write(`${lines.join("\n")}\n`);
