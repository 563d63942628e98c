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
 * closes it again. A `dataSource` you pass stays yours to close.
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
  const dataSource = options.dataSource ?? (await openDataSource(options.databaseUrl ?? "sqljs::memory:", { poolSize: options.poolSize, logger }));
  const onClose = options.dataSource ? undefined : async () => {
    if (dataSource.isInitialized) await dataSource.destroy();
  };
  return new TokenService(
    new TokenStore(dataSource, { statementTimeoutMs: options.statementTimeoutMs }),
    parts.crypto,
    options.providers,
    parts.flags,
    parts.metrics,
    options.clock ?? systemClock,
    logger,
    { ...parts.settings, onClose },
  );
}
