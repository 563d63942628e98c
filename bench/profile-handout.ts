/**
 * `npx ts-node --transpile-only bench/profile-handout.ts [mariadb|postgres] [write-free|releasable|must-write, or baseline-<any of those>|baseline-releasable-unguarded|write-free-uncached|must-write-uncached]` under
 * the library's hand-outs alone (16 callers, 8 s) on a database of its own, to see where the library's
 * own CPU goes. With `CPU_PROFILE=<file>` the measured 8 s (not the seeding or the warm-up) are written
 * as a V8 CPU profile. Not a benchmark (no baseline in the same run); a tool for finding overhead.
 */
import "reflect-metadata";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { performance } from "node:perf_hooks";
import { BenchDatabase } from "./lib/bench-database";
import { PostgresBenchDatabase } from "./lib/bench-database-postgres";
import { runClosedLoop } from "./lib/closed-loop";
import { eachOnce, HandOutFixture, roundRobin } from "./lib/handout-fixture";
import { bulkUserId, shuffledRange } from "./lib/seed";

async function main(): Promise<void> {
  const kind = (process.argv[2] ?? "postgres") as "mariadb" | "postgres";
  const mode = process.argv[3] ?? "write-free";
  const db = kind === "postgres" ? await PostgresBenchDatabase.create() : await BenchDatabase.create();
  try {
    const fixture = await HandOutFixture.create(db);
    try {
      const pick = roundRobin(fixture.users);
      // must-write: first hand-outs of fresh users (seeded now; 10 s at ≤ 15k ops/s needs ≤ 150k).
      const fresh = mode.includes("must-write") ? await fixture.seedReadable(0, 150_000).then(() => eachOnce(shuffledRange(0, 150_000, 1), bulkUserId)) : pick;
      const uncached = mode.endsWith("-uncached") ? await fixture.serviceWithoutDecryptCache() : undefined;
      const ops = {
        "must-write": fixture.libraryOp(fresh),
        "must-write-uncached": fixture.libraryOp(fresh, uncached),
        "write-free-uncached": fixture.libraryOp(pick, uncached),
        "baseline-must-write": fixture.baselineOp(fresh),
        "write-free": fixture.libraryOp(pick),
        releasable: fixture.libraryReleasableOp(pick),
        "baseline-write-free": fixture.baselineOp(pick),
        "baseline-releasable": fixture.baselineReleasableOp(pick, "guarded"),
        "baseline-releasable-unguarded": fixture.baselineReleasableOp(pick, "unguarded"),
      };
      if (!(mode in ops)) throw new Error(`mode: one of ${Object.keys(ops).join(", ")}`);
      const op = ops[mode as keyof typeof ops];
      await runClosedLoop(16, op, (ms) => ms > 2_000);
      const profiler = await startProfiler();
      const t0 = performance.now();
      const r = await runClosedLoop(16, op, (ms) => ms > 8_000);
      await profiler?.stop();
      console.log(`${kind} ${mode}: ${Math.round((r.ops * 1000) / (performance.now() - t0))} ops/s, ${Math.round((r.cpuMs * 1000) / r.ops)} µs CPU/op, errors ${r.errors}`);
    } finally {
      await fixture.close();
    }
  } finally {
    await db.drop();
  }
}

/** Profiles from now until `stop()` when `CPU_PROFILE` names a file to write; otherwise does nothing. */
async function startProfiler(): Promise<{ stop(): Promise<void> } | undefined> {
  const file = process.env.CPU_PROFILE;
  if (!file) return undefined;
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return {
    async stop() {
      const { profile } = await session.post("Profiler.stop");
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
