import { InvalidArgumentError } from "../errors";
import { silentLogger, type Logger } from "../logger";
import { resolveFlags, toRawFlagValues, type FeatureFlags, type FlagValues, type RawFlagValues, type TokenFlags } from "./feature-flags";

/**
 * Flags from memory: for tests, the demo, and deployments without LaunchDarkly. Keys are the flag
 * names (`opportunistic_token_refresh`, as in LaunchDarkly) or the TokenFlags keys
 * (`opportunisticRefresh`); an unknown key throws a ConfigurationError. Values are validated like
 * LaunchDarkly's (an invalid one falls back to the default with a warning).
 *
 * @example
 * const flags = new StaticFeatureFlags({ opportunistic_token_refresh: true });
 * flags.set({ workspaceStartLifetimeMinutes: 15 }, "user-42"); // only for user-42
 */
export class StaticFeatureFlags implements FeatureFlags {
  private readonly perUser = new Map<string, RawFlagValues>();
  private values: RawFlagValues;
  /**
   * The resolved flags, by user (with flags of their own) or for everyone else, until the next set():
   * resolving validates every value, and getFlags runs on every hand-out. Frozen, as they are shared.
   */
  private readonly resolved = new Map<string, Readonly<TokenFlags>>();
  private resolvedForEveryone: Readonly<TokenFlags> | undefined;

  constructor(
    values: FlagValues = {},
    private readonly logger: Logger = silentLogger,
  ) {
    this.values = toRawFlagValues(values);
  }

  /** Changes flag values for everyone, or for one user. Takes effect on the next hand-out. */
  set(values: FlagValues, userId?: string): void {
    const raw = toRawFlagValues(values);
    if (userId !== undefined && (typeof userId !== "string" || userId.length === 0)) {
      throw new InvalidArgumentError("userId", "userId must be a non-empty string (or omitted, to set the flags for everyone)");
    }
    if (userId === undefined) this.values = { ...this.values, ...raw };
    else this.perUser.set(userId, { ...this.perUser.get(userId), ...raw });
    this.resolved.clear();
    this.resolvedForEveryone = undefined;
  }

  async getFlags(userId: string): Promise<TokenFlags> {
    const own = this.perUser.get(userId);
    if (own === undefined) return (this.resolvedForEveryone ??= Object.freeze(resolveFlags(this.values, this.logger)));
    let flags = this.resolved.get(userId);
    if (flags === undefined) this.resolved.set(userId, (flags = Object.freeze(resolveFlags({ ...this.values, ...own }, this.logger))));
    return flags;
  }
}
