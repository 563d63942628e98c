import { randomBytes } from "node:crypto";
import { Client, Pool, types, type PoolConfig } from "pg";
import { dataSourceOptionsFromUrl, openDataSource } from "../../src/storage/data-source";
import { toPostgresSql } from "../../src/storage/postgres-dialect";
import { BaselinePg } from "./baseline-pg";
import type { BenchTarget, HandOutBaseline, SetupSql } from "./bench-target";

/**
 * The benchmark's own database on the PostgreSQL server at BENCH_POSTGRES_URL (default
 * postgres://postgres@127.0.0.1:5432): `scm_token_bench_<pid>_<hex>`, created (UTF8, from template0)
 * and migrated with the library's migrations at the start, dropped at the end.
 */
export class PostgresBenchDatabase implements BenchTarget {
  readonly kind = "postgres";
  readonly serverUrl: string;
  readonly name: string;

  private constructor(serverUrl: string) {
    this.serverUrl = serverUrl.replace(/\/+$/, "");
    this.name = `scm_token_bench_${process.pid}_${randomBytes(2).toString("hex")}`;
  }

  static async create(serverUrl = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432"): Promise<PostgresBenchDatabase> {
    const db = new PostgresBenchDatabase(serverUrl);
    await db.admin(`CREATE DATABASE "${db.name}" ENCODING 'UTF8' TEMPLATE template0`).catch((e: unknown) => {
      throw new Error(`cannot create a database on PostgreSQL at ${db.serverUrl} (${(e as Error).message}); start it, set BENCH_POSTGRES_URL, or pass --databases mariadb`);
    });
    const ds = await openDataSource(db.url);
    await ds.destroy();
    return db;
  }

  get url(): string {
    return `${this.serverUrl}/${this.name}`;
  }

  /**
   * pg.Pool options equal to the ones TypeORM's PostgresDriver builds for the library's DataSource
   * (createPool: host, port, user, password, database, ssl, application_name, max, then `extra`),
   * read from dataSourceOptionsFromUrl so they stay in sync.
   */
  poolConfig(max: number): PoolConfig {
    const lib = dataSourceOptionsFromUrl(this.url, { poolSize: max });
    if (lib.type !== "postgres") throw new Error(`not a PostgreSQL URL: ${this.serverUrl}`);
    return {
      host: lib.host,
      port: lib.port,
      user: lib.username,
      password: typeof lib.password === "string" ? lib.password : undefined,
      database: lib.database,
      ssl: lib.ssl as PoolConfig["ssl"],
      application_name: lib.applicationName,
      max,
      ...(lib.extra as PoolConfig | undefined),
    };
  }

  /**
   * A pg.Pool for the bench's own statements. pool.end() resolves before its clients' sockets have
   * closed; the database's DROP … WITH (FORCE) right after can end one of them, and a pool without an
   * 'error' listener would throw that (57P01) as an uncaught exception, losing the run's results.
   */
  private pool(max: number): Pool {
    const pool = new Pool(this.poolConfig(max));
    pool.on("error", () => undefined);
    return pool;
  }

  /** A plain pg pool on this run's database (callback API available), for probes like read-width.ts. */
  callbackPool(max = 10): Pool {
    return this.pool(max);
  }

  setupSql(max: number): SetupSql {
    const pool = this.pool(max);
    return {
      // Set-up statements are short: translated like the library's (bulk INSERTs quote their names themselves).
      query: async (sql, params = []) => (await pool.query(sql.length < 4096 ? toPostgresSql(sql) : sql, params)).rows as Record<string, unknown>[],
      quoteName: (name) => (/[A-Z]/.test(name) ? `"${name}"` : name),
      end: () => pool.end(),
    };
  }

  baseline(max: number, keys: readonly { id: string; key: string }[]): HandOutBaseline {
    return new BaselinePg(this.pool(max), types, keys);
  }

  async serverVersion(): Promise<string> {
    return String((await this.queryOne("SHOW server_version")).server_version);
  }

  async serverSettings(): Promise<Record<string, string | number>> {
    const settings: Record<string, string | number> = {};
    for (const name of ["shared_buffers", "synchronous_commit", "fsync"]) settings[name] = String((await this.queryOne(`SHOW ${name}`))[name]);
    return settings;
  }

  async drop(): Promise<void> {
    // FORCE: also ends sessions a killed run left behind.
    await this.admin(`DROP DATABASE IF EXISTS "${this.name}" WITH (FORCE)`);
  }

  private async queryOne(sql: string): Promise<Record<string, unknown>> {
    const client = new Client(this.poolConfig(1));
    await client.connect();
    try {
      return (await client.query(sql)).rows[0] as Record<string, unknown>;
    } finally {
      await client.end();
    }
  }

  /** On the server's maintenance database "postgres" (a database cannot be created or dropped from inside itself). */
  private async admin(sql: string): Promise<void> {
    const client = new Client({ connectionString: `${this.serverUrl}/postgres` });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }
}
