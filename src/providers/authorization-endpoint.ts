import type { AuthorizationUrlRequest } from "./scm-provider";

/** How an SCM writes a list of scopes in the authorization request's `scope` parameter. */
export type ScopeSeparator = " " | ",";

/**
 * The authorization request URL (RFC 6749 §4.1.1 + PKCE S256, RFC 7636 §4.3): `response_type=code`,
 * `client_id`, `redirect_uri`, `state`, `code_challenge`, `code_challenge_method=S256`, and `scope`
 * joined the provider's way — left out when no scope is requested (the application's defaults apply).
 * Query parameters already in `endpoint` are kept.
 *
 * @example
 * authorizationUrl(new URL("https://gitlab.com/oauth/authorize"), "app-id", " ", { redirectUri, state, codeChallenge, scopes: ["api", "read_user"] });
 * // https://gitlab.com/oauth/authorize?response_type=code&client_id=app-id&redirect_uri=…&state=…&code_challenge=…&code_challenge_method=S256&scope=api+read_user
 */
export function authorizationUrl(endpoint: URL, clientId: string, separator: ScopeSeparator, request: AuthorizationUrlRequest): URL {
  const url = new URL(endpoint.href);
  const params = url.searchParams;
  params.set("response_type", "code");
  params.set("client_id", clientId);
  params.set("redirect_uri", request.redirectUri);
  params.set("state", request.state);
  params.set("code_challenge", request.codeChallenge);
  params.set("code_challenge_method", "S256");
  if (request.scopes.length > 0) params.set("scope", request.scopes.join(separator));
  return url;
}
