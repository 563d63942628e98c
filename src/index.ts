// No `import "reflect-metadata"`: TypeORM loads it itself, and the library's own classes need no
// decorator metadata (entity columns are typed explicitly; TokenService has no inversify decorators).

export { createTokenService } from "./create-token-service";
export { tokenServiceModule, TYPES } from "./di";
export { TokenService, type GetTokenOptions, type TokenServiceSettings } from "./token-service";
export type { TokenServiceOptions } from "./token-service-options";
export { Token, type HandOutRef, type ReuseMode, type StoreTokenInput } from "./token";
export {
  TokenServiceError,
  InvalidArgumentError,
  ReauthorizationRequiredError,
  ScmUnavailableError,
  ScmResponseError,
  TokenHeldError,
  DecryptionError,
  ConfigurationError,
  RefreshInProgressError,
  StorageError,
  AuthorizationStateError,
  AuthorizationDeniedError,
  AuthorizationCodeRejectedError,
  type TokenServiceErrorCode,
  type ReauthorizationReason,
  type AuthorizationStateReason,
} from "./errors";
export { ScmConnector, type ScmConnectorOptions, type StartedAuthorization, type ConnectedToken } from "./oauth/scm-connector";
export type { AuthorizationCallback, AuthorizationCallbackParams } from "./oauth/authorization-callback";
export type { DisconnectResult, HostDisconnect, RevocationResult } from "./oauth/disconnect";
export { decide, type Decision, type EntryState, type HandOutRequest, type RefreshPolicy, type ProviderTraits, type OpportunisticLabel } from "./refresh-policy";
export { BitbucketServerProvider } from "./providers/bitbucket-server-provider";
export { GitLabProvider, type GitLabProviderOptions } from "./providers/gitlab-provider";
export { GitHubProvider, type GitHubProviderOptions, type GitHubTokenKind } from "./providers/github-provider";
export { BitbucketCloudProvider, type BitbucketCloudProviderOptions } from "./providers/bitbucket-cloud-provider";
export { OAuth2Provider, type OAuth2ProviderOptions } from "./providers/oauth2-provider";
export type {
  ScmProvider,
  RefreshedToken,
  RefreshContext,
  AuthorizingScmProvider,
  AuthorizationUrlRequest,
  CodeExchangeRequest,
  RevocationCapability,
  TokensToRevoke,
} from "./providers/scm-provider";
export { RefreshRejectedError, TransientScmError, isAuthorizingProvider } from "./providers/scm-provider";
export type { ScopeSeparator } from "./providers/authorization-endpoint";
export type { OAuthClientOptions, RejectedRefreshTokenError } from "./providers/oauth-token-endpoint";
export { FLAG_NAMES, DEFAULT_FLAGS, resolveFlags, type FeatureFlags, type TokenFlags, type RawFlagValues, type FlagValues, type FlagName } from "./flags/feature-flags";
export { StaticFeatureFlags } from "./flags/static-feature-flags";
export { LaunchDarklyFeatureFlags, type LaunchDarklyClientLike } from "./flags/launchdarkly-feature-flags";
export { TokenMetrics, type HandOutResult } from "./metrics/token-metrics";
export { KeyRing, type EncryptionKey } from "./crypto/key-ring";
export { systemClock, type Clock } from "./clock";
export { silentLogger, type Logger } from "./logger";
export {
  dataSourceOptionsFromUrl,
  openDataSource,
  runScmTokenServiceMigrations,
  scmTokenServiceEntities,
  type DataSourceUrlOptions,
  type OpenDataSourceOptions,
} from "./storage/data-source";
export { MIGRATION_LOCK_NAME, MigrationLockTimeoutError } from "./storage/migration-lock";
export { DatabaseConfigurationError } from "./storage/startup-errors";
export { scmTokenServiceMigrations } from "../migrations";
export { TokenEntry } from "./storage/token-entry.entity";
export { DEFAULT_RETRY, type RetryOptions } from "./refresh-with-retries";
export { DEFAULT_LEASE, type LeaseOptions } from "./refresh-coordinator";
export * from "./secrets";
export * from "./broker";
