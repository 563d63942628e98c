import { createHash } from "node:crypto";

/**
 * Named prepared statements for the library's SQL on PostgreSQL.
 *
 * An unnamed statement costs a Parse message and a server-side parse and plan on every call; a named
 * one is parsed once per connection (node-postgres remembers, per connection, which names it has
 * prepared) and then costs only Bind/Execute. The name is a hash of the final text, so one text has
 * one name on every connection and two texts never share one; a new connection (the pool replaced
 * a dead or timed-out one, the server restarted) knows no names and prepares each again.
 *
 * Which texts get a name: every statement except those with an `IN (?, ?, …)` list (batch deletes of
 * the reaper and of releases), whose text changes with the list's length. Naming them would leave up
 * to one prepared statement per list length on every connection for the connection's life, for
 * statements that run once per batch, where a parse is noise. A cap per pool (NAMED_LIMIT) keeps any
 * future variable text from doing the same: past it, new texts are sent unnamed.
 */

/** `'…'` literals, `"…"` names, placeholders, words and the rest, in order. */
const TOKEN = /'(?:[^']|'')*'|"(?:[^"]|"")*"|\?|[A-Za-z_][A-Za-z0-9_$]*|[^'"?A-Za-z_]+/g;
const MIXED_CASE = /^[a-z][a-z0-9_]*[A-Z][A-Za-z0-9_]*$/;

/** The stores' SQL in PostgreSQL's spelling: `$n` placeholders and quoted mixed-case names (see postgres-dialect.ts). */
export function toPostgresSql(sql: string): string {
  let n = 0;
  return sql.replace(TOKEN, (token) => {
    if (token === "?") return `$${++n}`;
    if (MIXED_CASE.test(token)) return `"${token}"`;
    return token;
  });
}

/** A statement as sent to pg: PostgreSQL's spelling, and the name it may be prepared under (none: always unnamed). */
export interface PostgresStatement {
  text: string;
  name: string | undefined;
}

const STATEMENT_CACHE_LIMIT = 1000;
const IN_LIST = /\bIN\s*\(\s*\?/i;
const statements = new Map<string, PostgresStatement>();

/** `sql` (the stores' dialect-neutral text) as pg should send it (cached per text). */
export function postgresStatement(sql: string): PostgresStatement {
  const cached = statements.get(sql);
  if (cached) return cached;
  const text = toPostgresSql(sql);
  // 64 bits of SHA-1: texts are few and fixed, so a collision is not a practical concern (pg would
  // refuse one rather than run the wrong statement: "Prepared statements must be unique").
  const statement = { text, name: IN_LIST.test(sql) ? undefined : `scm_${createHash("sha1").update(text).digest("hex").slice(0, 16)}` };
  // IN-lists of varying length make many texts; a bounded cache keeps memory flat.
  if (statements.size >= STATEMENT_CACHE_LIMIT) statements.clear();
  statements.set(sql, statement);
  return statement;
}

/** What a pool's connections may prepare: named statements at all, and which names. */
export interface NamedStatementBudget {
  /** False once the pool's connections lost named statements behind pg's back (see lostPreparedStatement). */
  namedStatements: boolean;
  /** The names its connections may prepare (at most NAMED_LIMIT). */
  names: Set<string>;
}

/** The library has a few dozen fixed statement texts; a connection holds at most this many prepared ones. */
export const NAMED_LIMIT = 100;

/** The name to send `statement` under on `pool`'s connections, or undefined to send it unnamed. */
export function statementName(pool: NamedStatementBudget, statement: PostgresStatement): string | undefined {
  const { name } = statement;
  if (!pool.namedStatements || name === undefined) return undefined;
  if (pool.names.has(name)) return name;
  if (pool.names.size >= NAMED_LIMIT) return undefined;
  pool.names.add(name);
  return name;
}

/**
 * How a named statement can fail because the connection's prepared statements are not what pg
 * believes, before anything ran (Parse or Bind refused, no Execute): worth one retry unnamed, on a
 * new connection.
 * - "gone": the server has no such statement (26000) or already had it (42P05): something between
 *   pg and the server loses or mixes sessions' statements — a pooler in transaction mode (PgBouncer
 *   before 1.21, or without max_prepared_statements), or an application that runs DISCARD ALL /
 *   DEALLOCATE ALL on connections it shares with the library (its own DataSource). Named statements
 *   are then switched off for that pool for good.
 * - "stale": the prepared plan's result type changed under it (0A000 "cached plan must not change
 *   result type": another replica's migration altered a column). Only that connection is replaced.
 */
export function lostPreparedStatement(error: Error): "gone" | "stale" | undefined {
  const code = (error as { code?: unknown }).code;
  if (code === "26000" || code === "42P05") return "gone";
  if (code === "0A000" && /cached plan must not change result type/.test(error.message)) return "stale";
  return undefined;
}
