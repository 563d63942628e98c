import { DataSource, type Logger as OrmLogger } from "typeorm";
import { createTokenService } from "../../src/create-token-service";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { dataSourceOptionsFromUrl } from "../../src/storage/data-source";
import { BASELINE_STATEMENTS } from "./baseline-mysql2";
import type { BenchDatabase } from "./bench-database";

export interface BaselineCheck {
  inSync: boolean;
  /** What one library hand-out of a valid 24 h token sent, whitespace-normalised. */
  libraryStatements: string[];
}

/**
 * Guards the comparison against drift: the baseline copies the library's SQL, and the library
 * changes. Runs one hand-out through a separate probe service whose DataSource records every statement
 * (the measured service is untouched) and compares with the baseline's statements.
 */
export async function checkBaselineStatements(db: BenchDatabase, host: string, userId: string): Promise<BaselineCheck> {
  const statements: string[] = [];
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
  // The token store sends its statements on the driver's mysql2 pool, past TypeORM's logger: record them there too.
  const pool = (ds.driver as unknown as { pool: { query: (sql: unknown, ...rest: unknown[]) => unknown } }).pool;
  const query = pool.query.bind(pool);
  pool.query = (sql: unknown, ...rest: unknown[]) => {
    statements.push(normalize(typeof sql === "string" ? sql : String((sql as { sql?: unknown }).sql)));
    return query(sql, ...rest);
  };
  try {
    const probe = await createTokenService({
      dataSource: ds,
      providers: [new BitbucketServerProvider({ host, baseUrl: "http://127.0.0.1:9", clientId: "bench", clientSecret: "bench" })],
      encryptionKeys: [{ id: "probe", key: Buffer.alloc(32).toString("base64") }],
      flags: new StaticFeatureFlags({ opportunisticRefresh: false }),
    });
    statements.length = 0;
    // The probe's key cannot decrypt the row; the statements before the decrypt are what matter.
    await probe.getTokenForHost(userId, host, { lifetimeMinutes: 5 }).catch(() => undefined);
  } finally {
    await ds.destroy();
  }
  const expected = BASELINE_STATEMENTS.map(normalize);
  return { inSync: statements.length === expected.length && statements.every((s, i) => s === expected[i]), libraryStatements: statements };
}

function normalize(sql: string): string {
  return sql.replace(/\s+/g, " ").trim();
}
