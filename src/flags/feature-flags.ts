import { ConfigurationError } from "../errors";
import type { Logger } from "../logger";

/** The values the service uses for one user, already validated. */
export interface TokenFlags {
  /** `opportunistic_token_refresh` (boolean, default true; false switches opportunistic refresh off). */
  opportunisticRefresh: boolean;
  /** `workspace_start_scm_access_token_lifetime` (minutes, default 10, 1/60 (one second) ..1440). */
  workspaceStartLifetimeMinutes: number;
  /** `opportunistic_token_refresh_horizon_minutes` (default 20; 0 = no horizon, Gitpod's rule). undefined = no horizon. */
  horizonMinutes: number | undefined;
  /** `token_refresh_drain` (boolean, default true). */
  drain: boolean;
  /**
   * `opportunistic_token_refresh_horizon_margin_minutes` (default 8, 0..1440; 0 = one horizon for every
   * hand-out): a hand-out's horizon is min(horizon, its lifetime + this margin), so a 5-minute API
   * hand-out refreshes from 13 minutes left, a 10-minute workspace start from 18. undefined = off.
   */
  horizonMarginMinutes: number | undefined;
}

const NAMES = {
  opportunisticRefresh: "opportunistic_token_refresh",
  workspaceStartLifetimeMinutes: "workspace_start_scm_access_token_lifetime",
  horizonMinutes: "opportunistic_token_refresh_horizon_minutes",
  drain: "token_refresh_drain",
  horizonMarginMinutes: "opportunistic_token_refresh_horizon_margin_minutes",
} as const satisfies Record<keyof TokenFlags, string>;

/**
 * Flag names, as operators create them in LaunchDarkly, keyed by the TokenFlags field they set.
 * `Object.entries(FLAG_NAMES)` lists each flag once.
 */
export const FLAG_NAMES: typeof NAMES & {
  /** @deprecated Use FLAG_NAMES.horizonMinutes (the TokenFlags key). */
  readonly horizon: typeof NAMES.horizonMinutes;
  /** @deprecated Use FLAG_NAMES.workspaceStartLifetimeMinutes (the TokenFlags key). */
  readonly workspaceStartLifetime: typeof NAMES.workspaceStartLifetimeMinutes;
} = Object.freeze(
  Object.defineProperties(
    { ...NAMES },
    {
      // The names of earlier versions; not enumerable, so iterating FLAG_NAMES sees each flag once.
      horizon: { value: NAMES.horizonMinutes, enumerable: false },
      workspaceStartLifetime: { value: NAMES.workspaceStartLifetimeMinutes, enumerable: false },
    },
  ) as typeof NAMES & { readonly horizon: typeof NAMES.horizonMinutes; readonly workspaceStartLifetime: typeof NAMES.workspaceStartLifetimeMinutes },
);

/** A flag's own name, e.g. "opportunistic_token_refresh". */
export type FlagName = (typeof NAMES)[keyof TokenFlags];

export const DEFAULT_FLAGS: TokenFlags = {
  opportunisticRefresh: true,
  workspaceStartLifetimeMinutes: 10,
  horizonMinutes: 20,
  drain: true,
  horizonMarginMinutes: 8,
};

/** Raw flag values as a flag system returns them (anything, since operators type them in a UI). */
export type RawFlagValues = { [K in keyof TokenFlags]?: unknown };

/** Flag values keyed by the TokenFlags key or by the flag's own name (as in the README's flag table). */
export type FlagValues = RawFlagValues & { [N in FlagName]?: unknown };

/**
 * Where the service reads per-user switches from. One call per hand-out, so an implementation
 * must answer from memory (LaunchDarkly's SDK does).
 */
export interface FeatureFlags {
  getFlags(userId: string): Promise<TokenFlags>;
}

const KEY_OF_NAME = new Map<string, keyof TokenFlags>(Object.entries(NAMES).map(([key, name]) => [name, key as keyof TokenFlags]));
const KEYS = Object.keys(NAMES) as Array<keyof TokenFlags>;

/**
 * Flag values in either spelling → TokenFlags keys. An unknown key is a typo that would be ignored
 * silently, and one flag given under both spellings with different values is ambiguous: both throw
 * a ConfigurationError naming the key.
 */
