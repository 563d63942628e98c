import { systemClock } from "./clock";
import { resolveParts } from "./di";
import { silentLogger } from "./logger";
import { openDataSource } from "./storage/data-source";
import { TokenStore } from "./storage/token-store";
import { TokenService } from "./token-service";
import type { TokenServiceOptions } from "./token-service-options";

/**
 * Builds a TokenService without a DI container. With `databaseUrl` (or with neither option: the
 * embedded in-memory database) it opens the database and runs the migrations; `service.close()`
 * closes it again. A `dataSource` you pass stays yours to close. Services sharing one
 * `metricsRegistry` share its metrics; `close()` removes them once the last of them closes.
 *
 * @example
 * const service = await createTokenService({
 *   databaseUrl: process.env.DATABASE_URL ?? "sqljs::memory:",
 *   providers: [new BitbucketServerProvider({ host: "bitbucket.example.com", clientId, clientSecret })],
 *   encryptionKeys: [{ id: "2026-01", key: process.env.TOKEN_KEY! }],
 * });
 */
export async function createTokenService(options: TokenServiceOptions): Promise<TokenService> {
  const parts = resolveParts(options);
  const logger = options.logger ?? silentLogger;
  let dataSource = options.dataSource;
  if (!dataSource) {
    try {
      dataSource = await openDataSource(options.databaseUrl ?? "sqljs::memory:", { poolSize: options.poolSize, logger, statementTimeoutMs: options.statementTimeoutMs });
    } catch (e) {
      parts.metrics.release(); // a failed start leaves nothing on the caller's registry
      throw e;
    }
  }
  const ownDataSource = options.dataSource ? undefined : dataSource;
  // close(): the metrics this service registered leave the registry (unless another service still uses them), and the database it opened is closed.
  const onClose = async () => {
    parts.metrics.release();
    if (ownDataSource?.isInitialized) await ownDataSource.destroy();
  };
  return new TokenService(
    new TokenStore(dataSource, { statementTimeoutMs: options.statementTimeoutMs, logger }),
    parts.crypto,
    options.providers,
    parts.flags,
    parts.metrics,
    options.clock ?? systemClock,
    logger,
    { ...parts.settings, onClose },
  );
}
