import { performance } from "node:perf_hooks";
import { compare, type Comparison, type CompareTiming } from "./compare";
import { BENCH_HOST, type HandOutFixture } from "./handout-fixture";
import { prepare } from "./hot-path";
import { bulkInsert, countRows } from "./seed";
import { renderTable } from "./table";

export interface ScaleStep extends Comparison {
  entries: number;
  /** Seconds spent seeding up to this size (0 for the first step). */
  seedSeconds: number;
  seedRowsPerSec?: number;
}

export interface ScaleResult {
  steps: ScaleStep[];
  /** Set when the default run stopped short of 1M because seeding would take too long. */
  skippedMillion?: { projectedSeedSeconds: number; hint: string };
}

export interface ScaleOptions {
  /** `--entries N`: seed exactly to N. Otherwise: 1M if seeding projects under `maxSeedSeconds`, else `fallbackEntries`. */
  entries?: number;
  fallbackEntries: number;
  maxSeedSeconds: number;
  concurrency: number;
}

const MILLION = 1_000_000;

/** The hot-path cell (unreserved, 1000 readable users spread over the index) at the current size, then after bulk seeding. */
export async function runScale(fixture: HandOutFixture, options: ScaleOptions, timing: CompareTiming, log: (s: string) => void): Promise<ScaleResult> {
  const cell = async () => {
    await prepare(fixture, "unreserved");
    return compare(fixture.libraryOp(fixture.users), fixture.baselineOp(fixture.users), options.concurrency, timing);
  };
  const start = await countRows(fixture.pool);
  const steps: ScaleStep[] = [{ entries: start, seedSeconds: 0, ...(await cell()) }];
  log(`  ${start} entries: library ${steps[0].library.opsPerSec} ops/s, baseline ${steps[0].baseline.opsPerSec} ops/s`);

  const t0 = performance.now();
  let rows = start;
  const seedTo = async (target: number) => {
    if (target > rows) {
      await bulkInsert(fixture.pool, BENCH_HOST, { kind: "filler", from: rows - start, to: target - start }, 2);
      rows = target;
    }
  };
  let skippedMillion: ScaleResult["skippedMillion"];
  if (options.entries !== undefined) {
    await seedTo(options.entries);
  } else {
    await seedTo(options.fallbackEntries);
    const perRow = (performance.now() - t0) / 1000 / (rows - start);
    const projected = perRow * (MILLION - start);
    if (projected <= options.maxSeedSeconds) {
      log(`  seeding to 1M (projected ${projected.toFixed(0)} s)`);
      await seedTo(MILLION);
    } else {
      const hint = `1M entries skipped: seeding projects to ${projected.toFixed(0)} s (> ${options.maxSeedSeconds} s); run \`npm run bench -- --entries 1000000\` to measure it`;
      log(`  ${hint}`);
      skippedMillion = { projectedSeedSeconds: Math.round(projected), hint };
    }
  }
  const seedSeconds = (performance.now() - t0) / 1000;
  const entries = await countRows(fixture.pool);
  const step: ScaleStep = { entries, seedSeconds: Math.round(seedSeconds * 10) / 10, seedRowsPerSec: Math.round((entries - start) / seedSeconds), ...(await cell()) };
  steps.push(step);
  log(`  ${entries} entries (seeded in ${step.seedSeconds} s): library ${step.library.opsPerSec} ops/s, baseline ${step.baseline.opsPerSec} ops/s`);
  return { steps, skippedMillion };
}

export function scaleTable(result: ScaleResult, concurrency: number): string {
  return renderTable(
    `Scale: the hot-path cell (unreserved, 1000 readable users, concurrency ${concurrency}) by table size`,
    ["entries", "seed s", "seed rows/s", "lib ops/s", "base ops/s", "tput ×", "lib p50", "base p50", "lib p99", "base p99", "p99 ×"],
    result.steps.map((s) => [
      s.entries,
      s.seedSeconds,
      s.seedRowsPerSec,
      s.library.opsPerSec,
      s.baseline.opsPerSec,
      s.throughputRatio,
      s.library.latencyMs.p50,
      s.baseline.latencyMs.p50,
      s.library.latencyMs.p99,
      s.baseline.latencyMs.p99,
      s.p99Ratio,
    ]),
  ) + (result.skippedMillion ? `\n(${result.skippedMillion.hint})` : "");
}
