import { randomBytes } from "node:crypto";
import type { ResultSetHeader } from "mysql2";
import { createConnection } from "mysql2/promise";
import { Client } from "pg";
import { DataSource } from "typeorm";
import { dataSourceOptionsFromUrl } from "../../src/storage/data-source";
import { toPostgresSql } from "../../src/storage/postgres-dialect";

/**
 * The databases the suite runs on. MariaDB/MySQL at TEST_DATABASE_URL (default
 * mariadb://root@127.0.0.1:3306) and PostgreSQL at TEST_POSTGRES_URL (default
 * postgres://postgres@127.0.0.1:5432) each get a database of their own per run, dropped at the end;
 * the embedded database is a fresh in-memory sql.js per data source.
 * DB_KINDS=sqljs runs only the embedded one (for a machine without a database server);
 * DB_KINDS=postgres only PostgreSQL.
 */
export type DbKind = "sqljs" | "mariadb" | "postgres";
/** The kinds that are database servers. */
export type ServerKind = Exclude<DbKind, "sqljs">;

export const SERVER_URL = (process.env.TEST_DATABASE_URL ?? "mariadb://root@127.0.0.1:3306").replace(/\/+$/, "");
export const POSTGRES_SERVER_URL = (process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432").replace(/\/+$/, "");
/**
 * One id per `npm test` run, set by the first process that loads this module (mocha's main process)
 * and inherited by its parallel workers and the child processes tests start.
 */
const RUN_ID = (process.env.SCM_TEST_RUN_ID ??= `${process.pid}_${randomBytes(3).toString("hex")}`);
/** Databases of this run start with it: one per test process (mocha's parallel workers run files side by side). */
const RUN_PREFIX = `scm_token_test_${RUN_ID}_`;
export const RUN_DATABASE = `${RUN_PREFIX}${process.pid}`;

const KINDS: readonly DbKind[] = ["sqljs", "mariadb", "postgres"];

export function dbKinds(): DbKind[] {
  const raw = process.env.DB_KINDS ?? "sqljs,mariadb,postgres";
  return raw.split(",").map((s) => s.trim()).filter((s): s is DbKind => (KINDS as readonly string[]).includes(s));
}

/** The server URL (no database) of a server kind. */
export function serverUrl(kind: ServerKind): string {
  return kind === "postgres" ? POSTGRES_SERVER_URL : SERVER_URL;
}

const createdOn = new Map<ServerKind, Promise<void>>();
const openSources = new Set<DataSource>();

function serverConnectionOptions() {
  const url = new URL(SERVER_URL);
  return { host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
}

/** Runs statements on a server kind's maintenance connection (MariaDB: no database; PostgreSQL: its "postgres" database). */
export async function adminQuery(kind: ServerKind, statements: string[]): Promise<void> {
  if (kind === "postgres") {
    const client = new Client({ connectionString: `${POSTGRES_SERVER_URL}/postgres` });
    try {
      await client.connect();
    } catch (e) {
      throw new Error(`cannot reach PostgreSQL at ${POSTGRES_SERVER_URL} (${(e as Error).message}); start it, set TEST_POSTGRES_URL, or leave postgres out of DB_KINDS`);
    }
    try {
      for (const sql of statements) await client.query(sql);
    } finally {
      await client.end();
    }
    return;
  }
  let connection;
  try {
    connection = await createConnection(serverConnectionOptions());
  } catch (e) {
    throw new Error(`cannot reach MariaDB/MySQL at ${SERVER_URL} (${(e as Error).message}); start it, set TEST_DATABASE_URL, or run DB_KINDS=sqljs npm test`);
  }
  try {
    for (const sql of statements) await connection.query(sql);
  } finally {
    await connection.end();
  }
}

/** CREATE DATABASE for a database of this run on a server kind (PostgreSQL: UTF8, C collation like a byte-wise MariaDB). */
export function createDatabaseSql(kind: ServerKind, name: string): string {
  return kind === "postgres" ? `CREATE DATABASE "${name}" ENCODING 'UTF8' TEMPLATE template0` : `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`;
}

/** DROP DATABASE for a database of this run (PostgreSQL: also ends sessions still connected, e.g. of killed child processes). */
export function dropDatabaseSql(kind: ServerKind, name: string): string {
  return kind === "postgres" ? `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)` : `DROP DATABASE IF EXISTS \`${name}\``;
}

/** Creates database `name` on a server kind and runs the library's migrations there; returns the open DataSource. */
async function createMigratedDatabase(kind: ServerKind, name: string): Promise<DataSource> {
  await adminQuery(kind, [createDatabaseSql(kind, name)]);
  const ds = new DataSource(dataSourceOptionsFromUrl(`${serverUrl(kind)}/${name}`));
  await ds.initialize();
  await ds.runMigrations();
  return ds;
}

async function createRunDatabase(kind: ServerKind): Promise<void> {
  await (await createMigratedDatabase(kind, RUN_DATABASE)).destroy();
}

/** The URL of this run's database on a server (for child processes); MariaDB unless told. */
export function runDatabaseUrl(kind: ServerKind = "mariadb"): string {
  return `${serverUrl(kind)}/${RUN_DATABASE}`;
}

/** This run's database on a server kind, created and migrated on first use. */
export async function ensureRunDatabase(kind: ServerKind): Promise<string> {
  let created = createdOn.get(kind);
  if (!created) {
    created = createRunDatabase(kind);
    createdOn.set(kind, created);
  }
  await created;
  return runDatabaseUrl(kind);
}

/** A migrated DataSource of the given kind. Closed by closeAllDataSources (root hook). */
export async function openTestDataSource(kind: DbKind, poolSize = 10): Promise<DataSource> {
  let ds: DataSource;
  if (kind === "sqljs") {
    ds = new DataSource(dataSourceOptionsFromUrl("sqljs::memory:"));
    await ds.initialize();
    await ds.runMigrations();
  } else {
    ds = new DataSource(dataSourceOptionsFromUrl(await ensureRunDatabase(kind), { poolSize }));
    await ds.initialize();
  }
  openSources.add(ds);
  return ds;
}

let privateCounter = 0;
/**
 * A migrated DataSource on a database of its own (sql.js: a fresh in-memory one), for tests that
 * judge the whole table — a reaper's totals — and must not see rows other files left in the run's
 * shared database. Dropped with the run's databases at the end.
 */
export async function openPrivateDataSource(kind: DbKind): Promise<DataSource> {
  if (kind === "sqljs") return openTestDataSource(kind);
  const ds = await createMigratedDatabase(kind, `${RUN_DATABASE}_p${++privateCounter}`);
  openSources.add(ds);
  return ds;
}

export async function closeDataSource(ds: DataSource): Promise<void> {
  openSources.delete(ds);
  if (ds.isInitialized) await ds.destroy();
}

/** Root hook (after each file in parallel mode, after the run otherwise): close the data sources still open. */
export async function closeOpenDataSources(): Promise<void> {
  for (const ds of [...openSources]) await closeDataSource(ds);
}

/**
 * Global teardown (mocha's main process, once, after every worker is done): drop every database of
 * this run on every server DB_KINDS names — each worker's, and those tests made under its name
 * (`<run database>_cli1` …) and did not drop because they failed.
 */
export async function dropRunDatabases(): Promise<void> {
  await closeOpenDataSources();
  for (const kind of serverKinds()) {
    const names = await listDatabases(kind).catch(() => [] as string[]);
    const ours = names.filter((name) => name.startsWith(RUN_PREFIX));
    if (ours.length > 0) await adminQuery(kind, ours.map((name) => dropDatabaseSql(kind, name)));
  }
}

async function listDatabases(kind: ServerKind): Promise<string[]> {
  if (kind === "postgres") return (await queryDatabase<{ datname: string }>("postgres", "postgres", "SELECT datname FROM pg_database")).map((r) => r.datname);
  return (await queryDatabase<{ Database: string }>("mariadb", "information_schema", "SHOW DATABASES")).map((r) => r.Database);
}

/**
 * A test's own SQL on any kind: written like the stores' (`?` placeholders, bare camelCase names),
 * translated for PostgreSQL the way the library translates its own (src/storage/postgres-dialect.ts).
 */
export function rawQuery<T = Record<string, unknown>[]>(ds: DataSource, sql: string, params: unknown[] = []): Promise<T> {
  return ds.query(ds.options.type === "postgres" ? toPostgresSql(sql) : sql, params) as Promise<T>;
}

/** The database servers DB_KINDS names (for tests that need a server: several processes, faults, migrations). */
export function serverKinds(): ServerKind[] {
  return dbKinds().filter((k): k is ServerKind => k !== "sqljs");
}

/** One query (the server's own placeholders) on a named database of a server kind, on a connection of its own. */
export async function queryDatabase<T = Record<string, unknown>>(kind: ServerKind, database: string, sql: string, params: unknown[] = []): Promise<T[]> {
  if (kind === "postgres") {
    const client = new Client({ connectionString: `${POSTGRES_SERVER_URL}/${database}` });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as T[];
    } finally {
      await client.end();
    }
  }
  const connection = await createConnection({ ...serverConnectionOptions(), database });
  try {
    return (await connection.query(sql, params))[0] as T[];
  } finally {
    await connection.end();
  }
}

/** A connection of its own to this run's database (see openRawConnection). */
export interface RawConnection {
  /** One statement written like the stores' (`?` placeholders, bare camelCase names; translated for PostgreSQL). */
  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[]; affected: number }>;
  close(): Promise<void>;
}

/**
 * A connection of its own to this run's database on a server kind, outside any pool: for tests that
 * hold a transaction open (BEGIN … COMMIT) while the library works on its own connections.
 */
export async function openRawConnection(kind: ServerKind): Promise<RawConnection> {
  const url = await ensureRunDatabase(kind);
  if (kind === "postgres") {
    const client = new Client({ connectionString: url });
    await client.connect();
    return {
      async query(sql, params = []) {
        const result = await client.query(toPostgresSql(sql), params);
        return { rows: result.rows as Record<string, unknown>[], affected: result.rowCount ?? 0 };
      },
      close: () => client.end(),
    };
  }
  const connection = await createConnection({ ...serverConnectionOptions(), database: RUN_DATABASE, timezone: "Z" });
  return {
    async query(sql, params = []) {
      const [result] = await connection.query(sql, params);
      return Array.isArray(result) ? { rows: result as Record<string, unknown>[], affected: 0 } : { rows: [], affected: (result as ResultSetHeader).affectedRows };
    },
    close: () => connection.end(),
  };
}
