/**
 * `npm run bench` — the hand-out benchmarks (about 7 minutes):
 *  1. hand-out cells, library vs the fastest reasonable hand-written code on the same driver in the
 *     same run (mysql2 on MariaDB, pg on PostgreSQL): write-free steady state (1 and 16 callers),
 *     one hot user, releasable (hand-out + release), must-write (first hand-outs); on MariaDB also
 *     must-write at random over 1M entries (table > buffer pool);
 *  2. reaping 100k dead rows while hand-outs run (write-free and must-write hand-outs), MariaDB only;
 *  3. contention: 8 processes × 64 callers for one token that must be refreshed, MariaDB only.
 * Prints aligned tables and writes bench/results/bench.json: MariaDB's results at the top level,
 * PostgreSQL's under `postgres` (`npx ts-node --transpile-only bench/readme-tables.ts` prints the
 * README's tables from it). Uses a database of its own on each server, dropped at the end:
 * BENCH_DATABASE_URL (default mariadb://root@127.0.0.1:3306) and BENCH_POSTGRES_URL (default
 * postgres://postgres@127.0.0.1:5432).
 *
 * Options: --databases mariadb,postgres (default both)
 *          --entries N (rows of the cold cell; default 1000000)   --dead N (rows to reap, default 100000)
 *          --segment-ms N (default 2000)   --rounds N (default 5)   --warmup-ms N (default 1000)
 *          --sections cells,cold,reap,contention (default all; cold, reap and contention run on MariaDB only)
 */
import "reflect-metadata";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { BenchDatabase } from "./lib/bench-database";
import { PostgresBenchDatabase } from "./lib/bench-database-postgres";
import type { BenchKind, BenchTarget, HandOutBaseline } from "./lib/bench-target";
import { runClosedLoop } from "./lib/closed-loop";
import type { CompareTiming } from "./lib/compare";
import { contentionTable, runContention, type ContentionResult } from "./lib/contention";
import { BENCH_HOST, eachOnce, HandOutFixture, HOT_USER, roundRobin } from "./lib/handout-fixture";
import { CASE_NOTES, cellsTable, GOALS, runCell, type CellResult, type CellSpec } from "./lib/hot-path";
import { machineInfo } from "./lib/machine";
import { reapingTable, runReaping, type ReapingRun } from "./lib/reaping";
import { bulkUserId, countRows, readableUserId, shuffledRange } from "./lib/seed";
import { checkBaselineStatements, type BaselineCheck } from "./lib/sql-capture";
import { renderTable } from "./lib/table";

/** Bulk users 0 … WARM_USERS-1 are the must-write cell's (library even, baseline odd); the rest the cold cell's. */
const WARM_USERS = 300_000;
const KINDS: readonly BenchKind[] = ["mariadb", "postgres"];
const SERVER_NAMES: Record<BenchKind, string> = { mariadb: "MariaDB", postgres: "PostgreSQL" };

interface Run {
  timing: CompareTiming;
  sections: Set<string>;
  entries: number;
  deadRows: number;
  log: (s: string) => void;
  sampleLoad: () => void;
}

