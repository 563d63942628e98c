/**
 * The token broker's wire protocol: JSON over HTTP, two POST endpoints below wherever the embedding
 * server mounts the handler. Shared by the broker (src/broker/token-broker.ts) and its client
 * (src/broker/broker-client.ts, used by `scm-token-service git-credential`).
 *
 * - `POST …/token`   body {@link HandOutRequestBody}  → 200 {@link HandOutResponseBody}
 * - `POST …/release` body {@link ReleaseRequestBody}  → 200 {@link ReleaseResponseBody}
 * - any failure → a 4xx/5xx status with {@link BrokerErrorBody}
 *
 * Requests must be `Content-Type: application/json` (a browser cannot send that cross-origin without
 * a preflight). Every response carries `Cache-Control: no-store`.
 */

/** The path suffixes the handler answers (it matches the end of the path, so any mount point works). */
export const BROKER_PATHS = { token: "/token", release: "/release" } as const;

/** Ask for a releasable hand-out of the caller's token for `host`. */
export interface HandOutRequestBody {
  /** The SCM host the token is stored under, e.g. "bitbucket.example.com". */
  host: string;
  /** Scopes the caller needs (must be allowed to the caller); default: none required. */
  scopes?: string[];
  /** How long the token must stay valid, in minutes; default the broker's `defaultLifetimeMinutes`, at most the caller's maximum. */
  lifetimeMinutes?: number;
}

/** A hand-out. `token` is the secret; everything else is metadata. */
export interface HandOutResponseBody {
  token: string;
  /** The SCM user name to pair with the token (git's Basic auth), when the stored token has one. */
  username: string | null;
  /** When the access token expires (ISO 8601), or null for tokens that never expire. */
  expiresAt: string | null;
  /** Until when this hand-out reserves the token (ISO 8601): it is not refreshed away before then. */
  reservedUntil: string | null;
  scopes: string[];
  /**
   * Opaque; give it back to `…/release` when done. Sealed by the broker and bound to this caller:
   * nobody else can use it, and it says nothing about the token.
   */
  releaseHandle: string;
}

/**
 * Give a hand-out back: by its release handle, or — for clients that can only keep the token itself
 * (git before 2.46 passes nothing else back to a credential helper) — by the host and the token.
 * The broker never stores tokens: it keeps, per caller and only until the reservation ends, a keyed
 * hash of each token it handed out.
 */
export type ReleaseRequestBody = ({ releaseHandle: string } | { host: string; token: string }) & {
  /**
   * True when the caller may still be using the token for a moment (git calls its helper's `store`
   * after the first successful request, not after the last): the broker releases it after its
   * `deferredReleaseMs`. Default false: released at once.
   */
  deferred?: boolean;
};

export interface ReleaseResponseBody {
  /** False when the hand-out was already released or had ended (a deferred release answers true). */
  released: boolean;
}

/** The broker's own error codes, beside the library's (`TokenServiceError.code`). */
export type BrokerErrorCode =
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "NO_TOKEN"
  | "TOO_MANY_REQUESTS"
  | "BODY_TOO_LARGE"
  | "BAD_REQUEST"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "NOT_FOUND"
  | "METHOD_NOT_ALLOWED"
  | "RELEASE_HANDLE_INVALID"
  | "INTERNAL";

export interface BrokerErrorBody {
  error: {
    /** A BrokerErrorCode or a TokenServiceErrorCode (e.g. "REAUTHORIZATION_REQUIRED"). */
    code: string;
    /** Says what to do; never contains a token. */
    message: string;
    /** For TOKEN_HELD, SCM_UNAVAILABLE, TOO_MANY_REQUESTS: when to retry (also in the Retry-After header). */
    retryAfterSeconds?: number;
  };
}
