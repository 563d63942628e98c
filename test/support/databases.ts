import { randomBytes } from "node:crypto";
import { createConnection } from "mysql2/promise";
import { DataSource } from "typeorm";
import { dataSourceOptionsFromUrl } from "../../src/storage/data-source";

/**
 * The databases the suite runs on. MariaDB/MySQL at TEST_DATABASE_URL (default
 * mariadb://root@127.0.0.1:3306) gets a database of its own per run, dropped at the end;
 * the embedded database is a fresh in-memory sql.js per data source.
 * DB_KINDS=sqljs runs only the embedded one (for a machine without MariaDB).
 */
export type DbKind = "sqljs" | "mariadb";

export const SERVER_URL = (process.env.TEST_DATABASE_URL ?? "mariadb://root@127.0.0.1:3306").replace(/\/+$/, "");
export const RUN_DATABASE = `scm_token_test_${process.pid}_${randomBytes(3).toString("hex")}`;

export function dbKinds(): DbKind[] {
  const raw = process.env.DB_KINDS ?? "sqljs,mariadb";
  return raw.split(",").map((s) => s.trim()).filter((s): s is DbKind => s === "sqljs" || s === "mariadb");
}

let created: Promise<void> | undefined;
const openSources = new Set<DataSource>();

function serverConnectionOptions() {
  const url = new URL(SERVER_URL);
  return { host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
}

async function createRunDatabase(): Promise<void> {
  let connection;
  try {
    connection = await createConnection(serverConnectionOptions());
  } catch (e) {
    throw new Error(`cannot reach MariaDB/MySQL at ${SERVER_URL} (${(e as Error).message}); start it, set TEST_DATABASE_URL, or run DB_KINDS=sqljs npm test`);
  }
  await connection.query(`CREATE DATABASE \`${RUN_DATABASE}\` CHARACTER SET utf8mb4`);
  await connection.end();
  const ds = new DataSource(dataSourceOptionsFromUrl(runDatabaseUrl()));
  await ds.initialize();
  await ds.runMigrations();
  await ds.destroy();
}

/** The URL of this run's database on the server (for child processes). */
export function runDatabaseUrl(): string {
  return `${SERVER_URL}/${RUN_DATABASE}`;
}

/** A migrated DataSource of the given kind. Closed by closeAllDataSources (root hook). */
export async function openTestDataSource(kind: DbKind, poolSize = 10): Promise<DataSource> {
  let ds: DataSource;
  if (kind === "sqljs") {
    ds = new DataSource(dataSourceOptionsFromUrl("sqljs::memory:"));
    await ds.initialize();
    await ds.runMigrations();
  } else {
    created ??= createRunDatabase();
    await created;
    ds = new DataSource(dataSourceOptionsFromUrl(runDatabaseUrl(), { poolSize }));
    await ds.initialize();
  }
  openSources.add(ds);
  return ds;
}

export async function closeDataSource(ds: DataSource): Promise<void> {
  openSources.delete(ds);
  if (ds.isInitialized) await ds.destroy();
}

/** Root hook: close everything and drop the run's database. */
export async function cleanUpDatabases(): Promise<void> {
  for (const ds of [...openSources]) await closeDataSource(ds);
  if (!created) return;
  await created.catch(() => undefined);
  const connection = await createConnection(serverConnectionOptions());
  await connection.query(`DROP DATABASE IF EXISTS \`${RUN_DATABASE}\``);
  await connection.end();
}
