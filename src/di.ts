import type { ContainerModule } from "inversify";
import { Registry } from "prom-client";
import type { DataSource } from "typeorm";
import { systemClock } from "./clock";
import { KeyRing } from "./crypto/key-ring";
import { hostContainerModule, resolverOf } from "./di-inversify";
import { TYPES } from "./di-symbols";
import { ConfigurationError } from "./errors";
import { StaticFeatureFlags } from "./flags/static-feature-flags";
import { silentLogger } from "./logger";
import { TokenMetrics } from "./metrics/token-metrics";
import { DEFAULT_LEASE } from "./refresh-coordinator";
import { DEFAULT_RETRY } from "./refresh-with-retries";
import { TokenStore } from "./storage/token-store";
import { TokenCrypto } from "./token-crypto";
import { TokenService, type TokenServiceSettings } from "./token-service";
import type { TokenServiceOptions } from "./token-service-options";
import { checkLifetimeMinutes } from "./validation";

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
    bind(TYPES.TokenStore).toConstantValue(new TokenStore(options.dataSource, { statementTimeoutMs: options.statementTimeoutMs }));
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
  if (!Array.isArray(options.providers) || options.providers.length === 0) {
    throw new ConfigurationError("providers is empty: pass at least one provider, e.g. new BitbucketServerProvider({ host, clientId, clientSecret })");
  }
  const hosts = options.providers.map((p) => p.host);
  const duplicate = hosts.find((h, i) => hosts.indexOf(h) !== i);
  if (duplicate) throw new ConfigurationError(`two providers are configured for host ${duplicate}`);
  const crypto = new TokenCrypto(new KeyRing(options.encryptionKeys));
  const registry = options.metricsRegistry ?? new Registry();
  const logger = options.logger ?? silentLogger;
  let defaultLifetimeMinutes = 5;
  if (options.defaultLifetimeMinutes !== undefined) {
    try {
      checkLifetimeMinutes(options.defaultLifetimeMinutes, "defaultLifetimeMinutes");
    } catch (e) {
      throw new ConfigurationError((e as Error).message.replace(/^scm-token-service: /, ""));
    }
    defaultLifetimeMinutes = options.defaultLifetimeMinutes;
  }
  const retry = { ...DEFAULT_RETRY, ...options.retry };
  const lease = { ...DEFAULT_LEASE, ...options.lease };
  // A lease shorter than the refresh's retry budget could expire under a live holder and let a second
  // replica refresh the same token.
  const retryBudgetMs = retry.maxAttempts * retry.timeoutMs + (retry.maxAttempts - 1) * retry.maxDelayMs;
  if (lease.leaseMs <= retryBudgetMs) {
    throw new ConfigurationError(`lease.leaseMs (${lease.leaseMs}) must exceed the refresh retry budget (maxAttempts × timeoutMs + backoff = ${retryBudgetMs} ms); raise leaseMs or lower retry.timeoutMs/maxAttempts`);
  }
  return {
    crypto,
    flags: options.flags ?? new StaticFeatureFlags({}, logger),
    metrics: new TokenMetrics(registry, options.metricsPrefix ?? ""),
    registry,
    settings: {
      defaultLifetimeMinutes,
      retry,
      lease,
      drainPollMs: options.drainPollMs ?? 5_000,
    },
  };
}
