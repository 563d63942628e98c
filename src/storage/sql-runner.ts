import type { Pool as MysqlPool, PoolConnection, ResultSetHeader } from "mysql2";
import type { DataSource, QueryRunner } from "typeorm";
import { ConfigurationError, StorageError } from "../errors";
import type { Logger } from "../logger";
import { postgresPoolOf, runPostgres } from "./postgres-dialect";

/**
 * Driver codes of failures that may simply be retried: the statement did nothing (lock-wait timeout,
 * deadlock, refused connection) or its outcome is unknown (connection lost mid-statement, statement
 * deadline). The library's writes are conditional (compare-and-set), so retrying an unknown outcome
 * is safe; callers that must know re-read the row.
 */
const TRANSIENT = new Set([
  "ER_LOCK_WAIT_TIMEOUT",
  "ER_LOCK_DEADLOCK",
  "ER_CONNECTION_KILLED",
  "ER_QUERY_INTERRUPTED",
  "ER_SERVER_SHUTDOWN",
  "ER_CON_COUNT_ERROR",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR",
  "STATEMENT_TIMEOUT",
  "ECONNRESET",
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "EPIPE",
  "ETIMEDOUT",
  "SQLITE_BUSY",
]);

/** Default deadline of one statement, connection wait included (see TokenServiceOptions.statementTimeoutMs). */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000;

/** statementTimeoutMs, or the default when undefined; anything else than milliseconds > 0 (a timer's range) is a ConfigurationError. */
export function checkStatementTimeoutMs(value: number | undefined): number {
  const timeoutMs = value ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > 2_147_483_647) {
    throw new ConfigurationError(`statementTimeoutMs must be a number of milliseconds > 0 (e.g. 10000), got ${String(timeoutMs)}`, "statementTimeoutMs");
  }
  return timeoutMs;
}

/**
 * PostgreSQL's own `statement_timeout` for a client deadline of `clientMs`: a second longer, so the
 * server never cancels a statement the client still waits for (the client's clock starts first and
 * also counts the wait for a connection), yet stops one the client gave up on — a connection the
 * runner destroys at its deadline does not stop the statement running on the server.
 */
export function serverStatementTimeoutMs(clientMs: number): number {
  return Math.min(Math.ceil(clientMs) + 1000, 2_147_483_647);
}

export interface SqlRunnerOptions {
  /** On MySQL/MariaDB, send statements on the driver's mysql2 pool (see mysqlPoolOf). */
  direct?: boolean;
  /**
   * Every statement ends within this many ms (waiting for a pooled connection included) or fails
   * with a transient StorageError, driverCode "STATEMENT_TIMEOUT". A database that accepts the
   * connection but never answers (a network partition, a hung proxy) would otherwise hang the
   * caller until the operating system gives up on the socket, which can take many minutes.
   */
  statementTimeoutMs?: number;
  /** Told once per pool when PostgreSQL's named prepared statements are switched off (see runPostgres). */
  logger?: Logger;
}

/**
 * Runs the storage layer's SQL and turns driver failures into StorageError. Affected-row counts come
 * from TypeORM's structured result (`queryRunner.query(sql, params, true).affected`), which means
 * matched rows on MySQL (mysql2 sets CLIENT_FOUND_ROWS) as on SQLite.
 */
export class SqlRunner {
  private readonly timeoutMs: number;
  // A private field, not a property: a spread or util.inspect of the service (and everything that holds
  // a runner) must not reach the DataSource, whose options hold the database password.
  readonly #dataSource: DataSource;

  constructor(
    dataSource: DataSource,
    private readonly options: SqlRunnerOptions = {},
  ) {
    this.#dataSource = dataSource;
    this.timeoutMs = checkStatementTimeoutMs(options.statementTimeoutMs);
  }

