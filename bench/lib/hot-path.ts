import type { Operation } from "./closed-loop";
import { compare, type Comparison, type CompareTiming } from "./compare";
import type { TokenService } from "../../src/token-service";
import type { HandOutFixture } from "./handout-fixture";
import { renderTable } from "./table";

/**
 * What a cell measures:
 * - write-free: repeated hand-outs of the same users; after the first, each is covered by the pin
 *   its predecessor wrote (one SELECT, no write). Baseline: SELECT + UPDATE every time.
 * - must-write: every hand-out is the first of its user (pin absent): SELECT + UPDATE on both sides.
 * - releasable: hand-out + release: SELECT, INSERT … SELECT of a hold (guarded: shared row lock on
 *   the entry), DELETE hold on both sides.
 * - releasable-unguarded: the same library calls against a baseline whose hold is a plain INSERT —
 *   unsafe against a concurrent refresh, so not a bar to meet: it shows what the guard costs.
 * - write-free-uncached: the write-free cell on a second service that keeps no decrypted tokens
 *   (decryptedTokenCacheSize 0), so it decrypts on every hand-out as the baseline does: what the
 *   cache adds to the write-free ratio.
 * - must-write-library-read: the must-write cell against that same baseline reading with the
 *   library's own SELECT (see releasable-library-read), on users of its own.
 * - releasable-library-read: the same library calls against the releasable baseline reading with the
 *   library's own SELECT (all the columns the library's decision needs, not the baseline's four):
 *   what is left of the gap is the cost of the library's code; the rest is the cost of what it reads.
 * - cold: must-write hand-outs of users drawn at random from the whole 1M-row table, larger than the
 *   buffer pool.
 * - noise: the baseline against itself (A/A: the same code, statements and pool on both sides), so
 *   whatever ratio it shows is the machine's and the method's noise — the yardstick for how far from
 *   1.0 the other cells must be before a difference means anything.
 */
export type CellKind = "write-free" | "write-free-uncached" | "must-write" | "must-write-library-read" | "releasable" | "releasable-unguarded" | "releasable-library-read" | "cold" | "noise";

/** A cell's goal; null = information only (no goal). */
export type CellGoal = { throughputRatio: number; p99Ratio: number } | null;

export const GOALS: Record<CellKind, CellGoal> = {
  "write-free": { throughputRatio: 2, p99Ratio: 1.5 },
  "write-free-uncached": null,
  "must-write": { throughputRatio: 0.95, p99Ratio: 1.5 },
  "must-write-library-read": null,
  releasable: { throughputRatio: 0.95, p99Ratio: 1.5 },
  "releasable-unguarded": null,
  "releasable-library-read": null,
  cold: { throughputRatio: 0.9, p99Ratio: 1.5 },
  noise: null,
};

export const CASE_NOTES: Record<CellKind, string> = {
  "write-free": "repeated 5-minute hand-outs of each user: the library reads only (the pin of an earlier hand-out covers it); baseline SELECT + reserve UPDATE",
  "write-free-uncached":
    "information, no goal: the write-free cell (16 callers) on a service with decryptedTokenCacheSize 0, which decrypts every token it hands out, as the baseline does; the difference to the write-free cell is what the cache of decrypted tokens brings",
  "must-write": "the first hand-out of each user (no pin yet): SELECT + reserve UPDATE on both sides",
  "must-write-library-read":
    "information, no goal: the must-write cell (other fresh users) against the baseline reading with the library's own SELECT (17 columns instead of 4); the gap left is the cost of the library's code",
  releasable: "hand-out + release: SELECT + INSERT … SELECT of a hold + DELETE hold on both sides (2 writes); the INSERT checks the entry (version, no refresh lease, no drain) under a shared row lock, so a concurrent refresh cannot revoke the token handed out",
  "releasable-unguarded": "information, no goal: the same library calls against a baseline whose hold is a plain INSERT … VALUES — unsafe (a refresh between its read and its insert revokes the token it hands out); the gap is the price of the guard",
  "releasable-library-read":
    "information, no goal: the same library calls against the releasable baseline reading with the library's own SELECT (the 17 columns its decision needs, where the baseline reads 4); the gap left is the cost of the library's code, the difference to the releasable cell the cost of reading what it reads",
  cold: "first hand-outs of users drawn at random from 1M rows (table > innodb_buffer_pool_size): SELECT + UPDATE on both sides",
  noise: "information, no goal: A/A — the baseline's SELECT + reserve UPDATE on both sides (same code, same pool); any distance from 1.0, per round or per run, is noise",
};

