import { ConfigurationError } from "../errors";

/**
 * Start-up checks of provider options that the shared token endpoint does not make itself. Each
 * message names the provider, the option and what to put there; none quotes a secret.
 */

/** An absolute http(s) URL (a base URL or a token endpoint); returns it parsed. */
export function checkUrlOption(value: unknown, option: string, provider: string): URL {
  let url: URL | undefined;
  try {
    url = typeof value === "string" ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url && (url.username !== "" || url.password !== "")) {
    // Not echoed: the user-info part may be a password.
    throw new ConfigurationError(`${provider}: ${option} must not contain credentials (user:password@); configure clientId and clientSecret instead`, option);
  }
  if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) {
    throw new ConfigurationError(`${provider}: ${option} must be an absolute https:// URL, e.g. "https://scm.example.com"; got ${describe(value)}`, option);
  }
  return url;
}

/**
 * The options argument is an object whose keys are all known: a misspelt option (`clientsecret`,
 * `client_secret`) would otherwise be ignored silently and fail much later, at the first refresh.
 * Names the unknown key, never a value.
 */
export function checkOptionsObject(options: unknown, known: readonly string[], provider: string): void {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new ConfigurationError(`${provider}: pass an options object { ${known.slice(0, 4).join(", ")}, … }; got ${describe(options)}`);
  }
  const unknown = Object.keys(options).find((key) => !known.includes(key));
  if (unknown !== undefined) {
    throw new ConfigurationError(`${provider}: unknown option ${JSON.stringify(unknown.slice(0, 60))}; the options are ${known.join(", ")}`, unknown.slice(0, 60));
  }
}

/** An optional base URL: undefined stays undefined. */
export function checkOptionalBaseUrl(value: unknown, provider: string): string | undefined {
  if (value === undefined) return undefined;
  const url = checkUrlOption(value, "baseUrl", provider);
  if (url.search !== "" || url.hash !== "") throw new ConfigurationError(`${provider}: baseUrl must not have a query or fragment; got ${describe(value)}`, "baseUrl");
  return value as string;
}

export function checkBooleanOption(value: unknown, option: string, provider: string): boolean {
  if (typeof value !== "boolean") throw new ConfigurationError(`${provider}: ${option} must be true or false; got ${describe(value)}`, option);
  return value;
}

export function checkOneOfOption<T extends string>(value: unknown, allowed: readonly T[], option: string, provider: string): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new ConfigurationError(`${provider}: ${option} must be one of ${allowed.map((a) => `"${a}"`).join(", ")}; got ${describe(value)}`, option);
  }
  return value as T;
}

/** A positive number of seconds, at most a year (a typo in milliseconds should not pass). */
export function checkOptionalSeconds(value: unknown, option: string, provider: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > 366 * 24 * 3600) {
    throw new ConfigurationError(`${provider}: ${option} must be a number of seconds from 1 to 31622400; got ${describe(value)}`, option);
  }
  return value;
}

/** Option values are configuration, never secrets: the client secret is not passed through here. */
function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
  if (typeof value === "number" || typeof value === "boolean" || value === undefined || value === null) return String(value);
  return typeof value;
}
