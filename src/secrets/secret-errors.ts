import { InvalidArgumentError, TokenServiceError } from "../errors";

/**
 * A workspace-start bundle asked for a host for which the user has no stored token. The caller
 * decides: ask the user to connect `host` (then call `storeToken`), or build the bundle without it.
 * The code is `REAUTHORIZATION_REQUIRED` because the remedy is the same: the user must authorise the SCM.
 *
 * @example
 * try { await secrets.buildBundle({ userId, hosts }); }
 * catch (e) { if (e instanceof ScmTokenMissingError) promptToConnect(e.hosts); }
 */
export class ScmTokenMissingError extends TokenServiceError {
  /** The first host without a token. */
  readonly host: string;

  constructor(
    /** Every host of the request without a stored token. */
    readonly hosts: readonly string[],
  ) {
    const list = hosts.join(", ");
    super(
      "REAUTHORIZATION_REQUIRED",
      `no token is stored for ${list}; ask the user to connect ${list} (then call storeToken), or build the bundle without ${hosts.length === 1 ? "it" : "them"}`,
    );
    this.host = hosts[0];
  }
}

/**
 * Loud deletion: a take-once secret that was to be deleted or updated does not exist —
 * it was taken, deleted or reaped after expiry. The message never contains the id (it is a bearer
 * capability: whoever knows it can take the secret).
 *
 * @example
 * await secrets.delete(id, { mustExist: true }); // throws SecretNotFoundError when nothing was deleted
 */
export class SecretNotFoundError extends InvalidArgumentError {
  constructor(operation: "delete" | "attachReference") {
    super("id", `${operation}: no secret with this id exists (already taken, deleted, or reaped after expiry); nothing was changed`);
  }
}
