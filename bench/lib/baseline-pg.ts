import { randomUUID } from "node:crypto";
import type { CustomTypesConfig, Pool, QueryConfig, QueryResult } from "pg";
import { BaselineDecrypt, sqlDate } from "./baseline-crypto";
import type { HandOutBaseline, HoldGuard } from "./bench-target";

/**
 * The PostgreSQL baselines: the fastest reasonable hand-written code on a plain pg.Pool (callback
 * API, no promise per statement) that does what a hand-out must do and nothing more, like the
 * mysql2 ones (baseline-mysql2.ts):
 *
 * - a hand-out: read the minimal columns by the unique (userId, host) index, reserve the row with
 *   the same conditional UPDATE the library's writing hand-out sends, AES-256-GCM decrypt;
 * - a releasable hand-out + release: the read, one INSERT of a hold ("guarded": the library's
 *   INSERT … SELECT … FOR SHARE, safe against a concurrent refresh; "unguarded": a plain INSERT,
 *   reported to show what the guard costs), and at release one DELETE.
 *
 * The statements are written out in PostgreSQL's spelling ($n placeholders, quoted camelCase
 * columns); the statement check (sql-capture.ts) compares the reserve UPDATE with what the
 * library sends.
 *
 * Named prepared statements (`{ name, text, values }`): pg parses each name once per connection and
 * then sends only Bind/Execute, where an unnamed statement costs a Parse message and a server-side
 * parse and plan on every call. That is what careful hand-written pg code does for a fixed hot
 * statement, so it is the bar; the library sends named statements too (postgres-statements.ts). In
 * short runs on the 2-core development machine (shared, load 3–6) the named baseline did 1.4–1.9×
 * the ops/s of the same loop with unnamed statements in the write-free cells and spent 30–50 µs less
 * CPU per hand-out; in the must-write cell, where the UPDATE's commit dominates, the two were level.
 */

export const PG_FIND_SQL = `SELECT id, "accessToken", "expiryDate", version FROM scm_token_entry WHERE "userId" = $1 AND host = $2`;
const FIND: Omit<QueryConfig, "values"> = { name: "bench_find", text: PG_FIND_SQL };
const raise = (column: string, a: number, b: number) => `"${column}" = CASE WHEN "${column}" IS NULL OR "${column}" < $${a} THEN $${b} ELSE "${column}" END`;
/** The library's reserve UPDATE of a non-releasable hand-out outside a drain (token-store.ts reserve()). */
export const PG_RESERVE_SQL = `UPDATE scm_token_entry SET ${raise("reservedUntilDate", 1, 2)}, ${raise("pinnedUntilDate", 3, 4)}, "reservationSeq" = "reservationSeq" + 1
       WHERE id = $5 AND version = $6 AND "drainingSince" IS NULL AND ("refreshLeaseUntil" IS NULL OR "refreshLeaseUntil" < $7)`;
const RESERVE: Omit<QueryConfig, "values"> = { name: "bench_reserve", text: PG_RESERVE_SQL };
const HOLD: Omit<QueryConfig, "values"> = { name: "bench_hold", text: `INSERT INTO scm_token_hold (id, "entryId", version, "heldUntil") VALUES ($1, $2, $3, $4)` };
/** Parameters: hold id, heldUntil, entry id, version, now. */
export const PG_GUARDED_HOLD_SQL = `INSERT INTO scm_token_hold (id, "entryId", version, "heldUntil") SELECT $1, id, version, $2 FROM scm_token_entry
       WHERE id = $3 AND version = $4 AND ("refreshLeaseUntil" IS NULL OR "refreshLeaseUntil" < $5) AND "drainingSince" IS NULL FOR SHARE`;
const GUARDED_HOLD: Omit<QueryConfig, "values"> = { name: "bench_guarded_hold", text: PG_GUARDED_HOLD_SQL };
export const PG_RELEASE_SQL = "DELETE FROM scm_token_hold WHERE id = $1";
const RELEASE: Omit<QueryConfig, "values"> = { name: "bench_release", text: PG_RELEASE_SQL };

