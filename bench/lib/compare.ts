import { runFor, type LoopResult, type Operation } from "./closed-loop";
import { LatencyRecorder, type LatencySummary } from "./latency";
import { round2 } from "./table";

/** Timing of one comparison cell. Segments alternate so that drift (caches, the VM's neighbours) hits both sides alike. */
export interface CompareTiming {
  warmupMs: number;
  segmentMs: number;
  /** Each round runs both sides once; the order flips every round. */
  rounds: number;
}

export interface SideResult {
  ops: number;
  errors: number;
  opsPerSec: number;
  /** Node-process CPU µs per operation (user + system). */
  cpuUsPerOp: number;
  latencyMs: LatencySummary;
  firstError?: string;
}

export interface Comparison {
  concurrency: number;
  library: SideResult;
  baseline: SideResult;
  /** library / baseline ops/s (goal ≥ 0.9). */
  throughputRatio: number;
  /** library / baseline p99 latency (goal ≤ 1.5). */
  p99Ratio: number;
  /** library − baseline CPU µs per operation: the library's client-side overhead. */
  cpuOverheadUsPerOp: number;
  /** Throughput ratio of each round (library segment / baseline segment of the same round): the noise. */
  roundRatios: number[];
  /** Which side warmed up (and ran) first in round 0. */
  firstSide: "library" | "baseline";
}

/**
 * Runs the library and the baseline with the same closed-loop concurrency, alternating. `libraryFirst`
 * picks which side warms up and runs first (callers alternate it from cell to cell).
 */
export async function compare(library: Operation, baseline: Operation, concurrency: number, timing: CompareTiming, libraryFirst = false): Promise<Comparison> {
  if (libraryFirst) {
    await runFor(concurrency, library, timing.warmupMs);
    await runFor(concurrency, baseline, timing.warmupMs);
  } else {
    await runFor(concurrency, baseline, timing.warmupMs);
    await runFor(concurrency, library, timing.warmupMs);
  }
  const lib: LoopResult[] = [];
  const base: LoopResult[] = [];
  for (let round = 0; round < timing.rounds; round++) {
    if ((round % 2 === 0) !== libraryFirst) {
      base.push(await runFor(concurrency, baseline, timing.segmentMs));
      lib.push(await runFor(concurrency, library, timing.segmentMs));
    } else {
      lib.push(await runFor(concurrency, library, timing.segmentMs));
      base.push(await runFor(concurrency, baseline, timing.segmentMs));
    }
  }
  const l = merge(lib);
  const b = merge(base);
  return {
    concurrency,
    library: l,
    baseline: b,
    throughputRatio: round2(l.opsPerSec / b.opsPerSec),
    p99Ratio: round2(l.latencyMs.p99 / b.latencyMs.p99),
    cpuOverheadUsPerOp: l.cpuUsPerOp - b.cpuUsPerOp,
    roundRatios: lib.map((r, i) => round2(r.ops / r.elapsedMs / (base[i].ops / base[i].elapsedMs))),
    firstSide: libraryFirst ? "library" : "baseline",
  };
}

/** One side alone (reaping section). */
export async function measure(op: Operation, concurrency: number, durationMs: number, warmupMs = 0): Promise<SideResult> {
  if (warmupMs > 0) await runFor(concurrency, op, warmupMs);
  return merge([await runFor(concurrency, op, durationMs)]);
}

export function merge(results: LoopResult[]): SideResult {
  const latency = new LatencyRecorder();
  let ops = 0;
  let errors = 0;
  let elapsed = 0;
  let cpuMs = 0;
  for (const r of results) {
    cpuMs += r.cpuMs;
    latency.addAll(r.latency);
    ops += r.ops;
    errors += r.errors;
    elapsed += r.elapsedMs;
  }
  const s = latency.summary();
  return {
    ops,
    errors,
    opsPerSec: Math.round((ops / elapsed) * 1000),
    cpuUsPerOp: Math.round((cpuMs * 1000) / Math.max(1, ops)),
    latencyMs: { count: s.count, p50: round3(s.p50), p99: round3(s.p99), max: round3(s.max), mean: round3(s.mean) },
    firstError: results.find((r) => r.firstError)?.firstError,
  };
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