export interface CellSpec {
  name: string;
  kind: CellKind;
  users: string;
  concurrency: number;
  library: Operation;
  baseline: Operation;
  /** The service `library` hands out from, when not the fixture's (its metrics give the write-free share). */
  service?: TokenService;
}

export interface CellResult extends Comparison {
  name: string;
  kind: CellKind;
  users: string;
  goal: CellGoal;
  /** Share of the library's hand-outs in this cell (warm-up included) that wrote nothing. */
  writeFreeShare: number;
  met: boolean;
}

export async function runCell(fixture: HandOutFixture, spec: CellSpec, timing: CompareTiming, libraryFirst: boolean, log: (s: string) => void): Promise<CellResult> {
  const wf0 = await fixture.writeFreeCount(spec.service);
  const n0 = await fixture.handOutCount(spec.service);
  const r = await compare(spec.library, spec.baseline, spec.concurrency, timing, libraryFirst);
  const wf = (await fixture.writeFreeCount(spec.service)) - wf0;
  const n = (await fixture.handOutCount(spec.service)) - n0;
  const goal = GOALS[spec.kind];
  const met = (goal === null || (r.throughputRatio >= goal.throughputRatio && r.p99Ratio <= goal.p99Ratio)) && r.library.errors + r.baseline.errors === 0;
  const cell: CellResult = { name: spec.name, kind: spec.kind, users: spec.users, goal, writeFreeShare: n > 0 ? Math.round((wf / n) * 1000) / 1000 : 0, met, ...r };
  log(`  ${spec.name} c=${spec.concurrency}: library ${r.library.opsPerSec} ops/s, baseline ${r.baseline.opsPerSec} ops/s (×${r.throughputRatio}, rounds ${r.roundRatios.join(" ")}), p99 ×${r.p99Ratio}, write-free ${cell.writeFreeShare}`);
  return cell;
}

/** How each server's baseline is written, for the tables' titles. */
export const BASELINE_NOTES = {
  mariadb: "MariaDB: library vs hand-written mysql2 (callback API, minimal columns, same decrypt, pool 10 each)",
  postgres: "PostgreSQL: library vs hand-written pg (pg.Pool callback API, named prepared statements, minimal columns, same decrypt, pool 10 each)",
} as const;

export function cellsTable(cells: CellResult[], kind: keyof typeof BASELINE_NOTES): string {
  return renderTable(
    `Hand-outs on ${BASELINE_NOTES[kind]}, alternating segments`,
    ["cell", "users", "conc", "lib ops/s", "base ops/s", "tput ×", "round ×  min–max", "lib p99", "base p99", "p99 ×", "lib CPU µs", "base CPU µs", "write-free", "errors", "goal"],
    cells.map((c) => [
      c.name,
      c.users,
      c.concurrency,
      c.library.opsPerSec,
      c.baseline.opsPerSec,
      c.throughputRatio,
      `${Math.min(...c.roundRatios)}–${Math.max(...c.roundRatios)}`,
      c.library.latencyMs.p99,
      c.baseline.latencyMs.p99,
      c.p99Ratio,
      c.library.cpuUsPerOp,
      c.baseline.cpuUsPerOp,
      c.writeFreeShare,
      c.library.errors + c.baseline.errors,
      c.goal ? `${c.met ? "ok" : "MISS"} (≥${c.goal.throughputRatio}×, p99 ≤${c.goal.p99Ratio}×)` : "information",
    ]),
  );
}
