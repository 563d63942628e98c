import { checkInterface, checkNumberOption, checkObjectOption, describeValue, type NumberRange } from "./check-option";
import { ConfigurationError } from "./errors";
import type { ScmProvider } from "./providers/scm-provider";
import { canonicalHost } from "./providers/normalize-host";
import { DEFAULT_LEASE, type LeaseOptions } from "./refresh-coordinator";
import { DEFAULT_RETRY, type RetryOptions } from "./refresh-with-retries";
import { DEFAULT_DECRYPTED_TOKEN_CACHE_SIZE } from "./token-crypto";
import { TOKEN_SERVICE_OPTION_KEYS, type TokenServiceOptions } from "./token-service-options";
import { LIFETIME_MINUTES, MAX_WAIT_MS } from "./validation";

/** The checked numbers of TokenServiceOptions, defaults applied. */
export interface CheckedServiceOptions {
  defaultLifetimeMinutes: number;
  defaultMaxWaitMs: number;
  drainPollMs: number;
  poolSize: number | undefined;
  legacyReplicas: boolean;
  decryptedTokenCacheSize: number;
  retry: RetryOptions;
  lease: LeaseOptions;
}

/** Defaults of the numeric options (retry and lease have theirs beside their code). */
export const SERVICE_DEFAULTS = {
  defaultLifetimeMinutes: 5,
  /** A hand-out waits at most this long for holders unless the call passes maxWaitMs. */
  // The longest reservation the defaults create (the workspace-start lifetime): with default lifetimes no
  // hand-out fails for being held too long, and none waits longer than this (the simulation: 0 failed).
  defaultMaxWaitMs: 600_000,
  drainPollMs: 5_000,
} as const;

const MS_PER_HOUR = 3_600_000;

const RETRY_RANGES: Record<keyof RetryOptions, NumberRange> = {
  maxAttempts: { min: 1, max: 20, integer: true },
  baseDelayMs: { min: 0, max: 60_000, unit: "milliseconds" },
  maxDelayMs: { min: 0, max: 600_000, unit: "milliseconds" },
  timeoutMs: { min: 1, max: 600_000, unit: "milliseconds" },
};

const LEASE_RANGES: Record<keyof LeaseOptions, NumberRange> = {
  leaseMs: { min: 1_000, max: MS_PER_HOUR, unit: "milliseconds" },
  waitForOtherMs: { min: 0, max: MS_PER_HOUR, unit: "milliseconds" },
};

/**
 * Checks every option of createTokenService / tokenServiceModule before anything is opened: an
 * unknown key, a value of the wrong type or out of range throws a ConfigurationError whose `option`
 * names it (e.g. "retry.maxAttempts", "providers[1]"). Provider hosts are compared in canonical form.
 */
