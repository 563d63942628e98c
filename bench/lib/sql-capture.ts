import { DataSource, type Logger as OrmLogger } from "typeorm";
import { createTokenService } from "../../src/create-token-service";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { dataSourceOptionsFromUrl } from "../../src/storage/data-source";
import { insertHoldSql, shareLockClause } from "../../src/storage/token-store";
import { RELEASE_SQL, RESERVE_SQL } from "./baseline-mysql2";
import type { BenchDatabase } from "./bench-database";

export interface BaselineCheck {
  /**
   * The library's first hand-out of a user sends a SELECT and the baseline's reserve UPDATE; the next
   * one only the SELECT; a releasable one a SELECT and one INSERT … SELECT of a hold (the baseline's
   * INSERT, guarded and locking: src/hand-out-reservation.ts), and its release the baseline's DELETE.
   */
  inSync: boolean;
  /** What the first and the second hand-out of one user sent, whitespace-normalised. */
  firstHandOut: string[];
  secondHandOut: string[];
  /** What a releasable hand-out of the same user and its release sent. */
  releasableHandOut: string[];
  release: string[];
}

/**
 * Guards the comparison against drift. Runs hand-outs of one user through a separate probe service
 * whose DataSource records every statement (the measured service is untouched): the first must send
 * one SELECT and the same reserve UPDATE as the baseline, the second (write-free) only the SELECT, a
 * releasable one the SELECT and the hold's INSERT … SELECT, and its release the baseline's DELETE.
 */
export async function checkBaselineStatements(db: BenchDatabase, host: string, userId: string, encryptionKeys: { id: string; key: string }[]): Promise<BaselineCheck> {
  const statements: string[] = [];
  const first: string[] = [];
  const second: string[] = [];
  const releasable: string[] = [];
  const release: string[] = [];
  const logger: OrmLogger = {
    logQuery: (query: string) => void statements.push(normalize(query)),
    logQueryError: () => undefined,
    logQuerySlow: () => undefined,
    logSchemaBuild: () => undefined,
    logMigration: () => undefined,
    log: () => undefined,
  };
  const ds = new DataSource({ ...dataSourceOptionsFromUrl(db.url, { poolSize: 1 }), logger });
  await ds.initialize();
  // The token store sends its statements on connections of the driver's mysql2 pool, past TypeORM's
  // logger: record them there too (pool.query and the connections getConnection hands out).
  type Queryable = { query: (sql: unknown, ...rest: unknown[]) => unknown };
  const record = (target: Queryable) => {
    const query = target.query.bind(target);
    target.query = (sql: unknown, ...rest: unknown[]) => {
      statements.push(normalize(typeof sql === "string" ? sql : String((sql as { sql?: unknown }).sql)));
      return query(sql, ...rest);
    };
  };
  const pool = (ds.driver as unknown as { pool: Queryable & { getConnection: (cb: (e: unknown, c?: Queryable) => void) => void } }).pool;
  record(pool);
  const wrapped = new WeakSet<Queryable>();
  const getConnection = pool.getConnection.bind(pool);
  pool.getConnection = (cb) =>
    getConnection((e, connection) => {
      if (connection && !wrapped.has(connection)) {
        wrapped.add(connection);
        record(connection);
      }
      cb(e, connection);
    });
  try {
    const probe = await createTokenService({
      dataSource: ds,
      providers: [new BitbucketServerProvider({ host, baseUrl: "http://127.0.0.1:9", clientId: "bench", clientSecret: "bench" })],
      encryptionKeys,
      flags: new StaticFeatureFlags({ opportunisticRefresh: false }),
    });
    statements.length = 0;
    await probe.getTokenForHost(userId, host, { lifetimeMinutes: 5 });
    first.push(...statements);
    statements.length = 0;
    await probe.getTokenForHost(userId, host, { lifetimeMinutes: 5 });
    second.push(...statements);
    statements.length = 0;
    const held = await probe.getTokenForHost(userId, host, { lifetimeMinutes: 5, releasable: true });
    releasable.push(...statements);
    statements.length = 0;
    if (held) await probe.releaseReservation(held);
    release.push(...statements);
  } finally {
    await ds.destroy();
  }
  const isSelect = (q: string | undefined) => q !== undefined && q.startsWith("SELECT ") && q.includes("WHERE userId = ? AND host = ?");
  const holdInsert = normalize(insertHoldSql(shareLockClause(ds.options.type), false));
  const inSync =
    first.length === 2 && isSelect(first[0]) && first[1] === normalize(RESERVE_SQL) &&
    second.length === 1 && isSelect(second[0]) &&
    releasable.length === 2 && isSelect(releasable[0]) && releasable[1] === holdInsert &&
    release.length === 1 && release[0] === normalize(RELEASE_SQL);
  return { inSync, firstHandOut: first, secondHandOut: second, releasableHandOut: releasable, release };
}

function normalize(sql: string): string {
  return sql.replace(/\s+/g, " ").trim();
}
