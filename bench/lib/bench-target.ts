/** The database servers the hand-out cells run on. */
export type BenchKind = "mariadb" | "postgres";

/**
 * Set-up SQL (seeding, counting, warming) on a plain pool, not the measured one. Statements are
 * written like the library's stores: `?` placeholders and bare camelCase column names (translated
 * for PostgreSQL as the library translates its own); `quoteName` spells a column name for hand-built
 * bulk INSERTs, which are too large to translate.
 */
export interface SetupSql {
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** A column name as the server wants it in a bulk INSERT's column list. */
  quoteName(name: string): string;
  end(): Promise<void>;
}

/** A releasable baseline's hold INSERT: checked against the entry under a shared row lock (safe), or a plain INSERT (not). */
export type HoldGuard = "guarded" | "unguarded";

/** What a hand-written baseline does: a hand-out, and a releasable hand-out with its release. */
export interface HandOutBaseline {
  /** SELECT + reserve UPDATE + decrypt; undefined when no token is stored. */
  handOut(userId: string, host: string, lifetimeMs: number): Promise<string | undefined>;
  /** SELECT + INSERT hold + decrypt; the token and the hold to release. */
  handOutReleasable(userId: string, host: string, lifetimeMs: number, guard: HoldGuard): Promise<{ value: string; holdId: string } | undefined>;
  /** DELETE the hold. */
  release(holdId: string): Promise<void>;
  /**
   * The same baseline on the same pool, reading with `findSql` — the library's own SELECT, as the
   * statement check captured it (same lookup, all the columns the library reads) — instead of the
   * minimal one. For an information cell that splits the library's gap into what it reads and what
   * its code costs. `end()` of the original ends the shared pool.
   */
  readingWith(findSql: string): HandOutBaseline;
  end(): Promise<void>;
}

/** A benchmark database of its own on one server: created and migrated at the start, dropped at the end. */
export interface BenchTarget {
  readonly kind: BenchKind;
  readonly name: string;
  /** The URL of this run's database, for createTokenService({ databaseUrl }). */
  readonly url: string;
  serverVersion(): Promise<string>;
  /** The server settings that matter for the numbers (buffer sizes, commit durability), for the report. */
  serverSettings(): Promise<Record<string, string | number>>;
  setupSql(poolSize: number): SetupSql;
  /** The hand-written baseline on a pool of `poolSize`, with the key ring the library got. */
  baseline(poolSize: number, keys: readonly { id: string; key: string }[]): HandOutBaseline;
  drop(): Promise<void>;
}
