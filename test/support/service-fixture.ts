import { createTestTokenService, type TestTokenService, type TestTokenServiceOptions } from "../../src/testing/create-test-token-service";
import { closeDataSource, openPrivateDataSource, openTestDataSource, type DbKind } from "./databases";

/** A test service on the given database kind (a fresh embedded database, or this run's MariaDB or PostgreSQL database). */
export async function serviceOn(
  kind: DbKind,
  options: TestTokenServiceOptions = {},
  database: "shared" | "private" = "shared",
): Promise<TestTokenService & { rawRows(userId: string): Promise<Record<string, unknown>[]> }> {
  const dataSource = kind === "sqljs" ? undefined : database === "private" ? await openPrivateDataSource(kind) : await openTestDataSource(kind);
  const t = await createTestTokenService({ ...options, dataSource });
  return {
    ...t,
    rawRows: (userId: string) =>
      kind === "postgres" ? t.dataSource.query('SELECT * FROM scm_token_entry WHERE "userId" = $1', [userId]) : t.dataSource.query("SELECT * FROM scm_token_entry WHERE userId = ?", [userId]),
    async close() {
      await t.close();
      if (dataSource) await closeDataSource(dataSource);
    },
  };
}

let counter = 0;
/** A user id unique in this run (tests share the run's MariaDB database). */
export function uniqueUser(prefix = "user"): string {
  return `${prefix}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
}
