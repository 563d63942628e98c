import { randomBytes } from "node:crypto";
import { createPool as createCallbackPool, type Pool as CallbackPool } from "mysql2";
import { createConnection, createPool, type Pool, type PoolOptions } from "mysql2/promise";
import { dataSourceOptionsFromUrl, openDataSource } from "../../src/storage/data-source";
import { BaselineMysql2 } from "./baseline-mysql2";
import type { BenchTarget, HandOutBaseline, SetupSql } from "./bench-target";

/**
 * The benchmark's own database on the server at BENCH_DATABASE_URL (default
 * mariadb://root@127.0.0.1:3306): `scm_token_bench_<pid>_<hex>`, created and migrated with the
 * library's migrations at the start, dropped at the end.
 */
export class BenchDatabase implements BenchTarget {
  readonly kind = "mariadb";
  readonly serverUrl: string;
  readonly name: string;

  private constructor(serverUrl: string) {
    this.serverUrl = serverUrl.replace(/\/+$/, "");
    this.name = `scm_token_bench_${process.pid}_${randomBytes(2).toString("hex")}`;
  }

  /** Creates the database and runs the library's migrations on it. */
  static async create(serverUrl = process.env.BENCH_DATABASE_URL ?? "mariadb://root@127.0.0.1:3306"): Promise<BenchDatabase> {
    const db = new BenchDatabase(serverUrl);
    const connection = await createConnection(db.connectionOptions(false)).catch((e: unknown) => {
      throw new Error(`cannot reach MariaDB/MySQL at ${db.serverUrl} (${(e as Error).message}); start it or set BENCH_DATABASE_URL`);
    });
    try {
      await connection.query(`CREATE DATABASE \`${db.name}\` CHARACTER SET utf8mb4`);
    } finally {
      await connection.end();
    }
    const ds = await openDataSource(db.url);
    await ds.destroy();
    return db;
  }

  /** The URL of this run's database, for createTokenService({ databaseUrl }). */
  get url(): string {
    return `${this.serverUrl}/${this.name}`;
  }

  /**
   * mysql2 options equal to the ones TypeORM's MysqlDriver builds for the library's DataSource
   * (createConnectionOptions: supportBigNumbers, bigNumberStrings, stringifyObjects, then the
   * library's timezone and `extra`, read from dataSourceOptionsFromUrl so they stay in sync), so the
   * baseline pool behaves like the library's.
   */
  connectionOptions(withDatabase = true, connectionLimit = 10): PoolOptions {
    const u = new URL(this.serverUrl);
    const lib = dataSourceOptionsFromUrl(`${this.serverUrl}/${this.name}`, { poolSize: connectionLimit });
    const fromLibrary = lib.type === "mysql" || lib.type === "mariadb" ? { timezone: lib.timezone, ...(lib.extra as Record<string, unknown> | undefined) } : {};
    return {
      supportBigNumbers: true,
      bigNumberStrings: true,
      stringifyObjects: true,
      ...fromLibrary,
      host: u.hostname,
      port: u.port ? Number(u.port) : 3306,
      user: decodeURIComponent(u.username),
      password: decodeURIComponent(u.password),
      database: withDatabase ? this.name : undefined,
      connectionLimit,
    };
  }

  pool(connectionLimit = 10): Pool {
    return createPool(this.connectionOptions(true, connectionLimit));
  }

  /** The same pool on mysql2's callback API (the baselines use it: no promise wrapper per statement). */
  callbackPool(connectionLimit = 10): CallbackPool {
    return createCallbackPool(this.connectionOptions(true, connectionLimit));
  }

  setupSql(connectionLimit: number): SetupSql {
    const pool = this.pool(connectionLimit);
    return {
      query: async (sql, params = []) => (await pool.query(sql, params))[0] as Record<string, unknown>[],
      quoteName: (name) => name,
      end: () => pool.end(),
    };
  }

  baseline(connectionLimit: number, keys: readonly { id: string; key: string }[]): HandOutBaseline {
    return new BaselineMysql2(this.callbackPool(connectionLimit), keys);
  }

  async serverSettings(): Promise<Record<string, string | number>> {
    const connection = await createConnection(this.connectionOptions(true));
    try {
      const [rows] = await connection.query("SELECT @@innodb_buffer_pool_size AS b, @@innodb_flush_log_at_trx_commit AS f");
      const r = (rows as { b: string; f: string }[])[0];
      return { innodbBufferPoolMiB: Math.round(Number(r.b) / 2 ** 20), innodbFlushLogAtTrxCommit: Number(r.f) };
    } finally {
      await connection.end();
    }
  }

  async serverVersion(): Promise<string> {
    const connection = await createConnection(this.connectionOptions(true));
    try {
      const [rows] = await connection.query("SELECT VERSION() AS v");
      return String((rows as { v: string }[])[0].v);
    } finally {
      await connection.end();
    }
  }

  async drop(): Promise<void> {
    const connection = await createConnection(this.connectionOptions(false));
    try {
      await connection.query(`DROP DATABASE IF EXISTS \`${this.name}\``);
    } finally {
      await connection.end();
    }
  }
}
