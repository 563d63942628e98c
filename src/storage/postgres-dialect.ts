import type { DataSource } from "typeorm";
import type { Logger } from "../logger";
import { StorageError } from "../errors";
import { postgresErrorCode, isTransientPostgresCode, redactPostgresMessage } from "./postgres-errors";
import { lostPreparedStatement, postgresStatement, statementName, type NamedStatementBudget } from "./postgres-statements";

export { toPostgresSql } from "./postgres-statements";

/**
 * How the library's SQL runs on PostgreSQL (the `pg` driver, DataSource type "postgres").
 *
 * The stores (token-store.ts, secret-store.ts, key-rotation-store.ts) write one dialect-neutral SQL
 * text: `?` placeholders, camelCase column names written bare, dates as `YYYY-MM-DD HH:MM:SS.mmm`
 * UTC strings, and every decisive write a single conditional UPDATE/DELETE whose affected-row count
 * says whether it won. This module makes each of those hold on PostgreSQL:
 *
 * - Placeholders: `?` becomes `$1`, `$2`, … (outside string literals and quoted names).
 * - Statements: sent as named prepared statements, parsed once per connection (postgres-statements.ts).
 * - Names: a bare mixed-case word (`userId`, `reservedUntilDate`) is double-quoted. PostgreSQL folds
 *   unquoted names to lower case, and TypeORM's migrations create the columns quoted (`"userId"`).
 *   SQL keywords in the stores are upper case and function names lower case, so neither is touched.
 * - Affected rows: `rowCount` of an UPDATE counts every row the WHERE matched, also when the new
 *   values equal the old ones — the same "matched rows" the stores get from mysql2 (CLIENT_FOUND_ROWS)
 *   and SQLite.
 * - The conditional reserve, lease and commit (compare-and-set on `version`): under READ COMMITTED, an
 *   UPDATE that waited for a concurrent writer of the same row re-evaluates its WHERE on the row that
 *   writer committed and updates nothing if it no longer matches. So exactly one of two racing
 *   compare-and-sets wins, as on InnoDB. The hold insert's `FOR SHARE` read (token-store.ts) waits and
 *   re-checks the same way.
 * - Dates: the columns are `timestamp(3) without time zone` holding UTC (the migrations' "datetime"
 *   on MySQL). Written as the stores' UTC strings, compared as timestamps, and read back as text
 *   (see TIMESTAMP_AS_TEXT) so neither the session's TimeZone nor the Node process's zone shifts them.
 * - Deadlines: each statement (waiting for a pooled connection included) ends within the runner's
 *   deadline; a statement that misses it destroys its connection, which the pool replaces.
 * - Errors: typed StorageErrors with PostgreSQL's SQLSTATE as driverCode and `transient` set for
 *   serialization failures, deadlocks, lock and statement timeouts, terminated sessions and lost
 *   connections (postgres-errors.ts).
 */

