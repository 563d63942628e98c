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
  /**
   * Or a URL: `mysql://…`, `mariadb://…`, `postgres://…` (with the `pg` driver installed),
   * `sqljs::memory:` (default), `sqljs:/path/file.sqlite`. Migrations run on start. The server URLs
   * take TLS as `?sslmode=disable|allow|prefer|require|verify-ca|verify-full` and no other query
   * parameter (see dataSourceOptionsFromUrl); for other driver settings pass your own `dataSource`.
   */
  databaseUrl?: string;
  /** One provider per SCM host. */
  providers: ScmProvider[];
  /** Key ring for encryption at rest; the primary (or first) key encrypts. */
  encryptionKeys: EncryptionKey[];
  /** Default: StaticFeatureFlags with the defaults (opportunistic refresh on, horizon 20 min narrowed per hand-out kind to lifetime + 8 min, drain and early drain on). */
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
  /**
   * How long a hand-out may wait for other holders of a token that must be refreshed (drain), in ms,
   * when the call passes no `maxWaitMs` (default 600 000: 10 minutes, the longest reservation the default
   * lifetimes create; API handlers that cannot wait that long pass a smaller `maxWaitMs`, or hand out releasable tokens). A wait that would be longer fails at once
   * with TokenHeldError; pass a larger `maxWaitMs` per call (or Infinity here) to wait longer.
   */
  defaultMaxWaitMs?: number;
  /** While a refresh waits for holders (drain), re-check the entry this often, in ms (default 5000). */
  drainPollMs?: number;
  /** Connection pool size for databaseUrl (default 10). */
  poolSize?: number;
  /**
   * Deadline of every database statement, waiting for a pooled connection included, in ms (default
   * 10 000, real time). A database that keeps the connection open but never answers (a network
   * partition) then fails the call with a transient StorageError (driverCode "STATEMENT_TIMEOUT")
   * instead of hanging it. Keep it well below lease.leaseMs. On PostgreSQL, the connections of a
   * database the library opens from `databaseUrl` also get the server's own `statement_timeout`, one
   * second longer, so the server stops a statement the client gave up on (the migrations run without
   * it); a `dataSource` of your own keeps whatever your DataSource sets (pg's `statement_timeout`
   * in its `extra`).
   */
  statementTimeoutMs?: number;
  /**
   * Set to true while replicas of scm-token-service 0.1 use the same database (a rolling upgrade),
   * false (the default) once none is left. 0.1 replicas know only the entry row's reservation: they
   * do not see the holds that releasable hand-outs of this version write, and an opportunistic
   * refresh of theirs could revoke such a token mid-use. With this option a releasable hand-out also
   * reserves the entry row for its lifetime, as 0.1 expects, before it writes its hold (one more
   * UPDATE), and that reservation is not given back at release: during the upgrade a released token
   * becomes refreshable when the reservation ends, not at once.
   */
  legacyReplicas?: boolean;
  /**
   * How many decrypted access tokens to keep in memory, so that repeated hand-outs of a stored token
   * skip its AES-GCM decrypt (default 10 000; 0 keeps none). Keyed by user, host and ciphertext: a
   * refreshed or replaced token is never served from it, and a row read for the wrong user still
   * fails to decrypt. Refresh tokens are never kept. Set 0 if no plaintext token may stay in the
   * process's memory beyond the call that handed it out.
   */
  decryptedTokenCacheSize?: number;
}

/**
 * Every key of TokenServiceOptions: any other key is refused at start-up (a misspelt option would
 * otherwise be ignored). The type check below fails the build when an option is added to the
 * interface but not here.
 */
export const TOKEN_SERVICE_OPTION_KEYS = [
  "dataSource",
  "databaseUrl",
  "providers",
  "encryptionKeys",
  "flags",
  "metricsRegistry",
  "metricsPrefix",
  "clock",
  "logger",
  "defaultLifetimeMinutes",
  "retry",
  "lease",
  "defaultMaxWaitMs",
  "legacyReplicas",
  "drainPollMs",
  "poolSize",
  "statementTimeoutMs",
  "decryptedTokenCacheSize",
] as const satisfies ReadonlyArray<keyof TokenServiceOptions>;

type MissingOptionKeys = Exclude<keyof TokenServiceOptions, (typeof TOKEN_SERVICE_OPTION_KEYS)[number]>;
// A compile error here names an option missing from TOKEN_SERVICE_OPTION_KEYS.
const everyOptionListed: MissingOptionKeys extends never ? true : MissingOptionKeys = true;
void everyOptionListed;
