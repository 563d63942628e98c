import type { DataSource, QueryRunner } from "typeorm";
import { StorageError } from "../errors";

/** The name of the database lock held while the library's migrations run. */
export const MIGRATION_LOCK_NAME = "scm_token_service_migrations";

/** Default bound on the wait for another process's migrations: long enough for a slow ALTER, short enough to fail a stuck deploy. */
export const DEFAULT_MIGRATION_LOCK_TIMEOUT_MS = 120_000;

/**
 * Another process held the migration lock for longer than the wait allowed: it is most likely still
 * migrating this database (or hung while doing so). Nothing was changed by this process.
 */
export class MigrationLockTimeoutError extends StorageError {
  constructor(
    readonly waitedMs: number,
    whoHoldsIt = `SELECT IS_USED_LOCK('${MIGRATION_LOCK_NAME}')`,
  ) {
    super(
      "take the migration lock",
      "MIGRATION_LOCK_TIMEOUT",
      true,
      `another process held the lock "${MIGRATION_LOCK_NAME}" for more than ${waitedMs} ms, most likely while migrating this database; ` +
        `retry (the migrations are then done), or find the session holding it: ${whoHoldsIt}`,
    );
  }
}

/**
 * A database-wide mutual exclusion for the migrations, held by ONE connection (the query runner) for
 * the whole run: named locks belong to a session, so the migrations run on that same connection
 * rather than on pool connections that could be handed to anyone in between.
 */
interface LockDialect {
  /** Resolves true when the lock was taken within `timeoutMs`, false when the wait timed out. */
  acquire(runner: QueryRunner, timeoutMs: number): Promise<boolean>;
  release(runner: QueryRunner): Promise<void>;
  /** The query that finds the session holding the lock, for the timeout's message. */
  whoHoldsIt: string;
}

const mysqlNamedLock: LockDialect = {
  async acquire(runner, timeoutMs) {
    // GET_LOCK: 1 = taken, 0 = timed out, NULL = error (e.g. killed). The timeout is in seconds.
    const rows = (await runner.query("SELECT GET_LOCK(?, ?) AS taken", [MIGRATION_LOCK_NAME, Math.max(0, Math.ceil(timeoutMs / 1000))])) as { taken: unknown }[];
    const taken = rows[0]?.taken;
    if (taken === null || taken === undefined) throw new StorageError("take the migration lock", "GET_LOCK_NULL", true, "GET_LOCK returned NULL (the session was killed or the server ran out of memory)");
    return Number(taken) === 1;
  },
  async release(runner) {
    await runner.query("SELECT RELEASE_LOCK(?)", [MIGRATION_LOCK_NAME]);
  },
  whoHoldsIt: `SELECT IS_USED_LOCK('${MIGRATION_LOCK_NAME}')`,
};

/**
 * PostgreSQL: a session-level advisory lock on a key derived from the name. The wait is bounded by
 * `lock_timeout` (a wait that runs out fails with lock_not_available, 55P03), which is reset right
 * after so that it does not apply to the migrations. lock_timeout 0 would mean "wait forever", so a
 * zero wait is a single try (pg_try_advisory_lock).
 *
 * The lock's connection also runs without `statement_timeout` until release: the library's own
 * connections have one just above the hand-out statements' deadline (dataSourceOptionsFromUrl),
 * meant for those statements, not for the lock wait or an ALTER of a large table. RESET then
 * restores the connection's own value.
 */
const postgresAdvisoryLock: LockDialect = {
  async acquire(runner, timeoutMs) {
    await runner.query("SET statement_timeout = 0");
    let taken = false;
    try {
      taken = await takeAdvisoryLock(runner, timeoutMs);
      return taken;
    } finally {
      if (!taken) await runner.query("RESET statement_timeout").catch(() => undefined);
    }
  },
  async release(runner) {
    await runner.query("SELECT pg_advisory_unlock(hashtext($1))", [MIGRATION_LOCK_NAME]);
    await runner.query("RESET statement_timeout");
  },
  whoHoldsIt: "SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory'",
};

async function takeAdvisoryLock(runner: QueryRunner, timeoutMs: number): Promise<boolean> {
  if (timeoutMs <= 0) {
    const rows = (await runner.query("SELECT pg_try_advisory_lock(hashtext($1)) AS taken", [MIGRATION_LOCK_NAME])) as { taken: unknown }[];
    return rows[0]?.taken === true;
  }
  await runner.query(`SET lock_timeout = '${Math.ceil(timeoutMs)}ms'`);
  try {
    await runner.query("SELECT pg_advisory_lock(hashtext($1))", [MIGRATION_LOCK_NAME]);
    return true;
  } catch (e) {
    if ((e as { code?: unknown }).code === "55P03") return false;
    throw e;
  } finally {
    await runner.query("RESET lock_timeout").catch(() => undefined);
  }
}

const DIALECTS: Partial<Record<DataSource["options"]["type"], LockDialect>> = {
  mysql: mysqlNamedLock,
  mariadb: mysqlNamedLock,
  postgres: postgresAdvisoryLock,
};

/**
 * Runs `work` on one dedicated connection while holding the migration lock, so replicas that start
 * together migrate the schema once: the first runs the migrations, the others wait and then find
 * nothing pending. The embedded database (sql.js) lives inside one process and needs no lock.
 *
 * `work` receives the query runner that holds the lock (undefined when no lock is needed): run the
 * migrations on it. The lock is released — and the connection returned — whatever happens; a process
 * that dies while holding it loses it with its connection.
 */
export async function withMigrationLock<T>(dataSource: DataSource, timeoutMs: number, work: (runner: QueryRunner | undefined) => Promise<T>): Promise<T> {
  const dialect = DIALECTS[dataSource.options.type];
  if (!dialect) return work(undefined);
  const runner = dataSource.createQueryRunner();
  try {
    await runner.connect();
    if (!(await dialect.acquire(runner, timeoutMs))) throw new MigrationLockTimeoutError(timeoutMs, dialect.whoHoldsIt);
    try {
      return await work(runner);
    } finally {
      await dialect.release(runner).catch(() => undefined); // a lost connection has released it anyway
    }
  } finally {
    await runner.release();
  }
}
