import { DataSource, type Logger as OrmLogger } from "typeorm";
import { createTokenService } from "../../src/create-token-service";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { dataSourceOptionsFromUrl } from "../../src/storage/data-source";
import { RESERVE_SQL } from "./baseline-mysql2";
import type { BenchDatabase } from "./bench-database";

export interface BaselineCheck {
  /** The library's first hand-out of a user sends a SELECT and the baseline's reserve UPDATE; the next one only the SELECT. */
  inSync: boolean;
  /** What the first and the second hand-out of one user sent, whitespace-normalised. */
  firstHandOut: string[];
  secondHandOut: string[];
}

/**
 * Guards the comparison against drift. Runs two hand-outs of one user through a separate probe
 * service whose DataSource records every statement (the measured service is untouched): the first
 * must send one SELECT and the same reserve UPDATE as the baseline, the second (write-free) only
 * the SELECT.
 */
export async function checkBaselineStatements(db: BenchDatabase, host: string, userId: string, encryptionKeys: { id: string; key: string }[]): Promise<BaselineCheck> {
  const statements: string[] = [];
  const first: string[] = [];
  const second: string[] = [];
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
  } finally {
    await ds.destroy();
  }
  const isSelect = (q: string | undefined) => q !== undefined && q.startsWith("SELECT ") && q.includes("WHERE userId = ? AND host = ?");
  const inSync = first.length === 2 && isSelect(first[0]) && first[1] === normalize(RESERVE_SQL) && second.length === 1 && isSelect(second[0]);
  return { inSync, firstHandOut: first, secondHandOut: second };
}

function normalize(sql: string): string {
  return sql.replace(/\s+/g, " ").trim();
}