/** The few parts of pg's Pool and Client the library uses (pg stays an optional peer dependency). */
interface PgQueryConfig {
  text: string;
  name?: string;
  values: unknown[];
  types: { getTypeParser(oid: number, format?: string): (value: string) => unknown };
}
interface PgResult {
  rows: Record<string, unknown>[];
  rowCount: number | null;
}
interface PgClient {
  query(config: PgQueryConfig, callback: (error: Error | null, result: PgResult) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  removeListener(event: "error", listener: (error: Error) => void): void;
}
interface PgPool {
  connect(callback: (error: Error | undefined, client: PgClient | undefined, release: (destroy?: Error | boolean) => void) => void): void;
}

/** One statement's outcome: its rows, and how many rows it matched (UPDATE/DELETE/INSERT). */
export interface PostgresResult {
  rows: Record<string, unknown>[];
  affected: number;
}

/** PostgreSQL's OIDs for `timestamp` and `timestamptz`. */
const TIMESTAMP_OID = 1114;

/**
 * pg parses `timestamp without time zone` as the Node process's local time; the columns hold UTC.
 * Kept as pg's ISO text (`2026-01-02 03:04:05.678`), which fromSqlDate reads as UTC.
 */
function timestampAsText(pg: { types: PgQueryConfig["types"] }): PgQueryConfig["types"] {
  return {
    getTypeParser: (oid, format) => (oid === TIMESTAMP_OID ? (value: string) => value : pg.types.getTypeParser(oid, format)),
  };
}

/** The pg pool TypeORM opened and the pg module it loaded (whose type parsers the statements use). */
export interface PostgresPool extends NamedStatementBudget {
  pool: PgPool;
  types: PgQueryConfig["types"];
}

const pools = new WeakMap<object, PostgresPool>();

/**
 * On a PostgreSQL DataSource, the pg pool TypeORM opened (its master pool under replication), with
 * timestamps read as text. The pg module is the one TypeORM loaded (`driver.postgres`, also when the
 * application passed its own), so the library never require()s pg itself.
 */
export function postgresPoolOf(dataSource: DataSource): PostgresPool | undefined {
  if (dataSource.options.type !== "postgres") return undefined;
  const driver = dataSource.driver as unknown as { master?: PgPool; postgres?: { types: PgQueryConfig["types"] } };
  if (!driver.master || !driver.postgres) return undefined;
  let found = pools.get(driver.master);
  if (!found) {
    found = { pool: driver.master, types: timestampAsText(driver.postgres), namedStatements: true, names: new Set<string>() };
    pools.set(driver.master, found);
  }
  return found;
}

/** The driver-shaped error of a missed deadline, like the MySQL path's (driverCode STATEMENT_TIMEOUT). */
function statementTimeout(timeoutMs: number, waitingFor: "a connection" | "an answer"): Error {
  const error = new Error(`no answer from the database within ${timeoutMs} ms (waited for ${waitingFor}); a write may or may not have been applied`);
  (error as Error & { code: string }).code = "STATEMENT_TIMEOUT";
  return error;
}

/**
 * Runs one of the stores' statements on PostgreSQL within `timeoutMs`, a failure turned into a
 * StorageError for `operation` (without the statement's parameters).
 */
export function runPostgres(postgres: PostgresPool, operation: string, sql: string, params: unknown[], timeoutMs: number, logger?: Logger): Promise<PostgresResult> {
  const statement = postgresStatement(sql);
  return new Promise((resolve, reject) => {
    let settled = false;
    let release: ((destroy?: Error | boolean) => void) | undefined;
    let detach = () => undefined as void;
    const fail = (error: unknown) => reject(postgresStorageError(operation, error));
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      // The connection may be stuck behind a silent server: destroy it rather than queue behind it.
      release?.(true);
      detach();
      fail(statementTimeout(timeoutMs, release ? "an answer" : "a connection"));
    }, timeoutMs);
    const attempt = (name: string | undefined) =>
      postgres.pool.connect((connectError, client, done) => {
        if (settled) {
          done?.();
          return;
        }
        if (connectError || !client) {
          settled = true;
          clearTimeout(timer);
          done?.(connectError ?? true);
          fail(connectError ?? new Error("no connection from the pool"));
          return;
        }
        release = done;
        // A checked-out pg client emits 'error' when its socket dies (ECONNRESET, a terminated backend);
        // without a listener that is an uncaught exception. The query's callback gets the error as well.
        const ignore = () => undefined;
        client.on("error", ignore);
        detach = () => client.removeListener("error", ignore);
        client.query({ text: statement.text, name, values: params, types: postgres.types }, (error, result) => {
          if (settled) return;
          const lost = error && name !== undefined ? lostPreparedStatement(error) : undefined;
          if (lost) {
            // Refused at Parse or Bind: nothing ran, so once more unnamed, on a connection whose
            // prepared statements pg no longer has wrong ideas about (this one is closed).
            if (lost === "gone" && postgres.namedStatements) {
              postgres.namedStatements = false;
              // Said once per pool: the library keeps working, only slower (every statement parsed again).
              logger?.warn(
                { sqlState: (error as { code?: unknown }).code },
                "PostgreSQL lost the library's prepared statements (a pooler in transaction mode, or DISCARD/DEALLOCATE ALL on its connections); this pool sends its statements unnamed from now on",
              );
            }
            done(true);
            detach();
            release = undefined;
            attempt(undefined);
            return;
          }
          settled = true;
          clearTimeout(timer);
          // A connection-level failure must not go back to the pool; a statement error leaves it usable.
          // (Released first: the pool puts its own error listener on the client.)
          done(error && !isStatementError(error) ? error : undefined);
          detach();
          if (error) fail(error);
          else resolve({ rows: result.rows ?? [], affected: result.rowCount ?? 0 });
        });
      });
    attempt(statementName(postgres, statement));
  });
}

/** An error the server reported for the statement (it has a SQLSTATE outside the connection classes). */
function isStatementError(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith("08") && !code.startsWith("57P");
}

/**
 * A StorageError for a pg failure. As on MySQL, the driver's error is not kept: pg's carries `detail`
 * ("Key (id)=(…) already exists"), `where` and the statement's position, which can hold values.
 */
export function postgresStorageError(operation: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const code = postgresErrorCode(error);
  const sqlState = /^[0-9A-Z]{5}$/.test(code ?? "") ? code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return new StorageError(operation, code, isTransientPostgresCode(code), redactPostgresMessage(message), { sqlState });
}