async function main(): Promise<void> {
  const started = performance.now();
  const { values } = parseArgs({
    options: {
      databases: { type: "string", default: KINDS.join(",") },
      entries: { type: "string", default: "1000000" },
      dead: { type: "string", default: "100000" },
      "segment-ms": { type: "string", default: "2000" },
      "warmup-ms": { type: "string", default: "1000" },
      rounds: { type: "string", default: "5" },
      sections: { type: "string", default: "cells,cold,reap,contention" },
    },
  });
  const databases = values.databases.split(",").map((d) => d.trim());
  const unknown = databases.filter((d) => !(KINDS as readonly string[]).includes(d));
  if (unknown.length > 0 || databases.length === 0) throw new Error(`--databases takes a comma-separated list of ${KINDS.join(", ")}; got ${values.databases}`);
  const loads: number[] = [];
  const run: Run = {
    timing: { warmupMs: int(values["warmup-ms"], "--warmup-ms"), segmentMs: int(values["segment-ms"], "--segment-ms"), rounds: int(values.rounds, "--rounds") },
    sections: new Set(values.sections.split(",")),
    entries: int(values.entries, "--entries"),
    deadRows: int(values.dead, "--dead"),
    log: (s: string) => process.stderr.write(`${s}\n`),
    sampleLoad: () => loads.push(Math.round(os.loadavg()[0] * 100) / 100),
  };
  const { timing, entries, deadRows } = run;

  const targets: BenchTarget[] = [];
  process.once("SIGINT", () => {
    run.log(`interrupted: dropping ${targets.map((t) => t.name).join(", ")}`);
    void Promise.allSettled(targets.map((t) => t.drop())).finally(() => process.exit(130));
  });
  const out: Record<string, unknown> = { startedAt: new Date().toISOString() };
  try {
    const mariadb = databases.includes("mariadb") ? await BenchDatabase.create() : undefined;
    if (mariadb) targets.push(mariadb);
    const postgres = databases.includes("postgres") ? await PostgresBenchDatabase.create() : undefined;
    if (postgres) targets.push(postgres);

    const servers = new Map<BenchTarget, { version: string; settings: Record<string, string | number> }>();
    for (const t of targets) servers.set(t, { version: await t.serverVersion(), settings: await t.serverSettings() });
    const machine = machineInfo(mariadb ? servers.get(mariadb)!.version : "not run");
    out.machine = { ...machine, ...(mariadb ? servers.get(mariadb)!.settings : {}) };
    out.config = { databases, database: mariadb?.name, poolSize: 10, lifetimeMinutes: 5, timing, entries, deadRows, goals: GOALS, cases: CASE_NOTES };
    const serverLine = (t: BenchTarget) => `${servers.get(t)!.version}, ${Object.entries(servers.get(t)!.settings).map(([k, v]) => `${k} ${v}`).join(", ")}`;
    console.log(
      renderTable("Machine", ["item", "value"], [
        ["cores", machine.cores],
        ["CPU", machine.cpuModel],
        ["memory GiB", machine.memoryGiB],
        ["OS", machine.platform],
        ["Node", machine.node],
        ...targets.map((t) => [SERVER_NAMES[t.kind], serverLine(t)]),
        ["load average (1 min) at start", machine.loadAverageAtStart],
        ["timing per cell", `warm-up ${timing.warmupMs} ms per side (order alternates by cell), then ${timing.rounds} × ${timing.segmentMs} ms per side, alternating`],
      ]),
    );
    if (machine.loadAverageAtStart > machine.cores / 2) {
      console.log(`WARNING: load average ${machine.loadAverageAtStart} on ${machine.cores} cores: other work is running; ratios will be noisy (see the per-round spread)`);
    }
    if (mariadb) Object.assign(out, await benchMariadb(mariadb, run));
    if (postgres) {
      out.postgres = { server: servers.get(postgres), database: postgres.name, ...(await benchPostgres(postgres, run)) };
      if (["cold", "reap", "contention"].some((s) => run.sections.has(s))) console.log("\nPostgreSQL: the cold, reaping and contention sections run on MariaDB only");
    }
  } finally {
    for (const t of targets) await t.drop();
  }
  run.sampleLoad();
  out.loadAverages = loads;
  const wallSeconds = Math.round((performance.now() - started) / 100) / 10;
  out.wallSeconds = wallSeconds;
  const file = path.join(__dirname, "results", "bench.json");
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nload average (1 min) during the run: ${loads.join(", ")}`);
  console.log(`wall time ${wallSeconds} s; results in ${path.relative(process.cwd(), file)}`);
}

/** The statement check: prints whether the library still sends what the baseline of `db` sends. */
async function statementCheck(db: BenchTarget, fixture: HandOutFixture): Promise<BaselineCheck> {
  const check = await checkBaselineStatements(db, BENCH_HOST, readableUserId(0), fixture.encryptionKeys);
  const baselineFile = db.kind === "postgres" ? "bench/lib/baseline-pg.ts" : "bench/lib/baseline-mysql2.ts";
  console.log(
    check.inSync
      ? `\n${SERVER_NAMES[db.kind]} statement check: a first hand-out sends SELECT + the baseline's reserve UPDATE; a repeated one only the SELECT; a releasable one SELECT + the baseline's guarded INSERT … SELECT of a hold, its release the baseline's DELETE`
      : `\nWARNING (${SERVER_NAMES[db.kind]}): the library's statements changed; first hand-out:\n${lines(check.firstHandOut)}\nsecond:\n${lines(check.secondHandOut)}\nreleasable:\n${lines(check.releasableHandOut)}\nrelease:\n${lines(check.release)}\nupdate ${baselineFile}`,
  );
  return check;
}

