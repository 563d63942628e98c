import { silentLogger, type Logger } from "../logger";
import { resolveFlags, type FeatureFlags, type RawFlagValues, type TokenFlags } from "./feature-flags";

/**
 * Flags from memory: for tests, the demo, and deployments without LaunchDarkly. Values are
 * validated like LaunchDarkly's (an invalid one falls back to the default with a warning).
 *
 * @example
 * const flags = new StaticFeatureFlags({ opportunisticRefresh: true });
 * flags.set({ workspaceStartLifetimeMinutes: 15 }, "user-42"); // only for user-42
 */
export class StaticFeatureFlags implements FeatureFlags {
  private readonly perUser = new Map<string, RawFlagValues>();

  constructor(
    private values: RawFlagValues = {},
    private readonly logger: Logger = silentLogger,
  ) {}

  /** Changes flag values for everyone, or for one user. Takes effect on the next hand-out. */
  set(values: RawFlagValues, userId?: string): void {
    if (userId === undefined) this.values = { ...this.values, ...values };
    else this.perUser.set(userId, { ...this.perUser.get(userId), ...values });
  }

  async getFlags(userId: string): Promise<TokenFlags> {
    return resolveFlags({ ...this.values, ...this.perUser.get(userId) }, this.logger);
  }
}
