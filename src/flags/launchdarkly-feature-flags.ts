import { silentLogger, type Logger } from "../logger";
import { FLAG_NAMES, resolveFlags, type FeatureFlags, type TokenFlags } from "./feature-flags";

/**
 * The part of LaunchDarkly's server SDK client this adapter uses, so that any v9 `LDClient`
 * (`@launchdarkly/node-server-sdk`) fits and tests can pass one built on `TestData`.
 */
export interface LaunchDarklyClientLike {
  variation(key: string, context: { kind: "user"; key: string }, defaultValue: unknown): Promise<unknown>;
}

/**
 * Reads the flags from LaunchDarkly in a context keyed by the user id (`{ kind: "user", key: userId }`),
 * so operators can target users and roll out by percentage. The SDK answers from its in-memory
 * store; this adds no network round trip to a hand-out.
 *
 * @example
 * import { init } from "@launchdarkly/node-server-sdk";
 * const ld = init(process.env.LD_SDK_KEY!);
 * await ld.waitForInitialization({ timeout: 10 });
 * const flags = new LaunchDarklyFeatureFlags(ld, logger);
 */
export class LaunchDarklyFeatureFlags implements FeatureFlags {
  constructor(
    private readonly client: LaunchDarklyClientLike,
    private readonly logger: Logger = silentLogger,
  ) {}

  async getFlags(userId: string): Promise<TokenFlags> {
    const context = { kind: "user" as const, key: userId };
    // Defaults are undefined (the SDK answers null for a flag nobody created): resolveFlags treats
    // both as unset, quietly, and warns only about values that are set but invalid.
    const [opportunisticRefresh, workspaceStartLifetimeMinutes, horizonMinutes, drain, horizonMarginMinutes] = await Promise.all([
      this.client.variation(FLAG_NAMES.opportunisticRefresh, context, undefined),
      this.client.variation(FLAG_NAMES.workspaceStartLifetimeMinutes, context, undefined),
      this.client.variation(FLAG_NAMES.horizonMinutes, context, undefined),
      this.client.variation(FLAG_NAMES.drain, context, undefined),
      this.client.variation(FLAG_NAMES.horizonMarginMinutes, context, undefined),
    ]);
    return resolveFlags({ opportunisticRefresh, workspaceStartLifetimeMinutes, horizonMinutes, drain, horizonMarginMinutes }, this.logger);
  }
}