/**
 * The cells every server runs: write-free (16 and 1 callers), one hot user, releasable, and the A/A
 * noise floor (the baseline against itself). Every user
 * is handed out once first (and so pinned): the steady state of the write-free cells.
 */
async function steadyStateCells(fixture: HandOutFixture, check: BaselineCheck, cell: (spec: CellSpec) => Promise<void>, log: (s: string) => void): Promise<void> {
  log("hand-out cells…");
  const users = fixture.users;
  await runClosedLoop(16, fixture.libraryOp(roundRobin([...users, HOT_USER])), (_ms, ops) => ops >= users.length + 1);
  await cell({ name: "write-free", kind: "write-free", users: "1000", concurrency: 16, library: fixture.libraryOp(roundRobin(users)), baseline: fixture.baselineOp(roundRobin(users)) });
  const uncached = await fixture.serviceWithoutDecryptCache();
  await cell({ name: "write-free, without the decrypted-token cache", kind: "write-free-uncached", users: "1000", concurrency: 16, library: fixture.libraryOp(roundRobin(users), uncached), baseline: fixture.baselineOp(roundRobin(users)), service: uncached });
  await cell({ name: "write-free", kind: "write-free", users: "1000", concurrency: 1, library: fixture.libraryOp(roundRobin(users)), baseline: fixture.baselineOp(roundRobin(users)) });
  await cell({ name: "write-free, one hot user", kind: "write-free", users: "1", concurrency: 16, library: fixture.libraryOp(() => HOT_USER), baseline: fixture.baselineOp(() => HOT_USER) });
  await cell({ name: "releasable (hand-out + release)", kind: "releasable", users: "1000", concurrency: 16, library: fixture.libraryReleasableOp(roundRobin(users)), baseline: fixture.baselineReleasableOp(roundRobin(users), "guarded") });
  await cell({ name: "releasable, vs an unguarded hold INSERT", kind: "releasable-unguarded", users: "1000", concurrency: 16, library: fixture.libraryReleasableOp(roundRobin(users)), baseline: fixture.baselineReleasableOp(roundRobin(users), "unguarded") });
  const reading = readingLikeLibrary(fixture, check);
  if (reading) {
    await cell({ name: "releasable, vs a baseline reading what the library reads", kind: "releasable-library-read", users: "1000", concurrency: 16, library: fixture.libraryReleasableOp(roundRobin(users)), baseline: fixture.baselineReleasableOp(roundRobin(users), "guarded", reading) });
  } else log("  statement check failed: the cell with the library's SELECT is left out");
  await cell({ name: "noise floor: the baseline against itself (A/A)", kind: "noise", users: "1000", concurrency: 16, library: fixture.baselineOp(roundRobin(users)), baseline: fixture.baselineOp(roundRobin(users)) });
}

/** The baseline reading with the library's own SELECT, as the statement check captured it; undefined when the check failed (it may not be one then). */
function readingLikeLibrary(fixture: HandOutFixture, check: BaselineCheck): HandOutBaseline | undefined {
  return check.inSync ? fixture.baseline.readingWith(check.secondHandOut[0]) : undefined;
}

