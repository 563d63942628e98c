import { randomUUID } from "node:crypto";
import type { Pool, ResultSetHeader, RowDataPacket } from "mysql2";
import { BaselineDecrypt, sqlDate } from "./baseline-crypto";
import type { HandOutBaseline, HoldGuard } from "./bench-target";

/**
 * The baselines of the hand-out benchmark: the fastest reasonable hand-written code on a plain
 * mysql2 pool, callback API (no promise wrapper per statement), that does what a hand-out must do
 * and nothing more — no validation, flags, decision table, metrics or row mapping:
 *
 * - a hand-out: read the minimal columns by the unique (userId, host) index, reserve the row with
 *   one conditional UPDATE (the same statement the library's writing hand-out sends, so the rows
 *   and their index work are the same), AES-256-GCM decrypt. Two statements, one of them a write.
 * - a releasable hand-out + release: the read, one INSERT of a hold, and at release one DELETE of
 *   it (hand-written code lets the holds table be the reservation, as the library does). Three
 *   statements. "guarded": the INSERT … SELECT a hand-out needs to be safe against a concurrent
 *   refresh — it inserts the hold only if the entry still holds the version read, with no refresh
 *   lease and no drain, reading the entry under a shared row lock (the library's statement; the
 *   statement check compares them). "unguarded": a plain INSERT … VALUES, faster but unsafe (a
 *   refresh that took its lease between the read and the insert revokes the token handed out); the
 *   bench reports it to show what the guard costs, not as a goal.
 */

const TABLE = "scm_token_entry";
const HOLDS = "scm_token_hold";
export const FIND_SQL = `SELECT id, accessToken, expiryDate, version FROM ${TABLE} WHERE userId = ? AND host = ?`;
const raise = (column: string) => `${column} = CASE WHEN ${column} IS NULL OR ${column} < ? THEN ? ELSE ${column} END`;
export const RESERVE_SQL = `UPDATE ${TABLE} SET ${raise("reservedUntilDate")}, ${raise("pinnedUntilDate")}, reservationSeq = reservationSeq + 1
       WHERE id = ? AND version = ? AND drainingSince IS NULL AND (refreshLeaseUntil IS NULL OR refreshLeaseUntil < ?)`;
const HOLD_SQL = `INSERT INTO ${HOLDS} (id, entryId, version, heldUntil) VALUES (?, ?, ?, ?)`;
/** Parameters: hold id, heldUntil, entry id, version, now. */
export const GUARDED_HOLD_SQL = `INSERT INTO ${HOLDS} (id, entryId, version, heldUntil) SELECT ?, id, version, ? FROM ${TABLE}
       WHERE id = ? AND version = ? AND (refreshLeaseUntil IS NULL OR refreshLeaseUntil < ?) AND drainingSince IS NULL LOCK IN SHARE MODE`;
export const RELEASE_SQL = `DELETE FROM ${HOLDS} WHERE id = ?`;

interface Row extends RowDataPacket {
  id: string;
  accessToken: string;
  expiryDate: Date | null;
  version: number;
}

export class BaselineMysql2 implements HandOutBaseline {
  private readonly decrypt: BaselineDecrypt;

  /** `keys`: id → base64 of 32 bytes, the same ring the library got; `findSql`: the read (see readingWith). */
  constructor(
    private readonly pool: Pool,
    private readonly keys: readonly { id: string; key: string }[],
    private readonly findSql = FIND_SQL,
  ) {
    this.decrypt = new BaselineDecrypt(keys);
  }

  readingWith(findSql: string): BaselineMysql2 {
    return new BaselineMysql2(this.pool, this.keys, findSql);
  }

  /** SELECT + reserve UPDATE + decrypt; undefined when no token is stored. */
  handOut(userId: string, host: string, lifetimeMs: number): Promise<string | undefined> {
    return this.readThenWrite(
      userId,
      host,
      (row, now) => {
        if (row.expiryDate && row.expiryDate.getTime() < now + lifetimeMs) throw new Error("baseline: token cannot cover the lifetime (the benchmark stores 24 h tokens)");
        const until = sqlDate(now + lifetimeMs);
        return [RESERVE_SQL, [until, until, until, until, row.id, row.version, sqlDate(now)]];
      },
      (row) => this.decrypt.accessToken(row.accessToken, userId, host),
    );
  }

  /** SELECT + INSERT hold (guarded or not) + decrypt; returns the token and the hold to release. */
  handOutReleasable(userId: string, host: string, lifetimeMs: number, guard: HoldGuard): Promise<{ value: string; holdId: string } | undefined> {
    const holdId = randomUUID();
    return this.readThenWrite(
      userId,
      host,
      (row, now) =>
        guard === "guarded"
          ? [GUARDED_HOLD_SQL, [holdId, sqlDate(now + lifetimeMs), row.id, row.version, sqlDate(now)]]
          : [HOLD_SQL, [holdId, row.id, row.version, sqlDate(now + lifetimeMs)]],
      (row) => ({ value: this.decrypt.accessToken(row.accessToken, userId, host), holdId }),
    );
  }

  /**
   * Every baseline hand-out: read the row, send one conditional write about it (`write` may throw to
   * refuse the row), read again when the write matched nothing (the row changed under us, as the
   * library does), then `result` (the decrypt). Undefined when no token is stored.
   */
  private readThenWrite<T>(userId: string, host: string, write: (row: Row, now: number) => [string, unknown[]], result: (row: Row) => T): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      const attempt = () =>
        this.pool.query<Row[]>(this.findSql, [userId, host], (error, rows) => {
          if (error) return reject(error);
          const row = rows[0];
          if (!row) return resolve(undefined);
          let statement: [string, unknown[]];
          try {
            statement = write(row, Date.now());
          } catch (w) {
            return reject(w as Error);
          }
          this.pool.query<ResultSetHeader>(statement[0], statement[1], (e, written) => {
            if (e) return reject(e);
            if (written.affectedRows === 0) return attempt();
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

  /** DELETE the hold. */
  release(holdId: string): Promise<void> {
    return new Promise((resolve, reject) => this.pool.query<ResultSetHeader>(RELEASE_SQL, [holdId], (e) => (e ? reject(e) : resolve())));
  }

  end(): Promise<void> {
    return new Promise((resolve) => this.pool.end(() => resolve()));
  }
}
