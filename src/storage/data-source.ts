import { closeSync, existsSync, openSync, unlinkSync } from "node:fs";
import { DataSource, MigrationExecutor, type DataSourceOptions, type QueryRunner } from "typeorm";
import { scmTokenServiceMigrations } from "../../migrations";
import { describeValue } from "../check-option";
import { ConfigurationError } from "../errors";
import { silentLogger, type Logger } from "../logger";
import { SecretEntry } from "../secrets/take-once/secret-entry.entity";
import { DEFAULT_MIGRATION_LOCK_TIMEOUT_MS, withMigrationLock } from "./migration-lock";
import { checkStatementTimeoutMs, serverStatementTimeoutMs } from "./sql-runner";
import { startupError, type StartupTarget } from "./startup-errors";
import { TokenEntry } from "./token-entry.entity";
import { TokenHold } from "./token-hold.entity";
import { TypeormLogger } from "./typeorm-logger";

/** The entities of the library, for your own DataSource's `entities`. */
export const scmTokenServiceEntities = [TokenEntry, TokenHold, SecretEntry];

const SCHEMES: Record<string, "mysql" | "mariadb" | "postgres" | undefined> = {
  "mysql:": "mysql",
  "mariadb:": "mariadb",
  "postgres:": "postgres",
  "postgresql:": "postgres",
};

/** Options of dataSourceOptionsFromUrl and openDataSource. */
export interface DataSourceUrlOptions {
  /** Connection pool size (MySQL/MariaDB/PostgreSQL; default 10). */
  poolSize?: number;
  /** Where TypeORM's own messages go (default: nowhere). TypeORM never prints to the console. */
  logger?: Logger;
  /**
   * The client-side deadline of the library's statements on this DataSource (TokenServiceOptions.
   * statementTimeoutMs; default 10 000). PostgreSQL: the connections get the server's own
   * `statement_timeout` one second above it, so the server also stops a statement the client gave
   * up on. MySQL/MariaDB and sql.js: not used here.
   */
  statementTimeoutMs?: number;
}

/** Options of openDataSource. */
export interface OpenDataSourceOptions extends DataSourceUrlOptions {
  /**
   * How long to wait for another process that is migrating the same database (replicas starting
   * together), in ms; default 120 000. After that, a MigrationLockTimeoutError (a transient StorageError).
   */
  migrationLockTimeoutMs?: number;
}

/**
 * Builds DataSource options from a URL:
 * - `mysql://user:pass@host:3306/db` (MySQL 8) or `mariadb://…` (MariaDB; TypeORM's "mariadb" type
 *   avoids phantom schema diffs there, see docs/stack-notes.md)
 * - `postgres://user:pass@host:5432/db` or `postgresql://…` (PostgreSQL, with the `pg` driver installed)
 * - on all three, `?sslmode=` as libpq spells it (see urlTls) and no other query parameter: for other
 *   driver settings, open your own DataSource and pass it as the `dataSource` option
 * - `sqljs::memory:` — the embedded database (sql.js, pure WebAssembly), in memory
 * - `sqljs:/path/to/file.sqlite` — the embedded database, saved to a file after every write
 *
 * @example
 * const ds = new DataSource(dataSourceOptionsFromUrl("mariadb://root@127.0.0.1:3306/tokens"));
 */