export function checkServiceOptions(options: TokenServiceOptions): CheckedServiceOptions {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new ConfigurationError(`options must be an object { providers, encryptionKeys, … }, got ${describeValue(options)}`, "options");
  }
  checkObjectOption(options, "options", TOKEN_SERVICE_OPTION_KEYS);
  checkProviders(options.providers);
  checkInterface(options.dataSource, "dataSource", ["query", "getRepository"], "an initialised TypeORM DataSource");
  checkInterface(options.logger, "logger", ["debug", "info", "warn", "error"], "a pino-compatible logger");
  checkInterface(options.clock, "clock", ["now", "sleep"], "a Clock { now(), sleep(ms) }");
  checkInterface(options.flags, "flags", ["getFlags"], "a FeatureFlags (StaticFeatureFlags, LaunchDarklyFeatureFlags, or your own getFlags(userId))");
  checkInterface(options.metricsRegistry, "metricsRegistry", ["registerMetric", "metrics"], "a prom-client Registry");
  if (options.metricsPrefix !== undefined && typeof options.metricsPrefix !== "string") {
    throw new ConfigurationError(`metricsPrefix must be a string such as "gitpod_" (or omitted), got ${describeValue(options.metricsPrefix)}`, "metricsPrefix");
  }
  if (options.databaseUrl !== undefined && typeof options.databaseUrl !== "string") {
    throw new ConfigurationError(`databaseUrl must be a string such as "mysql://user:password@host:3306/db" or "sqljs::memory:", got ${describeValue(options.databaseUrl)}`, "databaseUrl");
  }

  if (options.legacyReplicas !== undefined && typeof options.legacyReplicas !== "boolean") {
    throw new ConfigurationError(`legacyReplicas must be true or false (true only while scm-token-service 0.1 replicas share the database), got ${describeValue(options.legacyReplicas)}`, "legacyReplicas");
  }
  const numbers = (value: unknown, option: string, range: NumberRange, fallback: number) => (value === undefined ? fallback : checkNumberOption(value, option, range));
  const retry = { ...DEFAULT_RETRY };
  const givenRetry = checkObjectOption(options.retry, "retry", Object.keys(RETRY_RANGES));
  for (const key of Object.keys(RETRY_RANGES) as Array<keyof RetryOptions>) retry[key] = numbers(givenRetry[key], `retry.${key}`, RETRY_RANGES[key], DEFAULT_RETRY[key]);
  const lease = { ...DEFAULT_LEASE };
  const givenLease = checkObjectOption(options.lease, "lease", Object.keys(LEASE_RANGES));
  for (const key of Object.keys(LEASE_RANGES) as Array<keyof LeaseOptions>) lease[key] = numbers(givenLease[key], `lease.${key}`, LEASE_RANGES[key], DEFAULT_LEASE[key]);

  // A lease shorter than the refresh's retry budget could expire under a live holder and let a second
  // replica refresh the same token.
  const retryBudgetMs = retry.maxAttempts * retry.timeoutMs + (retry.maxAttempts - 1) * retry.maxDelayMs;
  if (lease.leaseMs <= retryBudgetMs) {
    throw new ConfigurationError(
      `lease.leaseMs (${lease.leaseMs}) must exceed the refresh retry budget (maxAttempts × timeoutMs + backoff = ${retryBudgetMs} ms); raise leaseMs or lower retry.timeoutMs/maxAttempts`,
      "lease.leaseMs",
    );
  }

  return {
    defaultLifetimeMinutes: numbers(options.defaultLifetimeMinutes, "defaultLifetimeMinutes", LIFETIME_MINUTES, SERVICE_DEFAULTS.defaultLifetimeMinutes),
    defaultMaxWaitMs: numbers(options.defaultMaxWaitMs, "defaultMaxWaitMs", MAX_WAIT_MS, SERVICE_DEFAULTS.defaultMaxWaitMs),
    drainPollMs: numbers(options.drainPollMs, "drainPollMs", { min: 1, max: MS_PER_HOUR, unit: "milliseconds" }, SERVICE_DEFAULTS.drainPollMs),
    poolSize: options.poolSize === undefined ? undefined : checkNumberOption(options.poolSize, "poolSize", { min: 1, max: 1000, integer: true }),
    legacyReplicas: options.legacyReplicas === true,
    decryptedTokenCacheSize: numbers(options.decryptedTokenCacheSize, "decryptedTokenCacheSize", { min: 0, max: 1_000_000, integer: true }, DEFAULT_DECRYPTED_TOKEN_CACHE_SIZE),
    retry,
    lease,
  };
}

function checkProviders(providers: unknown): asserts providers is ScmProvider[] {
  if (!Array.isArray(providers) || providers.length === 0) {
    throw new ConfigurationError("providers is empty: pass at least one provider, e.g. new BitbucketServerProvider({ host, clientId, clientSecret })", "providers");
  }
  const seen = new Map<string, number>();
  providers.forEach((p: unknown, i) => {
    const option = `providers[${i}]`;
    const provider = p as Partial<ScmProvider> | null;
    if (typeof provider !== "object" || provider === null || typeof provider.host !== "string" || typeof provider.refresh !== "function") {
      throw new ConfigurationError(`${option} must be a provider (e.g. new GitLabProvider({ host, clientId, clientSecret })), got ${describeValue(p)}`, option);
    }
    const host = canonicalHost(provider.host);
    if (host !== provider.host) {
      // The service looks providers up by the canonical host; the shipped providers store it so.
      throw new ConfigurationError(`${option}.host must be in canonical form (lower case, no surrounding spaces, no trailing dot): use ${JSON.stringify(host)}`, `${option}.host`);
    }
    const earlier = seen.get(host);
    if (earlier !== undefined) throw new ConfigurationError(`two providers are configured for host ${host} (providers[${earlier}] and ${option}); keep one`, option);
    seen.set(host, i);
  });
}

/** An optional collaborator must have the methods the service calls. */