interface Row {
  id: string;
  accessToken: string;
  /** `timestamp without time zone` holding UTC, kept as text (see TIMESTAMP_AS_TEXT). */
  expiryDate: string | null;
  version: number;
}

/** pg parses `timestamp` (OID 1114) as local time; the columns hold UTC: keep the text, as the library does. */
export function timestampAsText(types: CustomTypesConfig): CustomTypesConfig {
  return { getTypeParser: ((oid: number, format?: string) => (oid === 1114 ? (value: string) => value : types.getTypeParser(oid, format as "text"))) as CustomTypesConfig["getTypeParser"] };
}

export class BaselinePg implements HandOutBaseline {
  private readonly decrypt: BaselineDecrypt;
  private readonly types: CustomTypesConfig;

  /** `types`: the pg module's type registry (pg.types); `keys`: the key ring the library got; `find`: the read (see readingWith). */
  constructor(
    private readonly pool: Pool,
    private readonly pgTypes: CustomTypesConfig,
    private readonly keys: readonly { id: string; key: string }[],
    private readonly find: Omit<QueryConfig, "values"> = FIND,
  ) {
    this.decrypt = new BaselineDecrypt(keys);
    this.types = timestampAsText(pgTypes);
  }

  readingWith(findSql: string): BaselinePg {
    return new BaselinePg(this.pool, this.pgTypes, this.keys, { name: "bench_find_as_library", text: findSql });
  }

  private run(statement: Omit<QueryConfig, "values">, values: unknown[], done: (error: Error | undefined, result: QueryResult) => void): void {
    this.pool.query({ ...statement, values, types: this.types }, (error: Error | undefined, result: QueryResult) => done(error ?? undefined, result));
  }

  handOut(userId: string, host: string, lifetimeMs: number): Promise<string | undefined> {
    return this.readThenWrite(
      userId,
      host,
      (row, now) => {
        if (row.expiryDate && Date.parse(`${row.expiryDate.replace(" ", "T")}Z`) < now + lifetimeMs) throw new Error("baseline: token cannot cover the lifetime (the benchmark stores 24 h tokens)");
        const until = sqlDate(now + lifetimeMs);
        return [RESERVE, [until, until, until, until, row.id, row.version, sqlDate(now)]];
      },
      (row) => this.decrypt.accessToken(row.accessToken, userId, host),
    );
  }

  handOutReleasable(userId: string, host: string, lifetimeMs: number, guard: HoldGuard): Promise<{ value: string; holdId: string } | undefined> {
    const holdId = randomUUID();
    return this.readThenWrite(
      userId,
      host,
      (row, now) =>
        guard === "guarded"
          ? [GUARDED_HOLD, [holdId, sqlDate(now + lifetimeMs), row.id, row.version, sqlDate(now)]]
          : [HOLD, [holdId, row.id, row.version, sqlDate(now + lifetimeMs)]],
      (row) => ({ value: this.decrypt.accessToken(row.accessToken, userId, host), holdId }),
    );
  }

  /** As BaselineMysql2's: read, one conditional write (re-read when it matched nothing), then `result`. */
  private readThenWrite<T>(
    userId: string,
    host: string,
    write: (row: Row, now: number) => [Omit<QueryConfig, "values">, unknown[]],
    result: (row: Row) => T,
  ): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      const attempt = () =>
        this.run(this.find, [userId, host], (error, found) => {
          if (error) return reject(error);
          const row = found.rows[0] as Row | undefined;
          if (!row) return resolve(undefined);
          let statement: [Omit<QueryConfig, "values">, unknown[]];
          try {
            statement = write(row, Date.now());
          } catch (w) {
            return reject(w as Error);
          }
          this.run(statement[0], statement[1], (e, written) => {
            if (e) return reject(e);
            if (written.rowCount === 0) return attempt();
            try {
              resolve(result(row));
            } catch (d) {
              reject(d as Error);
            }
          });
        });
      attempt();
    });
  }

  release(holdId: string): Promise<void> {
    return new Promise((resolve, reject) => this.run(RELEASE, [holdId], (e) => (e ? reject(e) : resolve())));
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}
