import { inspect } from "node:util";

/** Reuse modes of a stored token. */
export type ReuseMode = "whenPossible" | "exactly" | "never";
export const REUSE_MODES: readonly ReuseMode[] = ["whenPossible", "exactly", "never"];

/** What storeToken() takes: the token from the SCM's authorization-code exchange. */
export interface StoreTokenInput {
  /** The access token. */
  value: string;
  /** The refresh token, if the SCM issued one. Never handed out again. */
  refreshToken?: string;
  /** When the access token expires; omit for tokens that never expire. */
  expiryDate?: Date | string;
  scopes?: string[];
  /** The SCM user name (for git's basic auth, e.g. "x-token-auth" on Bitbucket). */
  username?: string;
  /** whenPossible (default): served when the requested scopes are a subset; exactly: only when equal; never: handed out once. */
  reuse?: ReuseMode;
}

/**
 * A handed-out access token. Guaranteed valid until at least the requested lifetime from the
 * moment it was handed out (unless the SCM itself issued a shorter one; that is logged and counted).
 * It never carries the refresh token. The secret is not an own property: `JSON.stringify`,
 * `util.inspect`, spreading (`{ ...token }`), `Object.values`/`entries` and `structuredClone` leave it
 * out or redact it, so logging or copying the object does not leak it; read `token.value` explicitly
 * where you need it.
 */
export class Token {
  // A private field, not a property: nothing that walks own properties can reach it.
  readonly #value: string;

  constructor(
    value: string,
    readonly scopes: string[],
    readonly expiryDate: Date | undefined,
    readonly reservedUntilDate: Date | undefined,
    readonly username: string | undefined,
    /** Identifies this hand-out for releaseReservation(). */
    readonly handOut: HandOutRef,
  ) {
    this.#value = value;
  }

  /** The access token — a secret. */
  get value(): string {
    return this.#value;
  }

  toJSON(): Record<string, unknown> {
    return { value: "[redacted]", scopes: this.scopes, expiryDate: this.expiryDate, reservedUntilDate: this.reservedUntilDate, username: this.username };
  }

  [inspect.custom](): string {
    return `Token ${inspect(this.toJSON())}`;
  }
}

/** Names the hand-out (user, host, token version) without naming the token. */
export interface HandOutRef {
  readonly userId: string;
  readonly host: string;
  readonly entryId: string;
  readonly version: number;
  readonly reservedUntil?: Date;
  /** Present when the hand-out was releasable (`releasable: true` or `withToken`). */
  readonly holdId?: string;
}
