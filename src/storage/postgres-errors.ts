/**
 * PostgreSQL's failures as the library classifies them. pg reports the server's SQLSTATE as `code`
 * ("40001"), Node's socket codes as `code` ("ECONNRESET"), and some of its own failures with no code
 * at all, only a message ("Connection terminated unexpectedly"); those get a stable PG_* code here.
 */

/** pg's own failures that carry no code, by message. */
const MESSAGE_CODES: Array<[RegExp, string]> = [
  [/^Connection terminated due to connection timeout/, "PG_CONNECT_TIMEOUT"],
  [/^timeout exceeded when trying to connect/, "PG_CONNECT_TIMEOUT"],
  [/^Connection terminated/, "PG_CONNECTION_TERMINATED"],
  [/^Client has encountered a connection error/, "PG_CONNECTION_TERMINATED"],
  [/^Client was closed and is not queryable/, "PG_CLIENT_CLOSED"],
  [/^Cannot use a pool after calling end/, "PG_POOL_ENDED"],
  [/^Query read timeout/, "STATEMENT_TIMEOUT"],
  [/^The server does not support SSL connections/, "PG_SSL_NOT_SUPPORTED"],
];

/** The code of a pg (or Node, or TypeORM-wrapped pg) error: SQLSTATE, Node code or PG_*. */
export function postgresErrorCode(error: unknown): string | undefined {
  const driver = (error as { driverError?: unknown } | null)?.driverError ?? error;
  const code = (driver as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code) return code;
  const message = driver instanceof Error ? driver.message : "";
  return MESSAGE_CODES.find(([pattern]) => pattern.test(message))?.[1];
}

/**
 * SQLSTATEs after which the statement did nothing or its outcome is unknown, so retrying (the
 * library's writes are compare-and-set) is safe: serialization failure, deadlock, lock_timeout,
 * statement_timeout or pg_cancel_backend (query_canceled), pg_terminate_backend and shutdowns, too
 * many connections, a server still starting.
 */
const TRANSIENT_SQLSTATES = new Set(["40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53300", "53400"]);
const TRANSIENT_OTHER = new Set([
  "PG_CONNECT_TIMEOUT",
  "PG_CONNECTION_TERMINATED",
  "STATEMENT_TIMEOUT",
  "ECONNRESET",
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
]);

/** True when waiting and retrying may help (see TRANSIENT_SQLSTATES); every 08xxx connection exception too. */
export function isTransientPostgresCode(code: string | undefined): boolean {
  if (code === undefined) return false;
  return code.startsWith("08") || TRANSIENT_SQLSTATES.has(code) || TRANSIENT_OTHER.has(code);
}

/** A wrong user or password (invalid_authorization_specification, invalid_password). */
export const POSTGRES_ACCESS_DENIED = new Set(["28000", "28P01", "42501"]);
/** The database named in the URL does not exist (invalid_catalog_name). */
export const POSTGRES_NO_DATABASE = "3D000";

/** Words after which a quoted name in a server message is a schema name, not a value. */
const NAME_BEFORE_QUOTE = /\b(?:constraint|relation|column|table|index|database|role|user|type|function|schema|encoding|sequence|extension|lock)\s*$/i;

/**
 * A server message without values: PostgreSQL quotes names ("relation \"scm_token_entry\"") but also
 * values ("invalid input syntax for type integer: \"…\""). Quoted names after a naming word stay,
 * every other quoted text becomes "?", long id- or token-like runs are blanked, first line only.
 */
export function redactPostgresMessage(message: string): string {
  const firstLine = message.split("\n")[0] ?? "";
  // One pass, so that a kept name is not blanked as a long run afterwards.
  return firstLine
    .replace(/(["'])((?:(?!\1)[^\\]|\\.)*)\1|[A-Za-z0-9_+/=.-]{24,}/g, (whole, quote: string | undefined, _inner: string | undefined, offset: number) => {
      if (quote === undefined) return "[redacted]";
      return NAME_BEFORE_QUOTE.test(firstLine.slice(0, offset)) ? whole : `${quote}?${quote}`;
    })
    .slice(0, 200);
}
