import type { QueryRunner } from "typeorm";

/**
 * The column type of the library's dates: MySQL/MariaDB `datetime(3)` and SQLite `datetime` (both
 * hold the UTC strings the stores write), PostgreSQL `timestamp(3)` without time zone (PostgreSQL has
 * no "datetime"; the stores read it back as UTC text, see src/storage/postgres-dialect.ts). The
 * entities say `Date`, which TypeORM maps to the same type on each database.
 */
export function dateColumnType(queryRunner: QueryRunner): string {
  return queryRunner.connection.options.type === "postgres" ? "timestamp" : "datetime";
}
