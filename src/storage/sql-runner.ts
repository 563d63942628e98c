import type { Pool as MysqlPool, ResultSetHeader } from "mysql2";
import type { DataSource, QueryRunner } from "typeorm";
import { StorageError } from "../errors";

/** Driver codes of failures that changed nothing and may simply be retried. */
const TRANSIENT = new Set([
  "ER_LOCK_WAIT_TIMEOUT",
  "ER_LOCK_DEADLOCK",
  "ER_CONNECTION_KILLED",
  "ER_QUERY_INTERRUPTED",
  "PROTOCOL_CONNECTION_LOST",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "SQLITE_BUSY",
]);

/**
 * Runs the storage layer's SQL and turns driver failures into StorageError. Affected-row counts come
 * from TypeORM's structured result (`queryRunner.query(sql, params, true).affected`), which means
 * matched rows on MySQL (mysql2 sets CLIENT_FOUND_ROWS) as on SQLite.
 */
export class SqlRunner {
  /** `direct`: on MySQL/MariaDB, send statements on the driver's mysql2 pool (see mysqlPoolOf). */
  constructor(
    private readonly dataSource: DataSource,
    private readonly options: { direct?: boolean } = {},
  ) {}

  private mysqlPool(): MysqlPool | undefined {
    return this.options.direct ? mysqlPoolOf(this.dataSource) : undefined;
  }

  async rows(operation: string, sql: string, params: unknown[]): Promise<Record<string, unknown>[]> {
    try {
      const pool = this.mysqlPool();
      return (pool ? await poolQuery(pool, sql, params) : await this.dataSource.query(sql, params)) as Record<string, unknown>[];
    } catch (e) {
      throw toStorageError(operation, e);
    }
  }

  async affected(operation: string, sql: string, params: unknown[]): Promise<number> {
    const pool = this.mysqlPool();
    if (pool) {
      try {
        return ((await poolQuery(pool, sql, params)) as ResultSetHeader).affectedRows;
      } catch (e) {
        throw toStorageError(operation, e);
      }
    }
    const runner: QueryRunner = this.dataSource.createQueryRunner();
    try {
      const result = await runner.query(sql, params, true);
      return result.affected ?? 0;
    } catch (e) {
      throw toStorageError(operation, e);
    } finally {
      await runner.release().catch(() => undefined);
    }
  }
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

/** One statement on the mysql2 pool, callback API (no promise wrapper per call). */
function poolQuery(pool: MysqlPool, sql: string, params: unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    pool.query(sql, params, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

export function toStorageError(operation: string, error: unknown): StorageError {
  const driver = (error as { driverError?: unknown } | undefined)?.driverError ?? error;
  const code = typeof (driver as { code?: unknown } | undefined)?.code === "string" ? (driver as { code: string }).code : undefined;
  const fatal = (driver as { fatal?: unknown } | undefined)?.fatal === true;
  // Driver messages may quote key values ("Duplicate entry '…'"): blank out anything id- or token-like.
  const message = driver instanceof Error ? driver.message : String(driver);
  const detail = message.split("\n")[0].replace(/[A-Za-z0-9_+/=.-]{24,}/g, "[redacted]").slice(0, 200);
  return new StorageError(operation, code, fatal || (code !== undefined && TRANSIENT.has(code)), detail, { cause: error });
}
