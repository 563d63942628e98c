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
  constructor(private readonly dataSource: DataSource) {}

  async rows(operation: string, sql: string, params: unknown[]): Promise<Record<string, unknown>[]> {
    try {
      return (await this.dataSource.query(sql, params)) as Record<string, unknown>[];
    } catch (e) {
      throw toStorageError(operation, e);
    }
  }

  async affected(operation: string, sql: string, params: unknown[]): Promise<number> {
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

export function toStorageError(operation: string, error: unknown): StorageError {
  const driver = (error as { driverError?: unknown } | undefined)?.driverError ?? error;
  const code = typeof (driver as { code?: unknown } | undefined)?.code === "string" ? (driver as { code: string }).code : undefined;
  const fatal = (driver as { fatal?: unknown } | undefined)?.fatal === true;
  // Driver messages may quote key values ("Duplicate entry '…'"): blank out anything id- or token-like.
  const message = driver instanceof Error ? driver.message : String(driver);
  const detail = message.split("\n")[0].replace(/[A-Za-z0-9_+/=.-]{24,}/g, "[redacted]").slice(0, 200);
  return new StorageError(operation, code, fatal || (code !== undefined && TRANSIENT.has(code)), detail, { cause: error });
}
