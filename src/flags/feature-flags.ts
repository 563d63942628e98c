import type { Logger } from "../logger";

/** Flag names, as operators create them in LaunchDarkly. */
export const FLAG_NAMES = {
  opportunisticRefresh: "opportunistic_token_refresh",
  workspaceStartLifetime: "workspace_start_scm_access_token_lifetime",
  horizon: "opportunistic_token_refresh_horizon_minutes",
  drain: "token_refresh_drain",
} as const;

/** The values the service uses for one user, already validated. */
export interface TokenFlags {
  /** `opportunistic_token_refresh` (boolean, default true; false switches opportunistic refresh off). */
  opportunisticRefresh: boolean;
  /** `workspace_start_scm_access_token_lifetime` (minutes, default 10, 1..1440). */
  workspaceStartLifetimeMinutes: number;
  /** `opportunistic_token_refresh_horizon_minutes` (default 20; 0 = no horizon, Gitpod's rule). undefined = no horizon. */
  horizonMinutes: number | undefined;
  /** `token_refresh_drain` (boolean, default true). */
  drain: boolean;
}

export const DEFAULT_FLAGS: TokenFlags = {
  opportunisticRefresh: true,
  workspaceStartLifetimeMinutes: 10,
  horizonMinutes: 20,
  drain: true,
};

/** Raw flag values as a flag system returns them (anything, since operators type them in a UI). */
export type RawFlagValues = { [K in keyof TokenFlags]?: unknown };

/**
 * Where the service reads per-user switches from. One call per hand-out, so an implementation
 * must answer from memory (LaunchDarkly's SDK does).
 */
export interface FeatureFlags {
  getFlags(userId: string): Promise<TokenFlags>;
}

const MAX_MINUTES = 24 * 60;

/**
 * Turns raw values into usable ones. An invalid value (wrong type, NaN, 0 or negative lifetime,
 * more than 24 h) falls back to the default with a warning: a typo in a flag must not break hand-outs.
 */
export function resolveFlags(raw: RawFlagValues, logger: Logger): TokenFlags {
  const warn = (flag: string, value: unknown, fallback: unknown) =>
    logger.warn({ flag, value: typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? value : typeof value, fallback }, "Invalid feature flag value; using the default");

  const bool = (key: "opportunisticRefresh" | "drain", name: string): boolean => {
    const v = raw[key];
    if (v === undefined) return DEFAULT_FLAGS[key];
    if (typeof v === "boolean") return v;
    warn(name, v, DEFAULT_FLAGS[key]);
    return DEFAULT_FLAGS[key];
  };

  const lifetime = (() => {
    const v = raw.workspaceStartLifetimeMinutes;
    if (v === undefined) return DEFAULT_FLAGS.workspaceStartLifetimeMinutes;
    if (typeof v === "number" && Number.isFinite(v) && v > 0 && v <= MAX_MINUTES) return v;
    warn(FLAG_NAMES.workspaceStartLifetime, v, DEFAULT_FLAGS.workspaceStartLifetimeMinutes);
    return DEFAULT_FLAGS.workspaceStartLifetimeMinutes;
  })();

  const horizon = (() => {
    const v = raw.horizonMinutes;
    if (v === undefined) return DEFAULT_FLAGS.horizonMinutes;
    if (typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= MAX_MINUTES) return v === 0 ? undefined : v;
    warn(FLAG_NAMES.horizon, v, DEFAULT_FLAGS.horizonMinutes);
    return DEFAULT_FLAGS.horizonMinutes;
  })();

  return {
    opportunisticRefresh: bool("opportunisticRefresh", FLAG_NAMES.opportunisticRefresh),
    workspaceStartLifetimeMinutes: lifetime,
    horizonMinutes: horizon,
    drain: bool("drain", FLAG_NAMES.drain),
  };
}
