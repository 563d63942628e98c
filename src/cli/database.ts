import { existsSync } from "node:fs";
import { DataSource, MigrationExecutor } from "typeorm";
import { ConfigurationError } from "../errors";
import { dataSourceOptionsFromUrl } from "../storage/data-source";
import { failure, usageError } from "./cli-error";

/** What every database command says about where the URL comes from. */
export const DATABASE_URL_HELP =
  "database URL: mysql://user:pass@host:3306/db, mariadb://user:pass@host:3306/db, postgres://user:pass@host:5432/db or sqljs:/path/file.sqlite (default: $DATABASE_URL)";

/** The URL from `--database-url`, else `DATABASE_URL`; a usage error (exit 2) that says how to give one when neither is set. */
export function resolveDatabaseUrl(option: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  const url = (option ?? env.DATABASE_URL ?? "").trim();
  if (!url) {
    throw usageError(
      "no database given: pass --database-url mysql://user:pass@host:3306/db (or mariadb://…, postgres://…, sqljs:/path/file.sqlite), or set DATABASE_URL",
    );
  }
  if (url === "sqljs::memory:" || url === "sqljs:") {
    throw usageError("sqljs::memory: would be gone when the command exits; give the embedded database's file instead: --database-url sqljs:/path/file.sqlite");
  }
  return url;
}

/** The URL with its password replaced by `***`, for messages. */
export function redactDatabaseUrl(url: string): string {
  if (url.startsWith("sqljs:")) return url;
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
}

export interface OpenOptions {
  /** `migrate run` creates a missing embedded database file; every other command refuses to. */
  createEmbeddedFile?: boolean;
  /** Fail (exit 1) when migrations are pending: maintenance commands never change the schema on their own. */
  requireMigrated?: boolean;
}

/**
 * Opens the database behind `url` for a CLI command, turning every way that fails into a message
 * that says what to do (exit 1 for an unreachable or unmigrated database, exit 2 for a bad URL).
 * Unlike openDataSource() it does not run migrations: that is `migrate run`'s job.
 */
export async function openCliDatabase(url: string, options: OpenOptions = {}): Promise<DataSource> {
  let dataSourceOptions;
  try {
    dataSourceOptions = dataSourceOptionsFromUrl(url, { poolSize: 2 });
  } catch (e) {
    if (e instanceof ConfigurationError) throw usageError(`--database-url: ${e.message.replace(/^scm-token-service: /, "")}`);
    throw e;
  }
  const where = redactDatabaseUrl(url);
  if (dataSourceOptions.type === "sqljs" && !options.createEmbeddedFile && !existsSync(dataSourceOptions.location!)) {
    throw failure(`no embedded database file at ${dataSourceOptions.location}: check the path, or create and migrate it with: scm-token-service migrate run --database-url ${where}`);
  }
  const dataSource = new DataSource(dataSourceOptions);
  try {
    await dataSource.initialize();
  } catch (e) {
    throw failure(`cannot open the database at ${where} (${describeConnectError(e)}); ${connectHint(e)}`);
  }
  if (options.requireMigrated) {
    try {
      const pending = await new MigrationExecutor(dataSource).getPendingMigrations();
      if (pending.length > 0) {
        throw failure(
          `the database at ${where} is not migrated to this version of scm-token-service (pending: ${pending.map((m) => m.name).join(", ")}); ` +
            `run: scm-token-service migrate run --database-url ${where}`,
        );
      }
    } catch (e) {
      await dataSource.destroy();
      throw e;
    }
  }
  return dataSource;
}

/** Runs `use` on an open database and closes it whatever happens. */
export async function withCliDatabase<T>(url: string, options: OpenOptions, use: (dataSource: DataSource) => Promise<T>): Promise<T> {
  const dataSource = await openCliDatabase(url, options);
  try {
    return await use(dataSource);
  } finally {
    if (dataSource.isInitialized) await dataSource.destroy();
  }
}

function describeConnectError(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown; errors?: { message?: unknown }[] };
  const message = typeof err?.message === "string" && err.message ? err.message : err?.errors?.[0]?.message;
  const code = typeof err?.code === "string" ? err.code : undefined;
  if (code && typeof message === "string" && !message.includes(code)) return `${code}: ${message}`;
  return typeof message === "string" && message ? message : (code ?? String(e));
}

function connectHint(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  switch (code) {
    case "ER_BAD_DB_ERROR":
      return "create the database first (CREATE DATABASE …), then run: scm-token-service migrate run";
    case "ER_ACCESS_DENIED_ERROR":
    case "ER_DBACCESS_DENIED_ERROR":
      return "check the user name and password in --database-url (or DATABASE_URL)";
    default:
      return "check that the server is running and reachable, and that --database-url (or DATABASE_URL) is right";
  }
}
