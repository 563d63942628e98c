import { TokenStore } from "../../src/storage/token-store";
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

/**
 * What holds a user's token now, read straight from the store (epoch ms): the entry's
 * reservedUntilDate (non-releasable hand-outs), the latest live hold (releasable ones) and the
 * effective reservation, the later of the two — what a refresh that must not break holders respects.
 */
export async function reservationOf(t: Pick<TestTokenService, "dataSource" | "clock" | "host">, userId: string): Promise<{ reservedUntil?: number; latestHold?: number; holds: number; effective?: number }> {
  const store = new TokenStore(t.dataSource);
  const entry = await store.find(userId, t.host);
  if (!entry) throw new Error(`no entry for ${userId}`);
  const holds = await store.liveHolds(entry.id, entry.version, t.clock.now());
  const reservedUntil = entry.reservedUntilDate?.getTime();
  const latestHold = holds.latestUntil?.getTime();
  const ends = [reservedUntil, latestHold].filter((x): x is number => x !== undefined);
  return { reservedUntil, latestHold, holds: holds.count, effective: ends.length ? Math.max(...ends) : undefined };
}