export function dataSourceOptionsFromUrl(url: string, extra: DataSourceUrlOptions = {}): DataSourceOptions {
  const common = {
    entities: scmTokenServiceEntities,
    migrations: scmTokenServiceMigrations,
    synchronize: false,
    logging: false,
    // TypeORM prints migration failures and slow queries to the console even with logging: false.
    logger: new TypeormLogger(extra.logger ?? silentLogger),
  } as const;
  if (url.startsWith("sqljs:")) {
    const location = url.slice("sqljs:".length);
    if (location === ":memory:" || location === "") return { type: "sqljs", ...common };
    return { type: "sqljs", location, autoSave: true, ...common };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigurationError(`databaseUrl is not a URL; use mysql://user:pass@host:3306/db, mariadb://…, postgres://user:pass@host:5432/db, or sqljs::memory:`);
  }
  const type = SCHEMES[parsed.protocol];
  if (!type) throw new ConfigurationError(`databaseUrl scheme "${parsed.protocol}" is not supported; use mysql:, mariadb:, postgres:, postgresql: or sqljs:`);
  const database = decodeUrlPart(parsed.pathname.replace(/^\//, ""), "database name");
  if (!database) throw new ConfigurationError("databaseUrl names no database: add it as the path, e.g. mysql://root@127.0.0.1:3306/tokens");
  const server = {
    host: parsed.hostname,
    username: decodeUrlPart(parsed.username, "user name"),
    password: decodeUrlPart(parsed.password, "password"),
    database,
  };
  if (type === "postgres") {
    return {
      type,
      ...server,
      ...urlTls(parsed, "pg"),
      port: parsed.port ? Number(parsed.port) : 5432,
      // No time-zone setting needed: the date columns are timestamp without time zone holding UTC (postgres-dialect.ts).
      poolSize: extra.poolSize ?? 10,
      applicationName: "scm-token-service",
      // pg sends it when each connection starts; the migration lock lifts it for the migrations (migration-lock.ts).
      extra: { statement_timeout: serverStatementTimeoutMs(checkStatementTimeoutMs(extra.statementTimeoutMs)) },
      ...common,
    };
  }
  return {
    type,
    ...server,
    ...urlTls(parsed, "mysql2"),
    port: parsed.port ? Number(parsed.port) : 3306,
    // Store and compare UTC; with the default (local) zone other clients see shifted times.
    timezone: "Z",
    extra: { connectionLimit: extra.poolSize ?? 10 },
    ...common,
  };
}

/** libpq's sslmode values, in its order (least to most protection). */
const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;
type SslMode = (typeof SSL_MODES)[number];
/** The one query parameter databaseUrl takes, with its values. */
export const SSL_MODE_PARAMETER = `sslmode=${SSL_MODES.join("|")}`;

/**
 * A databaseUrl query parameter the library would not apply: named, never its value (a misplaced
 * parameter may hold a password). `parameter` is cut to 40 characters.
 */
export class UnsupportedUrlParameterError extends ConfigurationError {
  constructor(
    readonly parameter: string,
    /** The URL's scheme, e.g. "mysql:". */
    readonly scheme: string,
  ) {
    super(
      `databaseUrl: the query parameter "${parameter}" is not supported on ${scheme}// URLs; the only one is ${SSL_MODE_PARAMETER} (for other driver settings, open your own DataSource and pass it as the dataSource option)`,
      "databaseUrl",
    );
  }
}

/** TLS for pg (`ssl` of its Pool) or mysql2 (`ssl` of its connections; `verifyIdentity` is its host-name check). */
type TlsOption = boolean | { rejectUnauthorized: boolean; checkServerIdentity?: () => undefined; verifyIdentity?: boolean };

/**
 * The TLS options of a URL's `sslmode`, libpq's values and meanings on both drivers:
 * - none given: no `ssl` option, so the driver's default applies (pg: PGSSLMODE from the environment,
 *   else no TLS; mysql2: no TLS);
 * - `disable`: no TLS;
 * - `allow`, `prefer`: no TLS either. libpq (and mysql's PREFERRED) would try one and fall back to
 *   the other; neither pg nor mysql2 can fall back, and a server without TLS would refuse a TLS-only
 *   attempt. Use `require` for TLS.
 * - `require`: TLS, the certificate not verified (encryption against eavesdropping, not against a
 *   server in the middle);
 * - `verify-ca`: TLS, the certificate chain verified against Node's CA store (add a private CA with
 *   NODE_EXTRA_CA_CERTS), the host name not checked;
 * - `verify-full`: TLS, chain and host name verified.
 * Any other value, a repeated sslmode or any other query parameter is a ConfigurationError: a
 * parameter the library would ignore (sslrootcert, connect_timeout, charset, …) must not look applied.
 */
function urlTls(parsed: URL, driver: "pg" | "mysql2"): { ssl?: TlsOption } {
  for (const name of new Set(parsed.searchParams.keys())) {
    if (name !== "sslmode") throw new UnsupportedUrlParameterError(name.slice(0, 40), parsed.protocol);
  }
  const modes = parsed.searchParams.getAll("sslmode");
  if (modes.length === 0) return {};
  if (modes.length > 1) throw new ConfigurationError(`databaseUrl: sslmode is given ${modes.length} times; give it once: ${SSL_MODE_PARAMETER}`, "databaseUrl");
  const mode = modes[0] as SslMode;
  switch (mode) {
    case "disable":
    case "allow":
    case "prefer":
      return { ssl: false };
    case "require":
      return { ssl: { rejectUnauthorized: false } };
    case "verify-ca":
      // mysql2 checks the host name only when asked (verifyIdentity); pg (Node's TLS) always, unless told not to.
      return { ssl: driver === "pg" ? { rejectUnauthorized: true, checkServerIdentity: () => undefined } : { rejectUnauthorized: true } };
    case "verify-full":
      return { ssl: driver === "pg" ? { rejectUnauthorized: true } : { rejectUnauthorized: true, verifyIdentity: true } };
    default:
      throw new ConfigurationError(`databaseUrl: sslmode ${describeValue(modes[0])} is not supported; use ${SSL_MODE_PARAMETER}`, "databaseUrl");
  }
}

/** A percent-decoded part of the URL; a malformed escape is a ConfigurationError that does not repeat the part (it may be the password). */
function decodeUrlPart(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ConfigurationError(`databaseUrl: the ${what} holds a malformed %-escape; percent-encode special characters (e.g. encodeURIComponent(password))`);
  }
}

/**
 * Opens a DataSource for a URL and runs the library's migrations. Replicas that start together
 * migrate the schema once: on MySQL/MariaDB the migrations run under a named database lock
 * (GET_LOCK("scm_token_service_migrations")), on PostgreSQL under an advisory lock, the others wait
 * for it (bounded by `migrationLockTimeoutMs`) and then find nothing pending.
 *
 * Every failure is a TokenServiceError that says what to do, never a raw driver error: a server that
 * does not answer is a transient StorageError (driverCode ECONNREFUSED, …); a wrong password, a
 * missing database or an unwritable embedded file is a DatabaseConfigurationError. Messages never
 * contain the password.
 *
 * @example
 * const dataSource = await openDataSource(process.env.DATABASE_URL!, { poolSize: 20, logger });
 */
export async function openDataSource(url: string, options: OpenDataSourceOptions = {}): Promise<DataSource> {
  const lockTimeoutMs = options.migrationLockTimeoutMs ?? DEFAULT_MIGRATION_LOCK_TIMEOUT_MS;
  if (typeof lockTimeoutMs !== "number" || !Number.isFinite(lockTimeoutMs) || lockTimeoutMs < 0) {
    throw new ConfigurationError(`migrationLockTimeoutMs must be a number of milliseconds >= 0 (got ${String(lockTimeoutMs)})`);
  }
  const dataSourceOptions = dataSourceOptionsFromUrl(url, options);
  const target = startupTarget(url, dataSourceOptions);
  if (dataSourceOptions.type === "sqljs" && dataSourceOptions.location) checkEmbeddedFile(dataSourceOptions.location, target);
  const ds = new DataSource(dataSourceOptions);
  try {
    await ds.initialize();
  } catch (e) {
    throw startupError(e, target, "connect");
  }
  try {
    const executed = await runScmTokenServiceMigrations(ds, lockTimeoutMs);
    if (executed.length > 0) (options.logger ?? silentLogger).info({ migrations: executed }, "scm-token-service migrated the database");
  } catch (e) {
    if (ds.isInitialized) await ds.destroy().catch(() => undefined);
    throw startupError(e, target, "migrate");
  }
  return ds;
}

/**
 * Runs the library's pending migrations on an initialised DataSource under the migration lock (see
 * openDataSource); for a DataSource of your own. Resolves with the names of the migrations it ran
 * (none when another replica got there first).
 */
export async function runScmTokenServiceMigrations(dataSource: DataSource, lockTimeoutMs = DEFAULT_MIGRATION_LOCK_TIMEOUT_MS): Promise<string[]> {
  return withMigrationLock(dataSource, lockTimeoutMs, async (runner: QueryRunner | undefined) => {
    // On the runner that holds the lock: a pool connection could belong to anyone between two statements.
    const executor = new MigrationExecutor(dataSource, runner);
    executor.transaction = "each";
    return (await executor.executePendingMigrations()).map((m) => m.name);
  });
}

/** Where `url` leads, for startupError's messages; `urlName`: how they name the URL (default "databaseUrl"). */
export function startupTarget(url: string, options: DataSourceOptions, urlName?: string): StartupTarget {
  if (options.type === "sqljs") return { kind: "embedded", redactedUrl: url, location: options.location ?? ":memory:", urlName };
  const o = options as { host?: string; port?: number; database?: string; password?: string };
  const parsed = new URL(url);
  if (parsed.password) parsed.password = "***";
  return { kind: "server", redactedUrl: parsed.toString(), host: o.host, port: o.port, database: o.database, password: o.password || undefined, urlName };
}

/**
 * sql.js writes its file only after the first write, deep inside the migrations; finding out up front
 * gives the real file-system code (ENOENT, ENOTDIR, EACCES, …) and a clear message.
 */
function checkEmbeddedFile(location: string, target: StartupTarget): void {
  try {
    if (existsSync(location)) {
      closeSync(openSync(location, "r+"));
      return;
    }
    closeSync(openSync(location, "wx"));
    unlinkSync(location);
  } catch (e) {
    if ((e as { code?: unknown }).code === "EEXIST") return; // another process created it meanwhile
    throw startupError(e, target, "connect");
  }
}
