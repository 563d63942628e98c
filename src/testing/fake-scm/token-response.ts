import type { FakeScmJson, FakeScmProfile } from "./profiles";
import type { CommittedRefresh } from "./token-families";

/** The success body of a refresh, field by field as each provider sends it. */
export function tokenResponseBody(profile: FakeScmProfile, tokens: CommittedRefresh): { [key: string]: FakeScmJson } {
  const q = profile.responseQuirks;
  const number = (n: number): FakeScmJson => (q.expiresInAsString ? String(n) : n);
  const body: { [key: string]: FakeScmJson } = { access_token: tokens.accessToken, token_type: q.tokenType };

  if (profile.accessTokenTtlSeconds !== null && !q.omitExpiresIn) body["expires_in"] = number(profile.accessTokenTtlSeconds);
  if (tokens.refreshToken !== undefined) {
    body["refresh_token"] = tokens.refreshToken;
    if (q.refreshTokenExpiresIn && profile.refreshTokenTtlSeconds !== null) {
      body["refresh_token_expires_in"] = number(profile.refreshTokenTtlSeconds);
    }
  }

  const scope = q.scopeAlwaysEmpty ? "" : tokens.scopes.join(q.scopeSeparator);
  if (q.scopeField === "scope" || q.scopeField === "both") body["scope"] = scope;
  if (q.scopeField === "scopes" || q.scopeField === "both") body["scopes"] = scope;

  if (q.emitCreatedAt) body["created_at"] = Math.floor(tokens.issuedAt.getTime() / 1000);
  for (const [key, value] of Object.entries(q.extraFields)) body[key] = value;
  return body;
}
