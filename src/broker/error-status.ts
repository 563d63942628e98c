import { ScmUnavailableError, StorageError, TokenHeldError, type TokenServiceError, type TokenServiceErrorCode } from "../errors";

/** How a library error goes over the wire: its status, its code, its message, when to retry. */
export interface WireError {
  status: number;
  code: string;
  message: string;
  retryAfterSeconds?: number;
}

const STATUS: Record<TokenServiceErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  // The user must reconnect the SCM; retrying does not help.
  REAUTHORIZATION_REQUIRED: 409,
  SCM_UNAVAILABLE: 503,
  SCM_BAD_RESPONSE: 502,
  TOKEN_HELD: 503,
  DECRYPTION_FAILED: 500,
  CONFIGURATION: 500,
  REFRESH_IN_PROGRESS: 503,
  STORAGE: 503,
  AUTHORIZATION_STATE_INVALID: 400,
  AUTHORIZATION_DENIED: 403,
  AUTHORIZATION_CODE_REJECTED: 400,
};

/**
 * The status of a TokenServiceError. Messages of the library's errors never contain a token, so they
 * are passed on; server-side faults (decryption, configuration, permanent storage errors) are not
 * described to the caller beyond their code — the server's logs have the rest.
 */
export function wireError(error: TokenServiceError, nowMs: number): WireError {
  let status = STATUS[error.code] ?? 500;
  if (error instanceof StorageError && !error.transient) status = 500;
  const message = status === 500 ? "the token service failed on the server side; its operators have the details in their logs" : error.message;
  let retryAfterSeconds: number | undefined;
  if (error instanceof TokenHeldError) retryAfterSeconds = Math.max(1, Math.ceil((error.heldUntil.getTime() - nowMs) / 1000));
  else if (error instanceof ScmUnavailableError && error.retryAfterMs !== undefined) retryAfterSeconds = Math.max(1, Math.ceil(error.retryAfterMs / 1000));
  else if (status === 503) retryAfterSeconds = 1;
  return { status, code: error.code, message, retryAfterSeconds };
}
