/**
 * `npx ts-node --transpile-only bench/read-width.ts [--databases mariadb,postgres]`: what the width of
 * the hand-out's read costs. The same lookup by (userId, host) over 1000 users, 16 callers, read-only,
 * on each driver's callback API (pg: named prepared statements, timestamps as text, as the library),
 * with three column lists in alternating segments (6 rounds × 1.5 s each):
 * - minimal: the 4 columns the benchmark's baseline reads (id, accessToken, expiryDate, version);
 * - summary: 11 columns and one flag that folds refresh token, lease, drain and re-authorisation
 *   into a number (what a narrower hand-out read could get by with, re-reading the row when set);
 * - library: the library's own 17 (ENTRY_COLUMNS).
 * Prints ops/s and this process's CPU µs per read, and writes bench/results/read-width.json. Not a
 * goal, an explanation: the must-write cell's gap to its 4-column baseline (README, "Benchmarks").
 */
import "reflect-metadata";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { types } from "pg";
import { toPostgresSql } from "../src/storage/postgres-dialect";
import { ENTRY_COLUMNS } from "../src/storage/token-store";
import { timestampAsText } from "./lib/baseline-pg";
import { BenchDatabase } from "./lib/bench-database";
import { PostgresBenchDatabase } from "./lib/bench-database-postgres";
import { runFor } from "./lib/closed-loop";
import { BENCH_HOST, HandOutFixture, roundRobin } from "./lib/handout-fixture";

const READS = {
  minimal: "id, accessToken, expiryDate, version",
  summary:
    "id, userId, host, accessToken, scopes, username, reuse, expiryDate, reservedUntilDate, pinnedUntilDate, version, " +
    "CASE WHEN refreshToken IS NULL THEN 0 ELSE 1 END + CASE WHEN drainingSince IS NULL AND refreshLeaseUntil IS NULL AND reauthorizationReason IS NULL THEN 0 ELSE 2 END AS flags",
  library: ENTRY_COLUMNS,
} as const;
type Read = keyof typeof READS;

/** One read of `columns` for `userId`, on the driver's callback API. */
type ReadOnce = (columns: Read, userId: string) => Promise<void>;

async function measure(kind: "mariadb" | "postgres"): Promise<Record<Read, { opsPerSec: number; cpuUsPerRead: number; columns: number }>> {
  const db = kind === "postgres" ? await PostgresBenchDatabase.create() : await BenchDatabase.create();
  try {
    const fixture = await HandOutFixture.create(db);
    const sql = (read: Read) => `SELECT ${READS[read]} FROM scm_token_entry WHERE userId = ? AND host = ?`;
    let readOnce: ReadOnce;
    let end: () => Promise<void>;
    if (db instanceof PostgresBenchDatabase) {
      const pool = db.callbackPool(10);
      const asText = timestampAsText(types);
      readOnce = (read, userId) => new Promise((resolve, reject) => pool.query({ name: `width_${read}`, text: toPostgresSql(sql(read)), values: [userId, BENCH_HOST], types: asText }, (e: Error | undefined) => (e ? reject(e) : resolve())));
      end = () => pool.end();
    } else {
      const pool = db.callbackPool(10);
      readOnce = (read, userId) => new Promise((resolve, reject) => pool.query(sql(read), [userId, BENCH_HOST], (e) => (e ? reject(e) : resolve())));
      end = () => new Promise((resolve) => pool.end(() => resolve()));
    }
    try {
      const sums = new Map<Read, { ops: number; cpuMs: number; ms: number }>();
      const reads = Object.keys(READS) as Read[];
      for (let round = 0; round < 6; round++) {
        for (const read of round % 2 === 0 ? reads : [...reads].reverse()) {
          const pick = roundRobin(fixture.users);
          const r = await runFor(16, () => readOnce(read, pick()), 1500);
          if (r.errors > 0) throw new Error(`${kind} ${read}: ${r.firstError}`);
          const s = sums.get(read) ?? { ops: 0, cpuMs: 0, ms: 0 };
          sums.set(read, { ops: s.ops + r.ops, cpuMs: s.cpuMs + r.cpuMs, ms: s.ms + r.elapsedMs });
        }
      }
      const out = {} as Record<Read, { opsPerSec: number; cpuUsPerRead: number; columns: number }>;
      for (const [read, s] of sums) out[read] = { opsPerSec: Math.round((s.ops * 1000) / s.ms), cpuUsPerRead: Math.round((s.cpuMs * 10_000) / s.ops) / 10, columns: READS[read].split(",").length };
      return out;
    } finally {
      await end();
      await fixture.close();
    }
  } finally {
    await db.drop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { databases: { type: "string", default: "mariadb,postgres" } } });
  const results: Record<string, unknown> = { startedAt: new Date().toISOString() };
  for (const kind of values.databases.split(",") as Array<"mariadb" | "postgres">) {
    const r = await measure(kind);
    results[kind] = r;
    for (const [read, m] of Object.entries(r)) console.log(`${kind.padEnd(8)} ${read.padEnd(8)} ${String(m.columns).padStart(2)} columns: ${m.opsPerSec} reads/s, ${m.cpuUsPerRead} µs CPU per read`);
  }
  writeFileSync(path.join(__dirname, "results", "read-width.json"), `${JSON.stringify(results, null, 2)}\n`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
