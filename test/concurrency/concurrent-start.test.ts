import { fork, type ChildProcess } from "node:child_process";
import { join, resolve } from "node:path";
import { expect } from "chai";
import { scmTokenServiceMigrations } from "../../migrations";
import { RUN_DATABASE, adminQuery, createDatabaseSql, dropDatabaseSql, queryDatabase, serverKinds, serverUrl } from "../support/databases";
import type { FromStarter } from "./start-worker";
import { TS_CHILD_EXEC_ARGV } from "../support/child-process";

/**
 * Replicas of a deployment start at the same moment against a database nobody migrated yet. Each
 * runs createTokenService in its own process (start-worker.ts), released together after all have
 * loaded the library; every one must start, the schema must be migrated exactly once, and nothing
 * may reach the processes' stdout/stderr.
 */
const WORKER = join(__dirname, "start-worker.ts");
const REPO_ROOT = resolve(__dirname, "..", "..");
const PROCESSES = 6;

interface Starter {
  child: ChildProcess;
  messages: FromStarter[];
  output: string;
  exited: Promise<void>;
}

function forkStarter(databaseUrl: string): Starter {
  const child = fork(WORKER, [], {
    cwd: REPO_ROOT,
    execArgv: TS_CHILD_EXEC_ARGV,
    env: { ...process.env, START_DATABASE_URL: databaseUrl },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  const starter: Starter = { child, messages: [], output: "", exited: new Promise((r) => child.once("exit", () => r())) };
  child.stdout!.on("data", (chunk: Buffer) => (starter.output += chunk.toString("utf8")));
  child.stderr!.on("data", (chunk: Buffer) => (starter.output += chunk.toString("utf8")));
  child.on("message", (m: FromStarter) => starter.messages.push(m));
  return starter;
}

function message<T extends FromStarter["type"]>(starter: Starter, type: T, timeoutMs: number): Promise<Extract<FromStarter, { type: T }>> {
  return new Promise((resolveMessage, reject) => {
    const found = () => starter.messages.find((m): m is Extract<FromStarter, { type: T }> => m.type === type);
    const timer = setTimeout(() => {
      starter.child.off("message", check);
      starter.child.off("exit", check);
      reject(new Error(`no "${type}" from pid ${starter.child.pid} within ${timeoutMs} ms; output: ${starter.output}`));
    }, timeoutMs);
    const check = () => {
      const m = found();
      if (m) {
        clearTimeout(timer);
        starter.child.off("message", check);
        starter.child.off("exit", check);
        resolveMessage(m);
      } else if (starter.child.exitCode !== null) {
        clearTimeout(timer);
        reject(new Error(`pid ${starter.child.pid} exited (${starter.child.exitCode}) before "${type}"; output: ${starter.output}`));
      }
    };
    starter.child.on("message", check);
    starter.child.on("exit", check);
    check();
  });
}

for (const server of serverKinds()) describe(`concurrent start on ${server}`, () => {
  const database = `${RUN_DATABASE}_start`;
  const starters: Starter[] = [];

  before(async () => {
    await adminQuery(server, [dropDatabaseSql(server, database), createDatabaseSql(server, database)]);
  });

  after(async () => {
    for (const s of starters) if (s.child.exitCode === null) s.child.kill("SIGKILL");
    await Promise.all(starters.map((s) => s.exited));
    await adminQuery(server, [dropDatabaseSql(server, database)]);
  });

  it(`${PROCESSES} processes running createTokenService at once on an empty database all start; the schema is migrated once; nothing is printed`, async function () {
    this.timeout(300_000);
    for (let i = 0; i < PROCESSES; i++) starters.push(forkStarter(`${serverUrl(server)}/${database}`));
    await Promise.all(starters.map((s) => message(s, "ready", 150_000)));
    const released = Date.now();
    for (const s of starters) s.child.send({ type: "go" });
    const done = await Promise.all(starters.map((s) => message(s, "done", 60_000)));
    const wallMs = Date.now() - released;
    for (const s of starters) s.child.disconnect();
    await Promise.all(starters.map((s) => s.exited));

    for (const s of starters) expect(s.output, `stdout/stderr of pid ${s.child.pid}`).to.equal("");
    const failures = done.filter((d) => !d.ok);
    expect(failures, JSON.stringify(failures)).to.deep.equal([]);

    // Exactly one process ran the migrations (and said so through its logger); the others found nothing pending.
    const migratedBy = starters.filter((s) => s.messages.some((m) => m.type === "log" && m.message === "scm-token-service migrated the database"));
    expect(migratedBy).to.have.length(1);
    const rows = await queryDatabase<{ name: string }>(server, database, "SELECT name FROM migrations ORDER BY id");
    expect(rows.map((r) => r.name)).to.deep.equal(scmTokenServiceMigrations.map((m) => m.name));
    const tables = await queryDatabase<{ t: string }>(
      server,
      database,
      server === "postgres"
        ? "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name"
        : "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name",
    );
    expect(tables.map((r) => r.t)).to.include.members(["scm_token_entry", "scm_token_hold", "scm_secret"]);
    console.log(`      (${PROCESSES} processes started in ${wallMs} ms wall time; slowest ${Math.max(...done.map((d) => d.ms))} ms)`);
  });
});
