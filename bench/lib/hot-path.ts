import { compare, type Comparison, type CompareTiming } from "./compare";
import { HOT_USER, type HandOutFixture } from "./handout-fixture";
import { setReservations } from "./seed";
import { renderTable } from "./table";

/** The two reservation states of the hot path (opportunistic refresh off: both are "reuse"). */
export type ReservationCase = "unreserved" | "reserved";

export const CASE_NOTES: Record<ReservationCase, string> = {
  unreserved: "reservedUntilDate/pinnedUntilDate start NULL and every hand-out raises them (reserve UPDATE sets 3 columns)",
  reserved: "reservedUntilDate/pinnedUntilDate = now + 12 h, beyond now + L: the reserve UPDATE keeps them (still bumps reservationSeq)",
};

export interface HotPathCell extends Comparison {
  case: ReservationCase;
  users: number;
}

export const GOAL = { throughputRatio: 0.9, p99Ratio: 1.5 };

/** Library vs baseline for each case × concurrency over 1000 users, then the single hot user. */
export async function runHotPath(fixture: HandOutFixture, concurrencies: number[], hotConcurrency: number, timing: CompareTiming, log: (s: string) => void): Promise<HotPathCell[]> {
  const cells: HotPathCell[] = [];
  const cell = async (c: ReservationCase, users: readonly string[], concurrency: number) => {
    const r = await compare(fixture.libraryOp(users), fixture.baselineOp(users), concurrency, timing);
    cells.push({ case: c, users: users.length, ...r });
    log(`  ${c} users=${users.length} c=${concurrency}: library ${r.library.opsPerSec} ops/s, baseline ${r.baseline.opsPerSec} ops/s`);
  };
  for (const c of ["unreserved", "reserved"] as const) {
    await prepare(fixture, c);
    for (const concurrency of concurrencies) await cell(c, fixture.users, concurrency);
  }
  for (const c of ["unreserved", "reserved"] as const) {
    await prepare(fixture, c);
    await cell(c, [HOT_USER], hotConcurrency);
  }
  return cells;
}

export function prepare(fixture: HandOutFixture, c: ReservationCase): Promise<void> {
  return setReservations(fixture.pool, c === "reserved" ? new Date(Date.now() + 12 * 3600_000) : undefined);
}

export function meetsGoal(c: Comparison): boolean {
  return c.throughputRatio >= GOAL.throughputRatio && c.p99Ratio <= GOAL.p99Ratio;
}

export function hotPathTable(cells: HotPathCell[]): string {
  return renderTable(
    "Hand-out hot path: library getTokenForHost vs hand-written mysql2 (same SELECT + reserve UPDATE + AES-GCM decrypt), pool 10 each",
    ["case", "users", "conc", "lib ops/s", "base ops/s", "tput ×", "lib p50", "base p50", "lib p99", "base p99", "p99 ×", "lib CPU µs", "base CPU µs", "errors", "goal"],
    cells.map((c) => [
      c.case,
      c.users,
      c.concurrency,
      c.library.opsPerSec,
      c.baseline.opsPerSec,
      c.throughputRatio,
      c.library.latencyMs.p50,
      c.baseline.latencyMs.p50,
      c.library.latencyMs.p99,
      c.baseline.latencyMs.p99,
      c.p99Ratio,
      c.library.cpuUsPerOp,
      c.baseline.cpuUsPerOp,
      c.library.errors + c.baseline.errors,
      meetsGoal(c) ? "ok" : "MISS",
    ]),
  );
}
