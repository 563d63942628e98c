/**
 * `npx ts-node --transpile-only bench/js-overhead.ts`: the client-side CPU of one writing hand-out,
 * library vs the hand-written mysql2 baseline, with the database taken out. Both run against mysql2
 * pools whose statements are answered in-process (a SELECT gets the user's real row, read from
 * MariaDB at the start; an UPDATE gets one affected row), so what is left is each side's own
 * JavaScript, decrypt included, and nothing of the network, the server or mysql2's packet parsing.
 * Every library hand-out is a writing one (the answered row never shows a reservation), so this is
 * the must-write path. 16 callers, alternating 1 s segments, 8 rounds; prints µs of CPU per hand-out.
 * An argument runs only the cells whose name contains it (e.g. `"cache off"`, to profile that one).
 *
 * Not a benchmark of the library (the database is most of a hand-out's cost; see handout-bench.ts),
 * a tool for finding and pricing the library's own per-call work.
 */
import "reflect-metadata";
import { createPool, type PoolConnection } from "mysql2";
import { ENTRY_COLUMNS } from "../src/storage/token-store";
import { BenchDatabase } from "./lib/bench-database";
import { runFor, type Operation } from "./lib/closed-loop";
import { BENCH_HOST, HandOutFixture, roundRobin } from "./lib/handout-fixture";

type Answer = (sql: string, params: unknown[]) => unknown;
type Callback = (error: Error | null, result?: unknown) => void;

/** From now on every mysql2 pool answers in-process (setImmediate, as if from a socket). */
function answerInProcess(answer: Answer): void {
  // The class behind every createPool (mysql2 does not export its path): a pool that never connects shows it.
  const unused = createPool({});
  const poolPrototype = Object.getPrototypeOf(unused) as object;
  unused.end();
  const query = (sql: string, params: unknown[], callback: Callback) => setImmediate(() => callback(null, answer(sql, params)));
  const connection = { query, release() {}, destroy() {} } as unknown as PoolConnection;
  Object.assign(poolPrototype, {
    getConnection: (callback: (e: Error | null, c: PoolConnection) => void) => setImmediate(() => callback(null, connection)),
    query,
  });
}

async function main(): Promise<void> {
  const db = await BenchDatabase.create();
  try {
    const fixture = await HandOutFixture.create(db);
    const uncached = await fixture.serviceWithoutDecryptCache();
    const rows = new Map<string, Record<string, unknown>>();
    for (const r of await fixture.pool.query(`SELECT ${ENTRY_COLUMNS} FROM scm_token_entry WHERE host = ?`, [BENCH_HOST])) rows.set(String(r.userId), r);
    answerInProcess((sql, params) => {
      if (!sql.startsWith("SELECT")) return { affectedRows: 1 };
      const row = rows.get(String(params[0]));
      return row ? [{ ...row }] : [];
    });
    const cells: Record<string, (pick: () => string) => Operation> = {
      "library (decrypted-token cache on)": (pick) => fixture.libraryOp(pick),
      "library (cache off, decrypts every time)": (pick) => fixture.libraryOp(pick, uncached),
      baseline: (pick) => fixture.baselineOp(pick),
    };
    const sums = new Map<string, { ops: number; cpuMs: number }>();
    for (let round = 0; round < 8; round++) {
      const names = Object.keys(cells).filter((name) => name.includes(process.argv[2] ?? ""));
      for (const name of round % 2 === 0 ? names : names.reverse()) {
        const r = await runFor(16, cells[name](roundRobin(fixture.users)), 1_000);
        if (r.errors > 0) throw new Error(`${name}: ${r.firstError}`);
        if (round === 0) continue; // warm-up
        const s = sums.get(name) ?? { ops: 0, cpuMs: 0 };
        sums.set(name, { ops: s.ops + r.ops, cpuMs: s.cpuMs + r.cpuMs });
      }
    }
    for (const [name, s] of sums) console.log(`${name.padEnd(42)} ${((s.cpuMs * 1000) / s.ops).toFixed(1).padStart(6)} µs CPU per hand-out`);
    await fixture.close().catch(() => undefined);
  } finally {
    await db.drop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
