/** inversify service identifiers. Rebind any of them in tests (e.g. Clock, Providers, FeatureFlags). */
export const TYPES = {
  DataSource: Symbol.for("scm-token-service/DataSource"),
  TokenStore: Symbol.for("scm-token-service/TokenStore"),
  TokenCrypto: Symbol.for("scm-token-service/TokenCrypto"),
  Providers: Symbol.for("scm-token-service/Providers"),
  FeatureFlags: Symbol.for("scm-token-service/FeatureFlags"),
  TokenMetrics: Symbol.for("scm-token-service/TokenMetrics"),
  Clock: Symbol.for("scm-token-service/Clock"),
  Logger: Symbol.for("scm-token-service/Logger"),
  Settings: Symbol.for("scm-token-service/Settings"),
} as const;
