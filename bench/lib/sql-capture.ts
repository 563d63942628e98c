import { DataSource, type Logger as OrmLogger } from "typeorm";
import { createTokenService } from "../../src/create-token-service";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { dataSourceOptionsFromUrl } from "../../src/storage/data-source";
import { FIND_SQL, GUARDED_HOLD_SQL, RELEASE_SQL, RESERVE_SQL } from "./baseline-mysql2";
import { PG_FIND_SQL, PG_GUARDED_HOLD_SQL, PG_RELEASE_SQL, PG_RESERVE_SQL } from "./baseline-pg";
import type { BenchTarget } from "./bench-target";

export interface BaselineCheck {
  /**
   * The library's first hand-out of a user sends a SELECT and the baseline's reserve UPDATE; the next
   * one only the SELECT; a releasable one a SELECT and one INSERT … SELECT of a hold (the baseline's
   * guarded INSERT, locking the entry: src/hand-out-reservation.ts), and its release the baseline's DELETE.
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
 * releasable one the SELECT and the hold's INSERT … SELECT, and its release the baseline's DELETE. On PostgreSQL the statements are compared in PostgreSQL's spelling, as the library's
 * dialect sends them ($n placeholders, quoted camelCase names).
 */
export async function checkBaselineStatements(db: BenchTarget, host: string, userId: string, encryptionKeys: { id: string; key: string }[]): Promise<BaselineCheck> {
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
  const options = dataSourceOptionsFromUrl(db.url, { poolSize: 1 });
  // On PostgreSQL every statement, TypeORM's too, passes the pool's clients: recorded there only.
  const ds = new DataSource(db.kind === "postgres" ? options : { ...options, logger });
  await ds.initialize();
  if (db.kind === "postgres") recordPostgres(ds, statements);
  else recordMysql(ds, statements);
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
  // The baseline's own SELECT reads fewer columns: the lookup (its WHERE) is what must match.
  const find = db.kind === "postgres" ? PG_FIND_SQL : FIND_SQL;
  const where = find.slice(find.indexOf("WHERE "));
  const reserve = normalize(db.kind === "postgres" ? PG_RESERVE_SQL : RESERVE_SQL);
  const isSelect = (q: string | undefined) => q !== undefined && q.startsWith("SELECT ") && q.endsWith(where);
  const holdInsert = normalize(db.kind === "postgres" ? PG_GUARDED_HOLD_SQL : GUARDED_HOLD_SQL);
  const releaseSql = normalize(db.kind === "postgres" ? PG_RELEASE_SQL : RELEASE_SQL);
  const inSync =
    first.length === 2 && isSelect(first[0]) && first[1] === reserve &&
    second.length === 1 && isSelect(second[0]) &&
    releasable.length === 2 && isSelect(releasable[0]) && releasable[1] === holdInsert &&
    release.length === 1 && release[0] === releaseSql;
  return { inSync, firstHandOut: first, secondHandOut: second, releasableHandOut: releasable, release };
}

type Queryable = { query: (sql: unknown, ...rest: unknown[]) => unknown };

/** Replaces `target.query` with one that records each statement's text first. */
function record(target: Queryable, statements: string[]): void {
  const query = target.query.bind(target);
  target.query = (sql: unknown, ...rest: unknown[]) => {
    const text = typeof sql === "string" ? sql : (sql as { sql?: unknown; text?: unknown }).sql ?? (sql as { text?: unknown }).text;
    statements.push(normalize(String(text)));
    return query(sql, ...rest);
  };
}

/**
 * MySQL/MariaDB: the token store sends its statements on connections of the driver's mysql2 pool,
 * past TypeORM's logger: record them there too (pool.query and the connections getConnection hands out).
 */
function recordMysql(ds: DataSource, statements: string[]): void {
  const pool = (ds.driver as unknown as { pool: Queryable & { getConnection: (cb: (e: unknown, c?: Queryable) => void) => void } }).pool;
  record(pool, statements);
  const wrapped = new WeakSet<Queryable>();
  const getConnection = pool.getConnection.bind(pool);
  pool.getConnection = (cb) =>
    getConnection((e, connection) => {
      if (connection && !wrapped.has(connection)) {
        wrapped.add(connection);
        record(connection, statements);
      }
      cb(e, connection);
    });
}

/** PostgreSQL: the library (postgres-dialect.ts) and TypeORM both check clients out of the driver's pg pool. */
function recordPostgres(ds: DataSource, statements: string[]): void {
  type Connect = (cb: (e: unknown, c?: Queryable, done?: unknown) => void) => unknown;
  const pool = (ds.driver as unknown as { master: { connect: Connect } }).master;
  const wrapped = new WeakSet<Queryable>();
  const connect = pool.connect.bind(pool);
  pool.connect = ((cb?: (e: unknown, c?: Queryable, done?: unknown) => void) => {
    const wrap = (client: Queryable | undefined) => {
      if (client && !wrapped.has(client)) {
        wrapped.add(client);
        record(client, statements);
      }
      return client;
    };
    // TypeORM awaits connect() without a callback; the library passes one.
    if (!cb) return (connect as unknown as () => Promise<Queryable>)().then(wrap);
    return connect((e, client, done) => cb(e, wrap(client), done));
  }) as Connect;
}

function normalize(sql: string): string {
  return sql.replace(/\s+/g, " ").trim();
}
