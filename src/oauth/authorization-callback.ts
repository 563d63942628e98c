import { InvalidArgumentError } from "../errors";

/** The parameters of an authorization callback, when the web framework already parsed them. */
export interface AuthorizationCallbackParams {
  code?: string;
  state?: string;
  /** Present instead of `code` when the SCM reports a failure (`access_denied`, …). */
  error?: string;
  error_description?: string;
  /** RFC 9207 issuer identifier, sent by some servers. */
  iss?: string;
}

/** What completeAuthorization() accepts: the callback URL (absolute, or its query string), a URL, or the parsed parameters. */
export type AuthorizationCallback = string | URL | URLSearchParams | AuthorizationCallbackParams;

const FIELDS = ["code", "state", "error", "error_description", "iss"] as const;

/**
 * The callback's query parameters, whatever shape the caller had them in.
 * @example callbackParams("https://app.example.com/oauth/callback?code=abc&state=…").get("code"); // "abc"
 */
export function callbackParams(callback: AuthorizationCallback): URLSearchParams {
  if (callback instanceof URLSearchParams) return new URLSearchParams(callback);
  if (callback instanceof URL) return new URLSearchParams(callback.search);
  if (typeof callback === "string") {
    if (/^https?:\/\//i.test(callback)) {
      try {
        return new URL(callback).searchParams;
      } catch {
        throw new InvalidArgumentError("callback", "callback is not a valid URL; pass the full callback URL, its query string, or { code, state }");
      }
    }
    return new URLSearchParams(callback.startsWith("?") ? callback.slice(1) : callback);
  }
  if (typeof callback !== "object" || callback === null) {
    throw new InvalidArgumentError("callback", "callback must be the callback URL (string or URL), its query string, URLSearchParams, or { code, state }");
  }
  const params = new URLSearchParams();
  for (const field of FIELDS) {
    const value = callback[field];
    if (value === undefined) continue;
    if (typeof value !== "string") throw new InvalidArgumentError(`callback.${field}`, `callback.${field} must be a string`);
    params.set(field, value);
  }
  return params;
}