/**
 * The must-write cell against the baseline reading what the library reads: first hand-outs of the
 * bulk users from … from+WARM_USERS-1, seeded here (no other cell uses them).
 */
async function mustWriteLibraryReadCell(
  fixture: HandOutFixture,
  check: BaselineCheck,
  from: number,
  cell: (spec: CellSpec) => Promise<void>,
  log: (s: string) => void,
  afterSeed: () => Promise<void> = async () => undefined,
): Promise<void> {
  const reading = readingLikeLibrary(fixture, check);
  if (!reading) return log("  statement check failed: the must-write cell with the library's SELECT is left out");
  log(`seeding ${WARM_USERS} more readable rows…`);
  await fixture.seedReadable(from, from + WARM_USERS);
  await afterSeed();
  const even = shuffledRange(0, WARM_USERS / 2, 4).map((k) => from + 2 * k);
  const odd = shuffledRange(0, WARM_USERS / 2, 5).map((k) => from + 2 * k + 1);
  await cell({ name: "must-write, vs a baseline reading what the library reads", kind: "must-write-library-read", users: `${WARM_USERS / 2000}k`, concurrency: 16, library: fixture.libraryOp(eachOnce(even, bulkUserId)), baseline: fixture.baselineOp(eachOnce(odd, bulkUserId), reading) });
}

/** The must-write cell: the first hand-out of each of the bulk users 0 … WARM_USERS-1 (seeded), rows warmed first. */
async function mustWriteCell(fixture: HandOutFixture, cell: (spec: CellSpec) => Promise<void>): Promise<void> {
  await fixture.pool.query("SELECT COUNT(*), SUM(LENGTH(accessToken)) FROM scm_token_entry WHERE userId >= ? AND userId < ?", [bulkUserId(0), bulkUserId(WARM_USERS)]);
  const even = shuffledRange(0, WARM_USERS / 2, 1).map((k) => 2 * k);
  const odd = shuffledRange(0, WARM_USERS / 2, 2).map((k) => 2 * k + 1);
  await cell({ name: "must-write (first hand-out of each user)", kind: "must-write", users: `${WARM_USERS / 2000}k`, concurrency: 16, library: fixture.libraryOp(eachOnce(even, bulkUserId)), baseline: fixture.baselineOp(eachOnce(odd, bulkUserId)) });
}

/** Seeds bulk readable rows 0 … to-1; returns the table's rows and the seconds it took. */
async function seed(fixture: HandOutFixture, to: number, log: (s: string) => void): Promise<{ rows: number; seedSeconds: number }> {
  log(`seeding ${to} readable rows…`);
  const t0 = performance.now();
  await fixture.seedReadable(0, to);
  const seedSeconds = Math.round((performance.now() - t0) / 100) / 10;
  const rows = await countRows(fixture.pool);
  log(`  ${rows} rows in ${seedSeconds} s`);
  return { rows, seedSeconds };
}

function cellRunner(fixture: HandOutFixture, run: Run, cells: CellResult[]): (spec: CellSpec) => Promise<void> {
  let cellIndex = 0;
  return async (spec) => {
    run.sampleLoad();
    cells.push(await runCell(fixture, spec, run.timing, cellIndex++ % 2 === 1, run.log));
  };
}

