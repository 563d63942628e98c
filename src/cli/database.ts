import { existsSync } from "node:fs";
import { DataSource, MigrationExecutor } from "typeorm";
import type { DataSourceOptions } from "typeorm";
import { ConfigurationError } from "../errors";
import { SSL_MODE_PARAMETER, UnsupportedUrlParameterError, dataSourceOptionsFromUrl, startupTarget } from "../storage/data-source";
import { DatabaseConfigurationError, startupError } from "../storage/startup-errors";
import { failure, usageError, type CliError } from "./cli-error";

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
    if (e instanceof UnsupportedUrlParameterError) {
      // The library's advice (your own DataSource) has no command-line form.
      throw usageError(
        `--database-url: the query parameter "${e.parameter}" is not supported on ${e.scheme}// URLs; the only one is ${SSL_MODE_PARAMETER}: remove the parameter (the command line passes no other driver settings)`,
      );
    }
    if (e instanceof ConfigurationError) throw usageError(`--database-url: ${withoutPrefix(e.message).replace(/^databaseUrl: /, "")}`);
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
    throw connectFailure(e, url, dataSourceOptions, where);
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

/** How the library's start-up messages name the URL, in the CLI's terms. */
const CLI_URL_NAME = "--database-url (or DATABASE_URL)";

/**
 * A failed connect as one line that says what to do: the CLI's own advice for a missing database or
 * a refused login, the library's typed one (startupError) for the rest of what the configuration
 * gets wrong — TLS the server does not offer, a certificate that fails verification — and else a
 * check of the server and the URL.
 */
function connectFailure(e: unknown, url: string, options: DataSourceOptions, where: string): CliError {
  const hint = connectHint(e);
  if (hint) return failure(`cannot open the database at ${where} (${describeConnectError(e)}); ${hint}`);
  const typed = startupError(e, startupTarget(url, options, CLI_URL_NAME), "connect");
  if (typed instanceof DatabaseConfigurationError) return failure(`cannot open the database at ${where}: ${withoutPrefix(typed.message)}`);
  return failure(`cannot open the database at ${where} (${describeConnectError(e)}); check that the server is running and reachable, and that ${CLI_URL_NAME} is right`);
}

function withoutPrefix(message: string): string {
  return message.replace(/^scm-token-service: /, "");
}

function connectHint(e: unknown): string | undefined {
  const code = (e as { code?: unknown })?.code;
  switch (code) {
    case "ER_BAD_DB_ERROR":
    case "3D000": // PostgreSQL: invalid_catalog_name
      return "create the database first (CREATE DATABASE …), then run: scm-token-service migrate run";
    case "ER_ACCESS_DENIED_ERROR":
    case "ER_DBACCESS_DENIED_ERROR":
    case "28P01": // PostgreSQL: invalid_password
    case "28000": // PostgreSQL: invalid_authorization_specification
      return `check the user name and password in ${CLI_URL_NAME}`;
    default:
      return undefined;
  }
}