export function toRawFlagValues(values: unknown, option = "flags"): RawFlagValues {
  if (values === undefined) return {};
  if (typeof values !== "object" || values === null || Array.isArray(values)) {
    throw new ConfigurationError(`${option} must be an object of flag values, e.g. { opportunistic_token_refresh: true }`, option);
  }
  const raw: Record<string, unknown> = {};
  for (const [given, value] of Object.entries(values)) {
    const key = (KEYS as string[]).includes(given) ? (given as keyof TokenFlags) : KEY_OF_NAME.get(given);
    if (key === undefined) {
      throw new ConfigurationError(
        `${option}.${given} is not a feature flag; use a flag name (${Object.values(NAMES).join(", ")}) or its TokenFlags key (${KEYS.join(", ")})`,
        `${option}.${given}`,
      );
    }
    if (key in raw && !Object.is(raw[key], value)) {
      throw new ConfigurationError(`${option} sets ${NAMES[key]} twice (as ${key} and ${NAMES[key]}) with different values; keep one`, `${option}.${given}`);
    }
    raw[key] = value;
  }
  return raw as RawFlagValues;
}

const MAX_MINUTES = 24 * 60;
const MIN_LIFETIME_MINUTES = 1 / 60;

/**
 * Turns raw values into usable ones. Unset (undefined, or null — what LaunchDarkly answers for a
 * flag nobody created) is the default, quietly. An invalid value (wrong type, NaN, 0 or negative
 * lifetime, more than 24 h) falls back to the default with a warning — once per flag and value for
 * each logger, since the same bad value comes back on every hand-out: a typo in a flag must not
 * break hand-outs, nor flood the log.
 */
export function resolveFlags(raw: RawFlagValues, logger: Logger): TokenFlags {
  const invalid = <K extends keyof TokenFlags>(key: K, value: unknown): TokenFlags[K] => {
    warnOnce(logger, NAMES[key], value, DEFAULT_FLAGS[key]);
    return DEFAULT_FLAGS[key];
  };

  const bool = (key: "opportunisticRefresh" | "drain"): boolean => {
    const v = raw[key];
    if (v === undefined || v === null) return DEFAULT_FLAGS[key];
    return typeof v === "boolean" ? v : invalid(key, v);
  };

  const lifetime = (): number => {
    const v = raw.workspaceStartLifetimeMinutes;
    if (v === undefined || v === null) return DEFAULT_FLAGS.workspaceStartLifetimeMinutes;
    // The same range as a hand-out's lifetimeMinutes (one second to 24 h): a flag value the hand-out
    // would refuse must fall back here, not fail every workspace start.
    return typeof v === "number" && Number.isFinite(v) && v >= MIN_LIFETIME_MINUTES && v <= MAX_MINUTES ? v : invalid("workspaceStartLifetimeMinutes", v);
  };

  const horizon = (): number | undefined => {
    const v = raw.horizonMinutes;
    if (v === undefined || v === null) return DEFAULT_FLAGS.horizonMinutes;
    if (typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= MAX_MINUTES) return v === 0 ? undefined : v;
    return invalid("horizonMinutes", v);
  };

  const margin = (): number | undefined => {
    const v = raw.horizonMarginMinutes;
    if (v === undefined || v === null) return DEFAULT_FLAGS.horizonMarginMinutes;
    if (typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= MAX_MINUTES) return v === 0 ? undefined : v;
    return invalid("horizonMarginMinutes", v);
  };

  return {
    opportunisticRefresh: bool("opportunisticRefresh"),
    workspaceStartLifetimeMinutes: lifetime(),
    horizonMinutes: horizon(),
    drain: bool("drain"),
    horizonMarginMinutes: margin(),
  };
}

/** Per logger (in practice: per process), the flag/value pairs already warned about. Bounded. */
const warned = new WeakMap<Logger, Set<string>>();
const MAX_REMEMBERED = 1000;

function warnOnce(logger: Logger, flag: string, value: unknown, fallback: unknown): void {
  const shown = typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? value : typeof value;
  const key = `${flag}\u0000${typeof value}\u0000${String(shown).slice(0, 200)}`;
  let seen = warned.get(logger);
  if (!seen) warned.set(logger, (seen = new Set()));
  if (seen.has(key)) return;
  if (seen.size < MAX_REMEMBERED) seen.add(key);
  logger.warn({ flag, value: shown, fallback }, "Invalid feature flag value; using the default");
}
