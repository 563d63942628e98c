/**
 * What the fake SCM saw, for assertions such as "five concurrent callers produced exactly one
 * upstream refresh" or "no family forked". One live object per server; reset in place.
 */
export interface FakeScmCounters {
  /** Every POST to the token endpoint, including ones answered with an injected failure. */
  tokenRequests: number;
  /** Refresh requests that got past parsing and client authentication (the refresh token was looked up). */
  refreshAttempts: number;
  /** Refreshes that committed new tokens, whether or not the response then reached the client. */
  refreshSuccesses: number;
  /** Refreshes answered with the profile's invalid-grant error (GitHub: 200 `bad_refresh_token`). */
  invalidGrants: number;
  /** A rotated (tombstoned) refresh token was presented again, including by the loser of a race. */
  replays: number;
  /** Families that got more than one live successor (only via `toctouBothSucceed` or `replayPolicy: "allow"`). */
  forks: number;
  /** Families revoked: by replay detection, `revokeFamilyOf()` or `revokeAll()`. */
  familyRevocations: number;
  /** Every GET to the resource endpoint. */
  resourceRequests: number;
  /** Resource requests rejected because their access token had been revoked by a refresh. */
  resourceRejectedRevokedByRefresh: number;
  /** Authorization requests answered (approved or denied), by `authorize()` or a GET to the authorization endpoint. */
  authorizations: number;
  /** Authorization codes exchanged for tokens. */
  codeExchanges: number;
  /** Accepted revocation requests (RFC 7009 or GitHub's grant deletion), whether or not the token was known. */
  revocations: number;
}

export function newCounters(): FakeScmCounters {
  return {
    tokenRequests: 0,
    refreshAttempts: 0,
    refreshSuccesses: 0,
    invalidGrants: 0,
    replays: 0,
    forks: 0,
    familyRevocations: 0,
    resourceRequests: 0,
    resourceRejectedRevokedByRefresh: 0,
    authorizations: 0,
    codeExchanges: 0,
    revocations: 0,
  };
}

/** Zeroes every counter in place, so references held by tests stay live. */
export function resetCounters(counters: FakeScmCounters): void {
  Object.assign(counters, newCounters());
}
