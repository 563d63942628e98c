import { checkNumberArgument, type NumberRange } from "./check-option";
import { InvalidArgumentError } from "./errors";
import { canonicalHost } from "./providers/normalize-host";

/** Input checks for the public API. Each throws InvalidArgumentError before anything is read or written. */

const CONTROL = /[\u0000-\u001f\u007f]/;
const MAX_TOKEN_LENGTH = 16 * 1024;
const MAX_LIFETIME_MINUTES = 24 * 60;
const MAX_SCOPES_LENGTH = 2048;

/**
 * A lone UTF-16 surrogate. MySQL/MariaDB store it as U+FFFD, so "x\uD800" and "x\uDBFF" would become
 * one row there (one user's token silently overwritten by another's): such strings are refused.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when UTF-8 cannot hold `value` unchanged (it has an unpaired surrogate). */
export function hasLoneSurrogate(value: string): boolean {
  return LONE_SURROGATE.test(value);
}

/** True for text that every supported database stores as it is: no control characters, no lone surrogates. */
export function isStorableText(value: string): boolean {
  return !CONTROL.test(value) && !LONE_SURROGATE.test(value);
}

export function checkUserId(userId: unknown): string {
  if (typeof userId !== "string" || userId.length === 0 || userId.trim() !== userId || userId.length > 128 || !isStorableText(userId)) {
    throw new InvalidArgumentError("userId", "userId must be a non-empty string of at most 128 characters, without surrounding spaces, control characters or unpaired surrogates");
  }
  return userId;
}

export function checkHost(host: unknown, known: ReadonlySet<string>): string {
  // A configured host as given (the usual call) is already canonical: canonicalHost would return it unchanged.
  if (typeof host === "string" && known.has(host)) return host;
  const normalized = typeof host === "string" ? canonicalHost(host) : "";
  if (!known.has(normalized)) {
    const list = [...known].join(", ") || "(none)";
    throw new InvalidArgumentError("host", `host ${JSON.stringify(typeof host === "string" ? host.slice(0, 100) : typeof host)} has no provider; configured hosts: ${list}`);
  }
  return normalized;
}

/** A hand-out lifetime: one second to 24 hours (the lifetimeMinutes argument and the defaultLifetimeMinutes option). */
export const LIFETIME_MINUTES: NumberRange = {
  min: 1 / 60,
  max: MAX_LIFETIME_MINUTES,
  text: `a number of minutes from 1/60 (one second) to ${MAX_LIFETIME_MINUTES} (24 hours)`,
};

/** Minutes → milliseconds; between one second and 24 hours. */
export function checkLifetimeMinutes(minutes: unknown, name = "lifetimeMinutes"): number {
  return Math.ceil(checkNumberArgument(minutes, name, LIFETIME_MINUTES) * 60_000);
}

/** A wait bound in ms: 0 (do not wait) up to Infinity (as long as the reservation lasts). */
export const MAX_WAIT_MS: NumberRange = { min: 0, max: Number.POSITIVE_INFINITY, unit: "milliseconds" };

/** maxWaitMs of one call; undefined → the service's defaultMaxWaitMs. */
export function checkMaxWaitMs(ms: unknown, fallback: number): number {
  return ms === undefined ? fallback : checkNumberArgument(ms, "maxWaitMs", MAX_WAIT_MS);
}

export function checkScopes(scopes: unknown, name = "scopes"): string[] {
  if (scopes === undefined) return [];
  // Storable text too: PostgreSQL refuses NUL, MariaDB stores a lone surrogate as U+FFFD (a stored
  // scope that no later request could ask for by the same string).
  if (!Array.isArray(scopes) || scopes.length > 100 || !scopes.every((s) => typeof s === "string" && s.length > 0 && s.length <= 200 && !/\s/.test(s) && isStorableText(s))) {
    throw new InvalidArgumentError(name, `${name} must be an array of at most 100 non-empty scope strings without spaces, control characters or unpaired surrogates`);
  }
  const unique = [...new Set(scopes as string[])];
  // Stored space-separated in a varchar(2048) column: a longer list would fail on MySQL/MariaDB and be cut elsewhere.
  if (unique.join(" ").length > MAX_SCOPES_LENGTH) {
    throw new InvalidArgumentError(name, `${name} joined with spaces must be at most ${MAX_SCOPES_LENGTH} characters`);
  }
  return unique;
}

export function checkSecretString(value: unknown, name: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_TOKEN_LENGTH || !isStorableText(value)) {
    // Never echo the value: it is a secret.
    throw new InvalidArgumentError(name, `${name} must be a non-empty string of at most ${MAX_TOKEN_LENGTH} characters without control characters or unpaired surrogates`);
  }
  return value;
}

export function checkOptionalDate(value: unknown, name: string): Date | undefined {
  if (value === undefined || value === null) return undefined;
  const date = value instanceof Date ? value : typeof value === "string" || typeof value === "number" ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1971 || date.getUTCFullYear() > 9999) {
    throw new InvalidArgumentError(name, `${name} must be a valid Date (or ISO string) between 1971 and 9999, got ${describe(value)}`);
  }
  return date;
}

export function checkOptionalString(value: unknown, name: string, max: number): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || value.length > max || !isStorableText(value)) {
    throw new InvalidArgumentError(name, `${name} must be a string of at most ${max} characters without control characters or unpaired surrogates`);
  }
  return value;
}

export function checkOneOf<T extends string>(value: unknown, allowed: readonly T[], name: string, fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
  throw new InvalidArgumentError(name, `${name} must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, got ${describe(value)}`);
}

function describe(v: unknown): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v.slice(0, 40));
  return v === null ? "null" : typeof v;
}
