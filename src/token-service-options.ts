import type { DataSource } from "typeorm";
import type { Clock } from "./clock";
import type { EncryptionKey } from "./crypto/key-ring";
import type { FeatureFlags } from "./flags/feature-flags";
import type { Logger } from "./logger";
import type { ScmProvider } from "./providers/scm-provider";
import type { LeaseOptions } from "./refresh-coordinator";
import type { RetryOptions } from "./refresh-with-retries";
import type { Registry } from "prom-client";

/** Everything createTokenService() / tokenServiceModule() take. Only providers and encryptionKeys are required. */
export interface TokenServiceOptions {
  /** Your own initialised TypeORM DataSource (add `scmTokenServiceEntities` and `scmTokenServiceMigrations` to it). */
  dataSource?: DataSource;
  /** Or a URL: `mysql://…`, `mariadb://…`, `sqljs::memory:` (default), `sqljs:/path/file.sqlite`. Migrations run on start. */
  databaseUrl?: string;
  /** One provider per SCM host. */
  providers: ScmProvider[];
  /** Key ring for encryption at rest; the primary (or first) key encrypts. */
  encryptionKeys: EncryptionKey[];
  /** Default: StaticFeatureFlags with the defaults (opportunistic refresh off). */
  flags?: FeatureFlags;
  /** Default: a new, private Registry (read it back from `service.metricsRegistry`… or pass your own). */
  metricsRegistry?: Registry;
  /** Prefix for metric names, e.g. "gitpod_". */
  metricsPrefix?: string;
  clock?: Clock;
  /** pino-compatible logger; default silent. */
  logger?: Logger;
  /** Default hand-out lifetime in minutes (default 5). */
  defaultLifetimeMinutes?: number;
  retry?: Partial<RetryOptions>;
  lease?: Partial<LeaseOptions>;
  /** While a refresh waits for holders (drain), re-check the entry this often, in ms (default 5000). */
  drainPollMs?: number;
  /** Connection pool size for databaseUrl (default 10). */
  poolSize?: number;
  /**
   * Deadline of every database statement, waiting for a pooled connection included, in ms (default
   * 10 000, real time). A database that keeps the connection open but never answers (a network
   * partition) then fails the call with a transient StorageError (driverCode "STATEMENT_TIMEOUT")
   * instead of hanging it. Keep it well below lease.leaseMs.
   */
  statementTimeoutMs?: number;
}