  private mysqlPool(): MysqlPool | undefined {
    return this.options.direct ? mysqlPoolOf(this.#dataSource) : undefined;
  }

  /** Rows of a SELECT (or of a statement with RETURNING); a deadlock victim is sent again (see resendDeadlockVictim). */
  rows(operation: string, sql: string, params: unknown[]): Promise<Record<string, unknown>[]> {
    return resendDeadlockVictim(() => this.rowsOnce(operation, sql, params));
  }

  /** Rows matched by an UPDATE or DELETE, rows inserted by an INSERT; a deadlock victim is sent again. */
  affected(operation: string, sql: string, params: unknown[]): Promise<number> {
    return resendDeadlockVictim(() => this.affectedOnce(operation, sql, params));
  }

  // rowsOnce() and affectedOnce() chain with then() rather than being async functions: two statements
  // run on every hand-out, and each async layer costs a promise and a resumption.

  private rowsOnce(operation: string, sql: string, params: unknown[]): Promise<Record<string, unknown>[]> {
    // PostgreSQL: placeholders, quoting, deadline and errors in postgres-dialect.ts.
    const postgres = postgresPoolOf(this.#dataSource);
    if (postgres) return runPostgres(postgres, operation, sql, params, this.timeoutMs, this.options.logger).then((result) => result.rows);
    const pool = this.mysqlPool();
    const query = pool ? poolQuery(pool, sql, params, this.timeoutMs) : withDeadline(this.#dataSource.query(sql, params), this.timeoutMs);
    return query.then(
      (rows) => rows as Record<string, unknown>[],
      (e: unknown) => Promise.reject(toStorageError(operation, e)),
    );
  }

  private affectedOnce(operation: string, sql: string, params: unknown[]): Promise<number> {
    const postgres = postgresPoolOf(this.#dataSource);
    if (postgres) return runPostgres(postgres, operation, sql, params, this.timeoutMs, this.options.logger).then((result) => result.affected);
    const pool = this.mysqlPool();
    if (!pool) return this.affectedOnQueryRunner(operation, sql, params);
    return poolQuery(pool, sql, params, this.timeoutMs).then(
      (result) => (result as ResultSetHeader).affectedRows,
      (e: unknown) => Promise.reject(toStorageError(operation, e)),
    );
  }

  /** TypeORM's path (sql.js, replication), whose structured result carries the affected-row count. */
  private async affectedOnQueryRunner(operation: string, sql: string, params: unknown[]): Promise<number> {
    const runner: QueryRunner = this.#dataSource.createQueryRunner();
    const query = runner.query(sql, params, true);
    // The connection goes back when the statement really ends, also after a missed deadline.
    const released = query.then(() => undefined, () => undefined).then(() => runner.release()).catch(() => undefined);
    try {
      const result = await withDeadline(query, this.timeoutMs);
      // sql.js saves a file database when the runner is released: a write is done only after that.
      await released;
      return result.affected ?? 0;
    } catch (e) {
      throw toStorageError(operation, e);
    }
  }
}

/** A statement chosen as a deadlock's victim: MySQL/MariaDB's ER_LOCK_DEADLOCK, PostgreSQL's deadlock_detected. */
const DEADLOCK_VICTIM = new Set(["ER_LOCK_DEADLOCK", "40P01"]);
/** How often one statement is sent in all when it keeps losing deadlocks. */
const DEADLOCK_ATTEMPTS = 3;

/**
 * Sends a statement again, at once, when the server rolled it back as a deadlock's victim, up to
 * DEADLOCK_ATTEMPTS in all. Safe because every statement of the library runs on its own (autocommit,
 * no transaction spans two statements): a victim was rolled back whole, so nothing of it was applied,
 * and the other side of the deadlock holds its locks only until its own statement ends. Deadlocks
 * between single-row statements and a reaper's batch DELETE are expected on InnoDB (next-key locks);
 * surfacing them would fail a hand-out or a take for nothing. Other transient errors are the caller's:
 * a lock-wait timeout already waited its full time, and a lost connection's outcome is unknown.
 */
function resendDeadlockVictim<T>(send: () => Promise<T>, attemptsLeft = DEADLOCK_ATTEMPTS - 1): Promise<T> {
  return send().catch((e: unknown) => {
    if (attemptsLeft > 0 && e instanceof StorageError && e.driverCode !== undefined && DEADLOCK_VICTIM.has(e.driverCode)) return resendDeadlockVictim(send, attemptsLeft - 1);
    throw e;
  });
}

/**
 * On MySQL/MariaDB, the driver's own mysql2 pool. TypeORM's QueryRunner.query() costs, per
 * statement, a require() and a new PromisePoolConnection (mysql2's connection.promise()), a stack
 * capture (mysql2's promise API, trace on by default) and subscriber broadcasts the library does not
 * use: ~35 µs of CPU per statement, two statements per hand-out (see bench/). sql.js and replication
 * (a poolCluster, no pool) keep TypeORM's path.
 */
function mysqlPoolOf(dataSource: DataSource): MysqlPool | undefined {
  const type = dataSource.options.type;
  if (type !== "mysql" && type !== "mariadb") return undefined;
  return (dataSource.driver as unknown as { pool?: MysqlPool }).pool;
}

/** The driver-shaped error of a missed statement deadline (turned into a StorageError by toStorageError). */
function statementTimeout(timeoutMs: number, waitingFor: "a connection" | "an answer"): Error {
  const error = new Error(`no answer from the database within ${timeoutMs} ms (waited for ${waitingFor}); a write may or may not have been applied`);
  (error as Error & { code: string }).code = "STATEMENT_TIMEOUT";
  return error;
}

/**
 * One statement on the mysql2 pool, callback API (no promise wrapper per call), ending within
 * `timeoutMs`. Not pool.query(): after mysql2's own per-query `timeout` the connection goes back to
 * the pool only when the late answer arrives — from a silent server, never — and the next statement
 * queues behind it without a deadline. Here a statement that misses its deadline destroys its
 * connection (the pool opens a new one), and a connection that arrives too late is given back.
 */
function poolQuery(pool: MysqlPool, sql: string, params: unknown[], timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let connection: PoolConnection | undefined;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      connection?.destroy();
      reject(statementTimeout(timeoutMs, connection ? "an answer" : "a connection"));
    }, timeoutMs);
    pool.getConnection((connectError, acquired) => {
      if (settled) {
        acquired?.release();
        return;
      }
      if (connectError) {
        settled = true;
        clearTimeout(timer);
        reject(connectError);
        return;
      }
      connection = acquired;
      acquired.query(sql, params, (error, result) => {
        acquired.release();
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(result);
      });
    });
  });
}

