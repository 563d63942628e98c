import { ConfigurationError, StorageError, TokenServiceError } from "../errors";
import { POSTGRES_ACCESS_DENIED, POSTGRES_NO_DATABASE, isTransientPostgresCode, postgresErrorCode } from "./postgres-errors";

/**
 * The database named in the configuration cannot be used as it is (wrong user or password, a database
 * that does not exist, an embedded database file that cannot be written). Retrying will not help;
 * `driverCode` is the driver's code (e.g. ER_ACCESS_DENIED_ERROR, ENOTDIR).
 */
export class DatabaseConfigurationError extends ConfigurationError {
  /** The driver's numeric error (MySQL/MariaDB errno, e.g. 1045 for a refused login). */
  readonly errno: number | undefined;
  /** The SQL state, when the driver reports one. */
  readonly sqlState: string | undefined;

  constructor(
    readonly driverCode: string | undefined,
    message: string,
    // Like StorageError: the driver's error is not kept as `cause` (its fields can carry connection details).
    details: DriverDetails = {},
  ) {
    super(message);
    this.errno = details.errno;
    this.sqlState = details.sqlState;
  }
}

/** The numeric errno and SQL state of a driver error, as StorageError keeps them. */
export interface DriverDetails {
  errno?: number;
  sqlState?: string;
}

function driverDetails(e: unknown): DriverDetails {
  const err = e as { errno?: unknown; sqlState?: unknown; code?: unknown } | null;
  // pg's `code` is the SQLSTATE itself.
  const pgState = typeof err?.code === "string" && /^[0-9A-Z]{5}$/.test(err.code) ? err.code : undefined;
  return {
    errno: typeof err?.errno === "number" && err.errno > 0 ? err.errno : undefined,
    sqlState: typeof err?.sqlState === "string" ? err.sqlState : pgState,
  };
}

/** Where a start-up failure happened, for the message. `password` is scrubbed from anything passed on. */
export interface StartupTarget {
  /** The URL with its password replaced by `***`. */
  redactedUrl: string;
  /** "server" (MySQL/MariaDB/PostgreSQL) or "embedded" (sql.js file). */
  kind: "server" | "embedded";
  host?: string;
  port?: number;
  database?: string;
  location?: string;
  password?: string;
  /** How the messages name the URL's origin (default "databaseUrl"; the CLI's "--database-url"). */
  urlName?: string;
}

/** Driver codes meaning "the server is not there (yet)": start it, or wait for it. */
const UNREACHABLE = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "EPIPE", "PROTOCOL_CONNECTION_LOST", "PROTOCOL_SEQUENCE_TIMEOUT"]);
/** The server is there but momentarily cannot take us. */
const BUSY = new Set(["ER_CON_COUNT_ERROR", "ER_TOO_MANY_USER_CONNECTIONS", "ER_SERVER_SHUTDOWN", "ER_LOCK_WAIT_TIMEOUT", "ER_LOCK_DEADLOCK"]);
const ACCESS_DENIED = new Set(["ER_ACCESS_DENIED_ERROR", "ER_DBACCESS_DENIED_ERROR", "ER_NOT_SUPPORTED_AUTH_MODE", "ER_ACCESS_DENIED_NO_PASSWORD_ERROR", "ER_TABLEACCESS_DENIED_ERROR"]);
/** Node's codes for a server certificate that failed verification (sslmode=verify-ca / verify-full). */
const TLS_CERTIFICATE = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);
/**
 * mysql2 replaces the code of every failed TLS handshake with HANDSHAKE_SSL_ERROR; Node's code of a
 * failed verification survives only as its message (OpenSSL's wording, "self signed" before 3.0).
 */
const TLS_CERTIFICATE_MESSAGES: Array<[RegExp, string]> = [
  [/^self[- ]signed certificate$/, "DEPTH_ZERO_SELF_SIGNED_CERT"],
  [/^self[- ]signed certificate in certificate chain$/, "SELF_SIGNED_CERT_IN_CHAIN"],
  [/^unable to verify the first certificate$/, "UNABLE_TO_VERIFY_LEAF_SIGNATURE"],
  [/^unable to get issuer certificate$/, "UNABLE_TO_GET_ISSUER_CERT"],
  [/^unable to get local issuer certificate$/, "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"],
  [/^certificate has expired$/, "CERT_HAS_EXPIRED"],
  [/^certificate is not yet valid$/, "CERT_NOT_YET_VALID"],
  [/^certificate not trusted$/, "CERT_UNTRUSTED"],
  [/^certificate rejected$/, "CERT_REJECTED"],
  [/^certificate signature failure$/, "CERT_SIGNATURE_FAILURE"],
  [/^Hostname\/IP does not match certificate's altnames/, "ERR_TLS_CERT_ALTNAME_INVALID"],
];
/** File-system codes from writing the embedded database file. */
const FILE_CODES = new Set(["ENOENT", "ENOTDIR", "EACCES", "EPERM", "EROFS", "EISDIR", "ENOSPC", "EEXIST", "ENAMETOOLONG", "ELOOP"]);

/**
 * The driver's error code: `code` on mysql2, pg (the SQLSTATE) and Node errors; for TypeORM's sql.js
 * save errors, the Node code inside the message; for pg's code-less connection failures, a PG_* code;
 * for a certificate mysql2 could not verify, Node's code (see TLS_CERTIFICATE_MESSAGES).
 */
export function driverCodeOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  const message = e instanceof Error ? e.message : "";
  if (code === "HANDSHAKE_SSL_ERROR") return TLS_CERTIFICATE_MESSAGES.find(([pattern]) => pattern.test(message))?.[1] ?? code;
  if (typeof code === "string" && code) return code;
  return /\b(E[A-Z]{2,}):/.exec(message)?.[1] ?? postgresErrorCode(e);
}

