import type { ContainerModule } from "inversify";
import { Registry } from "prom-client";
import type { DataSource } from "typeorm";
import { checkServiceOptions } from "./check-service-options";
import { systemClock } from "./clock";
import { KeyRing } from "./crypto/key-ring";
import { hostContainerModule, resolverOf } from "./di-inversify";
import { TYPES } from "./di-symbols";
import { StaticFeatureFlags } from "./flags/static-feature-flags";
import { silentLogger } from "./logger";
import { TokenMetrics } from "./metrics/token-metrics";
import { TokenStore } from "./storage/token-store";
import { TokenCrypto } from "./token-crypto";
import { TokenService, type TokenServiceSettings } from "./token-service";
import type { TokenServiceOptions } from "./token-service-options";

export { TYPES };

/**
 * An inversify module that binds TokenService and its parts. The DataSource must be initialised
 * (and migrated) already: pass it as `options.dataSource`.
 *
 * Works with the host's inversify 6, 7 or 8 (an optional peer dependency, loaded only when this is
 * called: createTokenService needs no inversify). TokenService is bound with a factory that resolves
 * its parts from the container, so rebinding one of {@link TYPES} (e.g. Clock) before the first get
 * takes effect; the class itself carries no inversify decorators.
 *
 * @example
 * const container = new Container({ defaultScope: "Singleton" });
 * container.load(tokenServiceModule({ dataSource, providers, encryptionKeys, flags })); // inversify 7: await container.load(…)
 * const service = container.get(TokenService);
 */
export function tokenServiceModule(options: TokenServiceOptions & { dataSource: DataSource }): ContainerModule {
  const parts = resolveParts(options);
  return hostContainerModule((bind) => {
    bind(TYPES.DataSource).toConstantValue(options.dataSource);
    bind(TYPES.TokenStore).toConstantValue(new TokenStore(options.dataSource, { statementTimeoutMs: options.statementTimeoutMs, logger: options.logger ?? silentLogger }));
    bind(TYPES.TokenCrypto).toConstantValue(parts.crypto);
    bind(TYPES.Providers).toConstantValue(options.providers);
    bind(TYPES.FeatureFlags).toConstantValue(parts.flags);
    bind(TYPES.TokenMetrics).toConstantValue(parts.metrics);
    bind(TYPES.Clock).toConstantValue(options.clock ?? systemClock);
    bind(TYPES.Logger).toConstantValue(options.logger ?? silentLogger);
    bind(TYPES.Settings).toConstantValue(parts.settings);
    bind(TokenService)
      .toDynamicValue((context) => {
        const get = resolverOf(context);
        return new TokenService(get(TYPES.TokenStore), get(TYPES.TokenCrypto), get(TYPES.Providers), get(TYPES.FeatureFlags), get(TYPES.TokenMetrics), get(TYPES.Clock), get(TYPES.Logger), get(TYPES.Settings));
      })
      .inSingletonScope();
  });
}

/** Validates options and builds the parts that have no I/O. Fails at start-up, not on the first hand-out. */
export function resolveParts(options: TokenServiceOptions): { crypto: TokenCrypto; flags: StaticFeatureFlags | NonNullable<TokenServiceOptions["flags"]>; metrics: TokenMetrics; registry: Registry; settings: TokenServiceSettings } {
  const checked = checkServiceOptions(options);
  const crypto = new TokenCrypto(new KeyRing(options.encryptionKeys), checked.decryptedTokenCacheSize);
  const registry = options.metricsRegistry ?? new Registry();
  const logger = options.logger ?? silentLogger;
  return {
    crypto,
    flags: options.flags ?? new StaticFeatureFlags({}, logger),
    metrics: new TokenMetrics(registry, options.metricsPrefix ?? ""),
    registry,
    settings: {
      defaultLifetimeMinutes: checked.defaultLifetimeMinutes,
      defaultMaxWaitMs: checked.defaultMaxWaitMs,
      retry: checked.retry,
      lease: checked.lease,
      drainPollMs: checked.drainPollMs,
      legacyReplicas: checked.legacyReplicas,
    },
  };
}
