import { performance } from "node:perf_hooks";
import { LatencyRecorder } from "./latency";

/** One operation: `seq` is a global sequence number (use it to pick a user round-robin). */
export type Operation = (seq: number) => Promise<void>;

export interface LoopResult {
  ops: number;
  errors: number;
  elapsedMs: number;
  /** CPU time (user + system) of this process during the loop: the client-side cost, free of database noise. */
  cpuMs: number;
  latency: LatencyRecorder;
  firstError?: string;
}

/**
 * A closed loop: exactly `concurrency` callers in flight; each starts its next call when the previous
 * one returns. Runs until `stop()` says so (checked before every call), then waits for the in-flight
 * calls. Latency of every call is recorded, errors counted (and the first one kept).
 */
export async function runClosedLoop(concurrency: number, op: Operation, stop: (elapsedMs: number, ops: number) => boolean): Promise<LoopResult> {
  const latency = new LatencyRecorder();
  let seq = 0;
  let ops = 0;
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const caller = async () => {
    while (!stop(performance.now() - started, ops)) {
      const t0 = performance.now();
      try {
        await op(seq++);
        latency.record(performance.now() - t0);
        ops++;
      } catch (e) {
        errors++;
        firstError ??= e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  const cpu = process.cpuUsage(cpu0);
  return { ops, errors, elapsedMs: performance.now() - started, cpuMs: (cpu.user + cpu.system) / 1000, latency, firstError };
}

/** Runs the loop for `durationMs`. */
export function runFor(concurrency: number, op: Operation, durationMs: number): Promise<LoopResult> {
  return runClosedLoop(concurrency, op, (elapsed) => elapsed >= durationMs);
}

/** Runs the loop until `done` resolves (e.g. a concurrent reap finished). */
export async function runUntil(concurrency: number, op: Operation, done: Promise<unknown>): Promise<LoopResult> {
  let finished = false;
  const settled = done.then(
    () => (finished = true),
    () => (finished = true),
  );
  const result = await runClosedLoop(concurrency, op, () => finished);
  await settled;
  return result;
}
