import { DataSource, type DataSourceOptions } from "typeorm";
import { scmTokenServiceMigrations } from "../../migrations";
import { ConfigurationError } from "../errors";
import { SecretEntry } from "../secrets/take-once/secret-entry.entity";
import { TokenEntry } from "./token-entry.entity";
import { TokenHold } from "./token-hold.entity";

/** The entities of the library, for your own DataSource's `entities`. */
export const scmTokenServiceEntities = [TokenEntry, TokenHold, SecretEntry];

/**
 * Builds DataSource options from a URL:
 * - `mysql://user:pass@host:3306/db` (MySQL 8) or `mariadb://…` (MariaDB; TypeORM's "mariadb" type
 *   avoids phantom schema diffs there, see docs/stack-notes.md)
 * - `sqljs::memory:` — the embedded database (sql.js, pure WebAssembly), in memory
 * - `sqljs:/path/to/file.sqlite` — the embedded database, saved to a file after every write
 *
 * @example
 * const ds = new DataSource(dataSourceOptionsFromUrl("mariadb://root@127.0.0.1:3306/tokens"));
 */
export function dataSourceOptionsFromUrl(url: string, extra: { poolSize?: number } = {}): DataSourceOptions {
  const common = { entities: scmTokenServiceEntities, migrations: scmTokenServiceMigrations, synchronize: false, logging: false } as const;
  if (url.startsWith("sqljs:")) {
    const location = url.slice("sqljs:".length);
    if (location === ":memory:" || location === "") return { type: "sqljs", ...common };
    return { type: "sqljs", location, autoSave: true, ...common };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigurationError(`databaseUrl is not a URL; use mysql://user:pass@host:3306/db, mariadb://…, or sqljs::memory:`);
  }
  const type = parsed.protocol === "mariadb:" ? "mariadb" : parsed.protocol === "mysql:" ? "mysql" : undefined;
  if (!type) throw new ConfigurationError(`databaseUrl scheme "${parsed.protocol}" is not supported; use mysql:, mariadb: or sqljs:`);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
  if (!database) throw new ConfigurationError("databaseUrl names no database: add it as the path, e.g. mysql://root@127.0.0.1:3306/tokens");
  return {
    type,
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : 3306,
    username: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database,
    // Store and compare UTC; with the default (local) zone other clients see shifted times.
    timezone: "Z",
    extra: { connectionLimit: extra.poolSize ?? 10 },
    ...common,
  };
}

/** Opens a DataSource for a URL and runs the library's migrations. */
export async function openDataSource(url: string, extra: { poolSize?: number } = {}): Promise<DataSource> {
  const ds = new DataSource(dataSourceOptionsFromUrl(url, extra));
  await ds.initialize();
  await ds.runMigrations({ transaction: "each" });
  return ds;
}