/** TypeORM's path (sql.js, replication): the caller gets its answer in time; the statement ends when it ends. */
function withDeadline<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(statementTimeout(timeoutMs, "an answer")), timeoutMs);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Words after which a quoted name in a driver message is a schema name, not a value. */
const NAME_BEFORE_QUOTE = /\b(?:key|column|table|database|field|index|constraint|function|procedure|user|variable)\s*$/i;

/**
 * Driver messages quote values ("Duplicate entry 'user-1-…' for key 'PRIMARY'", "Incorrect string
 * value: '…'"): keep quoted schema names, replace every other quoted literal with '?', and blank out
 * anything long and id- or token-like that is left.
 */
export function redactDriverMessage(message: string): string {
  const firstLine = message.split("\n")[0] ?? "";
  const unquoted = firstLine.replace(/'((?:[^'\\]|\\.)*)'/g, (whole, _inner: string, offset: number) => (NAME_BEFORE_QUOTE.test(firstLine.slice(0, offset)) ? whole : "'?'"));
  return unquoted.replace(/[A-Za-z0-9_+/=.-]{24,}/g, "[redacted]").slice(0, 200);
}

/**
 * A StorageError for a driver failure. The driver's error is not kept as the cause: mysql2's carries
 * the statement with its values inlined (`sql`) and TypeORM's the `query` and `parameters` — user ids,
 * ciphertexts, the ids of take-once secrets (bearer capabilities). The cause is a summary instead:
 * driver code, errno, SQL state and the redacted message.
 */
export function toStorageError(operation: string, error: unknown): StorageError {
  const driver = (error as { driverError?: unknown } | undefined)?.driverError ?? error;
  const field = (name: string): unknown => (typeof driver === "object" && driver !== null ? (driver as Record<string, unknown>)[name] : undefined);
  const code = typeof field("code") === "string" ? (field("code") as string) : undefined;
  const errno = typeof field("errno") === "number" ? (field("errno") as number) : undefined;
  const sqlState = typeof field("sqlState") === "string" ? (field("sqlState") as string) : undefined;
  const fatal = field("fatal") === true;
  const message = typeof field("sqlMessage") === "string" ? (field("sqlMessage") as string) : driver instanceof Error ? driver.message : String(driver);
  const detail = redactDriverMessage(message);
  return new StorageError(operation, code, fatal || (code !== undefined && TRANSIENT.has(code)), detail, { errno, sqlState });
}