/** Removes the password (raw and URL-encoded) from driver text before it goes into a message. */
export function scrub(text: string, password: string | undefined): string {
  if (!password) return text;
  let out = text;
  for (const form of new Set([password, encodeURIComponent(password)])) out = out.split(form).join("***");
  return out;
}

/**
 * Turns what a driver threw while opening or migrating the database into a TokenServiceError that
 * says what to do: StorageError (transient when waiting helps, e.g. the server is not up yet) or
 * DatabaseConfigurationError (fix the URL, create the database, fix the path). The driver's code is
 * kept; the password never appears.
 */
export function startupError(e: unknown, target: StartupTarget, stage: "connect" | "migrate"): TokenServiceError {
  if (e instanceof TokenServiceError) return e;
  const code = driverCodeOf(e);
  const raw = e instanceof Error ? e.message : String(e);
  const sqlMessage = (e as { sqlMessage?: unknown } | null)?.sqlMessage;
  // Node's fs messages start with the code again ("ENOENT: no such file…"); say it once.
  const text = (typeof sqlMessage === "string" ? sqlMessage : raw).replace(/^.*?\b(E[A-Z]{2,}): /, (m, c: string) => (c === code ? "" : m));
  const detail = scrub(text, target.password);
  const details = driverDetails(e);
  const url = target.urlName ?? "databaseUrl";
  const where = target.kind === "embedded" ? `the embedded database file ${target.location}` : `${target.redactedUrl}`;
  if (target.kind === "embedded" && code && FILE_CODES.has(code)) {
    return new DatabaseConfigurationError(
      code,
      `cannot use ${where} (${code}: ${detail}); check the file path in ${url}: its directory must exist and be writable by this process, or use sqljs::memory:`,
      details,
    );
  }
  if (code && UNREACHABLE.has(code)) {
    return new StorageError(
      `connect to ${where}`,
      code,
      true,
      `nothing answered at ${target.host}:${target.port}: start the database server (or wait until it is up), and check the host and port in ${url}`,
      details,
    );
  }
  if (code === "ENOTFOUND") {
    return new StorageError(`connect to ${where}`, code, true, `the host name ${target.host} does not resolve: check the host in ${url} (or wait for DNS)`, details);
  }
  if (code === "PG_SSL_NOT_SUPPORTED" || code === "HANDSHAKE_NO_SSL_SUPPORT") {
    return new DatabaseConfigurationError(
      code,
      `the database server at ${target.host}:${target.port} does not accept TLS, and ${url} asks for it (sslmode=require, verify-ca or verify-full); enable TLS on the server, or connect without it (sslmode=disable) where the network is trusted`,
      details,
    );
  }
  if (code && TLS_CERTIFICATE.has(code)) {
    return new DatabaseConfigurationError(
      code,
      `the certificate of the database server at ${target.host}:${target.port} failed verification (${code}: ${detail}); with sslmode=verify-ca or verify-full it must chain to a CA Node trusts (add a private CA with NODE_EXTRA_CA_CERTS)${code === "ERR_TLS_CERT_ALTNAME_INVALID" ? ` and name the host in ${url}` : ""}, or use sslmode=require to encrypt without verifying`,
      details,
    );
  }
  if (code && (code.startsWith("PG_") || code.startsWith("08"))) {
    // pg's own connection failures (no Node code): the server closed or never completed the connection.
    return new StorageError(`connect to ${where}`, code, isTransientPostgresCode(code), `${detail}; check that the server at ${target.host}:${target.port} is up and accepts connections`, details);
  }
  if (code && (BUSY.has(code) || (/^[0-9A-Z]{5}$/.test(code) && isTransientPostgresCode(code)))) {
    return new StorageError(stage === "connect" ? `connect to ${where}` : "run the migrations", code, true, detail, details);
  }
  if (code && (ACCESS_DENIED.has(code) || POSTGRES_ACCESS_DENIED.has(code))) {
    return new DatabaseConfigurationError(
      code,
      `the database server at ${target.host}:${target.port} refused the login (${code}: ${detail}); check the user name and password in ${url}, and that the user may use database "${target.database}"`,
      details,
    );
  }
  if (code === "ER_BAD_DB_ERROR") {
    return new DatabaseConfigurationError(
      code,
      `database "${target.database}" does not exist on ${target.host}:${target.port}; create it (CREATE DATABASE \`${target.database}\` CHARACTER SET utf8mb4) or fix the database name in ${url}: the library creates its tables, not the database`,
      details,
    );
  }
  if (code === POSTGRES_NO_DATABASE) {
    return new DatabaseConfigurationError(
      code,
      `database "${target.database}" does not exist on ${target.host}:${target.port}; create it (CREATE DATABASE "${target.database}" ENCODING 'UTF8') or fix the database name in ${url}: the library creates its tables, not the database`,
      details,
    );
  }
  return new StorageError(stage === "connect" ? `open ${where}` : `run the migrations on ${where}`, code, false, detail, details);
}