/** MariaDB: every section. The results go to the top level of bench.json (the layout readme-tables.ts reads). */
async function benchMariadb(db: BenchDatabase, run: Run): Promise<Record<string, unknown>> {
  const { sections, entries, deadRows, timing, log } = run;
  const out: Record<string, unknown> = {};
  const fixture = await HandOutFixture.create(db);
  const cells: CellResult[] = [];
  const cell = cellRunner(fixture, run, cells);
  try {
    log("MariaDB:");
    const check = await statementCheck(db, fixture);
    out.baselineCheck = check;
    if (sections.has("cells")) await steadyStateCells(fixture, check, cell, log);
    if (sections.has("cold") || sections.has("cells")) {
      const seeded = await seed(fixture, entries, log);
      out.seed = seeded;
      if (sections.has("cells")) await mustWriteCell(fixture, cell);
      if (sections.has("cold")) {
        const cold = shuffledRange(WARM_USERS, entries, 3);
        const half = Math.floor(cold.length / 2);
        await cell({
          name: `cold: random over ${Math.round(seeded.rows / 1000)}k entries`,
          kind: "cold",
          users: `${Math.round((entries - WARM_USERS) / 1000)}k`,
          concurrency: 16,
          library: fixture.libraryOp(eachOnce(cold.subarray(0, half), bulkUserId)),
          baseline: fixture.baselineOp(eachOnce(cold.subarray(half), bulkUserId)),
        });
        const settings = await db.serverSettings();
        out.coldNote = `table ${seeded.rows} rows vs innodb_buffer_pool_size ${settings.innodbBufferPoolMiB} MiB (global on a shared server: left as is)`;
      }
      // After the cold cell, which draws from the whole seeded table: these rows come on top of it.
      if (sections.has("cells")) await mustWriteLibraryReadCell(fixture, check, entries, cell, log);
    }
    out.cells = cells;
    if (cells.length > 0) {
      console.log(cellsTable(cells, "mariadb"));
      console.log(Object.entries(CASE_NOTES).map(([k, v]) => `  ${k}: ${v}`).join("\n"));
    }
    if (sections.has("reap")) {
      log("reaping…");
      run.sampleLoad();
      const runs: ReapingRun[] = [];
      runs.push(await runReaping(fixture, "write-free", fixture.libraryOp(roundRobin(fixture.users)), { from: 0, rows: deadRows }, 16, timing.segmentMs, log));
      // Must-write hand-outs: first hand-outs of cold-range users the cells did not touch (reverse order).
      const fresh = Int32Array.from({ length: Math.max(0, entries - WARM_USERS) }, (_, i) => entries - 1 - i);
      runs.push(await runReaping(fixture, "must-write", fixture.libraryOp(eachOnce(fresh, bulkUserId)), { from: deadRows, rows: deadRows }, 16, timing.segmentMs, log));
      out.reaping = runs;
      console.log(reapingTable(runs));
    }
  } finally {
    await fixture.close();
  }
  if (sections.has("contention")) {
    log("contention…");
    run.sampleLoad();
    const contention: ContentionResult = await runContention(db, { processes: 8, callersPerProcess: 64, scmLatencyMs: 50 }, log);
    out.contention = contention;
    console.log(contentionTable(contention));
  }
  return out;
}

/** PostgreSQL: the hand-out cells (section "cells"); the must-write cell's users are seeded, no cold rows. */
async function benchPostgres(db: PostgresBenchDatabase, run: Run): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const fixture = await HandOutFixture.create(db);
  const cells: CellResult[] = [];
  const cell = cellRunner(fixture, run, cells);
  try {
    run.log("PostgreSQL:");
    const check = await statementCheck(db, fixture);
    out.baselineCheck = check;
    if (run.sections.has("cells")) {
      await steadyStateCells(fixture, check, cell, run.log);
      out.seed = await seed(fixture, WARM_USERS, run.log);
      await settlePostgres(fixture);
      await mustWriteCell(fixture, cell);
      await mustWriteLibraryReadCell(fixture, check, WARM_USERS, cell, run.log, () => settlePostgres(fixture));
    }
  } finally {
    await fixture.close();
  }
  out.cells = cells;
  if (cells.length > 0) console.log(cellsTable(cells, "postgres"));
  return out;
}

/**
 * A freshly bulk-loaded PostgreSQL table: vacuum it now (hint bits, visibility map, statistics) and
 * flush it, so that autovacuum and a checkpoint do not land in the middle of one side's segment.
 */
async function settlePostgres(fixture: HandOutFixture): Promise<void> {
  await fixture.pool.query("VACUUM ANALYZE scm_token_entry");
  await fixture.pool.query("CHECKPOINT");
}

/** Statements, one per indented line. */
function lines(statements: string[]): string {
  return statements.map((q) => `  ${q}`).join("\n");
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
