import { randomUUID } from "node:crypto";
import type { DataSource } from "typeorm";
import { ConfigurationError } from "../errors";
import type { Logger } from "../logger";
import { SqlRunner } from "./sql-runner";
import { fromSqlDate, toSqlDate, toSqlDateOrNull } from "./sql-values";

const TABLE = "scm_token_entry";
const HOLDS = "scm_token_hold";
/** What the hot-path read returns: every column the hand-out's decision needs (bench/read-width.ts measures what their number costs). */
export const ENTRY_COLUMNS =
  "id, userId, host, accessToken, refreshToken, scopes, username, reuse, expiryDate, reservedUntilDate, pinnedUntilDate, reservationSeq, drainingSince, refreshLeaseOwner, refreshLeaseUntil, reauthorizationReason, version";

const FIND_SQL = `SELECT ${ENTRY_COLUMNS} FROM ${TABLE} WHERE userId = ? AND host = ?`;

/** Where a reap's walk over the expiry index stopped (see deleteDeadBatch); starts empty. */
export interface ReapCursor {
  expiryDate?: string;
  id?: string;
}

/** A new token to store (ciphertexts). */
export interface NewTokenValues {
  accessTokenCiphertext: string;
  refreshTokenCiphertext?: string;
  scopes: string[];
  username?: string;
  reuse: string;
  expiryDate?: Date;
}

/** A stored row as the service sees it (tokens still encrypted). */
export interface StoredEntry extends NewTokenValues {
  id: string;
  userId: string;
  host: string;
  reservedUntilDate?: Date;
  pinnedUntilDate?: Date;
  reservationSeq: number;
  drainingSince?: Date;
  refreshLeaseOwner?: string;
  refreshLeaseUntil?: Date;
  reauthorizationReason?: string;
  version: number;
}

/**
 * All SQL of the library. Every write that matters is one conditional statement whose
 * affected-row count tells the caller whether it won, so no row lock is held across HTTP and no
 * transaction spans more than one statement. Works on MySQL, MariaDB, PostgreSQL and SQLite: plain
 * `?` placeholders, CASE instead of GREATEST, dates as comparable UTC strings. (mysql2's default
 * CLIENT_FOUND_ROWS makes affected = matched rows, as SQLite does.) The one dialect-specific word is
 * the shared row lock of insertHold (see shareLockClause).
 */
export class TokenStore {
  private readonly sql: SqlRunner;
  private readonly shareLock: string;

  /** `statementTimeoutMs`: every statement's deadline (see TokenServiceOptions.statementTimeoutMs). */
  constructor(dataSource: DataSource, options: { statementTimeoutMs?: number; logger?: Logger } = {}) {
    // The hot path (find + reserve on every hand-out) skips TypeORM's per-statement QueryRunner machinery.
    this.sql = new SqlRunner(dataSource, { direct: true, statementTimeoutMs: options.statementTimeoutMs, logger: options.logger });
    this.shareLock = shareLockClause(dataSource.options.type);
  }

  /** The hot-path read: one lookup on the unique (userId, host) index. */
  find(userId: string, host: string): Promise<StoredEntry | undefined> {
    return this.selectOne(FIND_SQL, [userId, host]);
  }

  findById(id: string): Promise<StoredEntry | undefined> {
    return this.selectOne(`SELECT ${ENTRY_COLUMNS} FROM ${TABLE} WHERE id = ?`, [id]);
  }

  /**
   * Stores a token for (userId, host), replacing any earlier one: a new token means a new version,
   * and reservation, drain, lease and re-authorisation marks are cleared.
   */
  async upsert(userId: string, host: string, values: NewTokenValues, now: Date): Promise<void> {
    const params = [
      values.accessTokenCiphertext,
      values.refreshTokenCiphertext ?? null,
      values.scopes.join(" "),
      values.username ?? null,
      values.reuse,
      toSqlDateOrNull(values.expiryDate),
      toSqlDate(now),
    ];
    const update = `UPDATE ${TABLE} SET accessToken = ?, refreshToken = ?, scopes = ?, username = ?, reuse = ?, expiryDate = ?, updatedAt = ?,
      reservedUntilDate = NULL, pinnedUntilDate = NULL, reservationSeq = reservationSeq + 1, drainingSince = NULL, refreshLeaseOwner = NULL, refreshLeaseUntil = NULL, reauthorizationReason = NULL, version = version + 1
      WHERE userId = ? AND host = ?`;
    if ((await this.execute(update, [...params, userId, host])) > 0) return;
    try {
      await this.execute(
        `INSERT INTO ${TABLE} (id, userId, host, accessToken, refreshToken, scopes, username, reuse, expiryDate, updatedAt, createdAt, version)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
        [randomUUID(), userId, host, ...params, toSqlDate(now)],
      );
    } catch (e) {
      // A concurrent storeToken inserted the row first: the unique index said so; update it instead.
      if ((await this.execute(update, [...params, userId, host])) === 0) throw e;
    }
  }

  /**
   * Reserves the token the caller read (`version`) until `until`: raises reservedUntilDate — never
   * lowers it — and, for a non-releasable hand-out (`pin`), pinnedUntilDate as well, if no refresh
   * lease is live and, unless `duringDrain`, no drain is under way. Nothing lowers either while the
   * version is stored (releases only delete holds), which is what makes write-free hand-outs safe
   * (hand-out-reservation.ts). `duringDrain`: the caller read the entry draining and decide() let it
   * join (docs/how-it-works.md); the statement then drops the drain guard. Without `pin` it is the
   * row reservation a releasable hand-out adds for replicas of 0.1 during a rolling upgrade
   * (TokenServiceOptions.legacyReplicas), which know only reservedUntilDate. Bumps reservationSeq
   * (0.1's release recomputes by compare-and-set on it; inspect shows it). Returns false when the
   * caller must re-read (the token changed, a refresh started, a drain began).
   */
  async reserve(id: string, version: number, until: Date, now: Date, mode: { pin: boolean; duringDrain: boolean }): Promise<boolean> {
    const u = toSqlDate(until);
    const raise = (column: string) => `${column} = CASE WHEN ${column} IS NULL OR ${column} < ? THEN ? ELSE ${column} END`;
    const sets = mode.pin ? `${raise("reservedUntilDate")}, ${raise("pinnedUntilDate")}` : raise("reservedUntilDate");
    const drainGuard = mode.duringDrain ? "" : " AND drainingSince IS NULL";
    const affected = await this.execute(
      `UPDATE ${TABLE} SET ${sets}, reservationSeq = reservationSeq + 1
       WHERE id = ? AND version = ?${drainGuard} AND (refreshLeaseUntil IS NULL OR refreshLeaseUntil < ?)`,
      [...(mode.pin ? [u, u, u, u] : [u, u]), id, version, toSqlDate(now)],
    );
    return affected > 0;
  }

  /**
   * Records a releasable hand-out of `version` until `until`, in one statement: the hold is inserted
   * only if the entry still holds `version`, no refresh lease is live and (unless `duringDrain`, see
   * reserve) no drain is under way. The entry row is read with a shared row lock, so a refresh lease
   * taken concurrently either waits for this insert to commit (and its holder then sees the hold) or
   * committed first (and this insert sees it and inserts nothing): the argument is in
   * hand-out-reservation.ts. Returns the hold's id, or undefined when nothing was inserted (re-read).
   *
   * `id`: the hold's id, chosen by the caller (default: a new random UUID) before the statement is
   * sent, so that a caller whose statement failed with an unknown outcome (a transient StorageError:
   * the connection was lost or the statement deadline passed, possibly after the server committed)
   * still knows which hold may exist and can delete it (deleteHold; see TokenService.recordHold).
   */
  async insertHold(entryId: string, version: number, until: Date, now: Date, mode: { duringDrain: boolean }, id: string = randomUUID()): Promise<string | undefined> {
    const inserted = await this.execute(insertHoldSql(this.shareLock, mode.duringDrain), [id, toSqlDate(until), entryId, version, toSqlDate(now)]);
    return inserted > 0 ? id : undefined;
  }

  /**
   * The live (unreleased, unexpired) holds of the entry's `version`: how many, and the latest end.
   * A plain read: it sees every hold committed before it started (see hand-out-reservation.ts).
   */
  async liveHolds(entryId: string, version: number, now: Date): Promise<{ count: number; latestUntil?: Date }> {
    const rows = await this.sql.rows(
      "read holds",
      `SELECT COUNT(*) AS n, MAX(heldUntil) AS latest FROM ${HOLDS} WHERE entryId = ? AND version = ? AND heldUntil > ?`,
      [entryId, version, toSqlDate(now)],
    );
    return { count: Number(rows[0]?.n ?? 0), latestUntil: fromSqlDate(rows[0]?.latest) };
  }

  /** Deletes a hold (a release: nothing else to update); true if it existed. */
  async deleteHold(holdId: string): Promise<boolean> {
    return (await this.execute(`DELETE FROM ${HOLDS} WHERE id = ?`, [holdId])) > 0;
  }

  /** Deletes up to `limit` holds that ended before `before` (released holds are deleted at once). */
  async deleteEndedHoldsBatch(before: Date, limit: number): Promise<number> {
    const ids = await this.sql.rows("find ended holds", `SELECT id FROM ${HOLDS} WHERE heldUntil < ? LIMIT ${Math.floor(limit)}`, [toSqlDate(before)]);
    if (ids.length === 0) return 0;
    return this.execute(`DELETE FROM ${HOLDS} WHERE id IN (${ids.map(() => "?").join(", ")})`, ids.map((r) => String(r.id)));
  }

  /** Marks the entry draining (a forced refresh waits for holders); idempotent. */
  async markDraining(id: string, version: number, now: Date): Promise<boolean> {
    const affected = await this.execute(
      `UPDATE ${TABLE} SET drainingSince = CASE WHEN drainingSince IS NULL THEN ? ELSE drainingSince END WHERE id = ? AND version = ?`,
      [toSqlDate(now), id, version],
    );
    return affected > 0;
  }

  /**
   * Takes the refresh lease if it is free or expired and the token is still `version`. With
   * `onlyIfUnreservedAt`, also requires that no non-releasable hand-out holds the token at that
   * instant (reservedUntilDate), so a non-forced refresh can never revoke a copy pinned after the
   * caller's read. Releasable hand-outs (holds) are checked by the caller after this UPDATE has
   * committed (liveHolds): see hand-out-reservation.ts.
   */
  async takeLease(id: string, version: number, owner: string, leaseUntil: Date, now: Date, onlyIfUnreservedAt?: Date): Promise<boolean> {
    const params: unknown[] = [owner, toSqlDate(leaseUntil), id, version, toSqlDate(now)];
    let sql = `UPDATE ${TABLE} SET refreshLeaseOwner = ?, refreshLeaseUntil = ?
      WHERE id = ? AND version = ? AND (refreshLeaseUntil IS NULL OR refreshLeaseUntil < ?)`;
    if (onlyIfUnreservedAt) {
      // Same rule as decide(): a hold ends at the latest when the token expires.
      sql += " AND (reservedUntilDate IS NULL OR reservedUntilDate <= ? OR expiryDate <= ?)";
      params.push(toSqlDate(onlyIfUnreservedAt), toSqlDate(onlyIfUnreservedAt));
    }
    return (await this.execute(sql, params)) > 0;
  }

  /**
   * Writes a refreshed token if the entry is still at `version` (compare-and-set): a writer with a
   * stale view never overwrites a newer token. The new token starts reserved for its requester
   * until that requester's own hand-out reserves it like any other (so nobody refreshes it again in
   * between; this reservation is not a hold: a releasable requester's release leaves it to end by itself).
   */
  async commitRefresh(
    id: string,
    version: number,
    values: { accessTokenCiphertext: string; refreshTokenCiphertext?: string; scopes: string[]; expiryDate?: Date; reservedUntilDate: Date },
    now: Date,
  ): Promise<boolean> {
    const affected = await this.execute(
      `UPDATE ${TABLE} SET accessToken = ?, refreshToken = ?, scopes = ?, expiryDate = ?, reservedUntilDate = ?, updatedAt = ?,
         pinnedUntilDate = NULL, reservationSeq = reservationSeq + 1, drainingSince = NULL, refreshLeaseOwner = NULL, refreshLeaseUntil = NULL, reauthorizationReason = NULL, version = version + 1
       WHERE id = ? AND version = ?`,
      [
        values.accessTokenCiphertext,
        values.refreshTokenCiphertext ?? null,
        values.scopes.join(" "),
        toSqlDateOrNull(values.expiryDate),
        toSqlDate(values.reservedUntilDate),
        toSqlDate(now),
        id,
        version,
      ],
    );
    return affected > 0;
  }

  /**
   * Ends the reservation commitRefresh wrote for a refresh's requester, once that requester — a
   * releasable hand-out — has recorded its hold: reservedUntilDate drops to pinnedUntilDate. Exact:
   * after a commit (which clears the pin) every other write of reservedUntilDate of this version is
   * a non-releasable hand-out raising both columns together, so the pins are all that is left.
   */
  async endRefreshReservation(id: string, version: number): Promise<void> {
    await this.execute(`UPDATE ${TABLE} SET reservedUntilDate = pinnedUntilDate WHERE id = ? AND version = ?`, [id, version]);
  }

  /** Gives the lease back (after a failed refresh) if this owner still holds it. */
  async releaseLease(id: string, owner: string): Promise<void> {
    await this.execute(`UPDATE ${TABLE} SET refreshLeaseOwner = NULL, refreshLeaseUntil = NULL WHERE id = ? AND refreshLeaseOwner = ?`, [id, owner]);
  }

  /** Records that the refresh token is dead, keeping the tokens (a later storeToken clears it). */
  async markReauthorizationRequired(id: string, version: number, reason: string): Promise<boolean> {
    const affected = await this.execute(
      `UPDATE ${TABLE} SET reauthorizationReason = ?, refreshLeaseOwner = NULL, refreshLeaseUntil = NULL, drainingSince = NULL WHERE id = ? AND version = ?`,
      [reason, id, version],
    );
    return affected > 0;
  }

  /** Deletes the entry if it still holds `version`; true for exactly one of any number of concurrent callers. */
  async takeOnce(id: string, version: number): Promise<boolean> {
    return (await this.execute(`DELETE FROM ${TABLE} WHERE id = ? AND version = ?`, [id, version])) > 0;
  }

  async delete(userId: string, host?: string): Promise<number> {
    if (host === undefined) return this.execute(`DELETE FROM ${TABLE} WHERE userId = ?`, [userId]);
    return this.execute(`DELETE FROM ${TABLE} WHERE userId = ? AND host = ?`, [userId, host]);
  }

  /**
   * Deletes up to `limit` entries that can never be handed out again: expired and either without a
   * refresh token or marked for re-authorisation. Bounded batches keep locks short on a busy table.
   * With a `cursor`, batches walk the expiry index in (expiryDate, id) order from where the last one
   * stopped (the cursor is advanced), so expired entries that are kept (refreshable ones) are
   * scanned once per reap, not once per batch.
   */
  async deleteDeadBatch(now: Date, limit: number, cursor?: ReapCursor): Promise<number> {
    const params: unknown[] = [toSqlDate(now)];
    let after = "";
    if (cursor?.expiryDate !== undefined && cursor.id !== undefined) {
      after = " AND (expiryDate > ? OR (expiryDate = ? AND id > ?))";
      params.push(cursor.expiryDate, cursor.expiryDate, cursor.id);
    }
    const ids = await this.sql.rows(
      "find dead entries",
      `SELECT id, expiryDate FROM ${TABLE} WHERE expiryDate < ? AND (refreshToken IS NULL OR reauthorizationReason IS NOT NULL)${after} ORDER BY expiryDate, id LIMIT ${Math.floor(limit)}`,
      params,
    );
    const last = ids[ids.length - 1];
    const lastExpiry = last && fromSqlDate(last.expiryDate);
    if (cursor && last && lastExpiry) {
      cursor.expiryDate = toSqlDate(lastExpiry);
      cursor.id = String(last.id);
    }
    const list = ids.map((r) => String(r.id));
    if (list.length === 0) return 0;
    return this.execute(`DELETE FROM ${TABLE} WHERE id IN (${list.map(() => "?").join(", ")}) AND expiryDate < ?`, [...list, toSqlDate(now)]);
  }

  /** The entry a lookup by a unique key finds. A then(), not an async function: find is on every hand-out. */
  private selectOne(sql: string, params: unknown[]): Promise<StoredEntry | undefined> {
    return this.sql.rows("read a token entry", sql, params).then((rows) => (rows.length > 0 ? toStoredEntry(rows[0]) : undefined));
  }

  private execute(sql: string, params: unknown[]): Promise<number> {
    return this.sql.affected("write a token entry", sql, params);
  }
}

function toStoredEntry(row: Record<string, unknown>): StoredEntry {
  const str = (v: unknown) => (v === null || v === undefined ? undefined : String(v));
  return {
    id: String(row.id),
    userId: String(row.userId),
    host: String(row.host),
    accessTokenCiphertext: String(row.accessToken),
    refreshTokenCiphertext: str(row.refreshToken),
    scopes: String(row.scopes ?? "").split(" ").filter(Boolean),
    username: str(row.username),
    reuse: String(row.reuse ?? "whenPossible"),
    expiryDate: fromSqlDate(row.expiryDate),
    reservedUntilDate: fromSqlDate(row.reservedUntilDate),
    pinnedUntilDate: fromSqlDate(row.pinnedUntilDate),
    reservationSeq: Number(row.reservationSeq ?? 0),
    drainingSince: fromSqlDate(row.drainingSince),
    refreshLeaseOwner: str(row.refreshLeaseOwner),
    refreshLeaseUntil: fromSqlDate(row.refreshLeaseUntil),
    reauthorizationReason: str(row.reauthorizationReason),
    version: Number(row.version),
  };
}

/**
 * insertHold's statement; parameters: hold id, heldUntil, entry id, version, now. Exported for the
 * protocol tests, which run it inside a transaction they hold open.
 */
export function insertHoldSql(shareLock: string, duringDrain: boolean): string {
  const drainGuard = duringDrain ? "" : " AND drainingSince IS NULL";
  return `INSERT INTO ${HOLDS} (id, entryId, version, heldUntil) SELECT ?, id, version, ? FROM ${TABLE}
       WHERE id = ? AND version = ? AND (refreshLeaseUntil IS NULL OR refreshLeaseUntil < ?)${drainGuard}${shareLock}`;
}

/**
 * The clause that makes insertHold's read of the entry row a locking read holding a shared row
 * lock until the insert commits, so that it conflicts with the lease UPDATE (an exclusive lock).
 * MySQL/MariaDB: LOCK IN SHARE MODE (MariaDB has no FOR SHARE; without a clause InnoDB at READ
 * COMMITTED reads a snapshot and takes no lock). PostgreSQL: FOR SHARE (at READ COMMITTED it waits
 * for a concurrent UPDATE of the row and re-checks the WHERE on the committed row). SQLite (sql.js):
 * one writer at a time, every statement sees the last committed one: no clause.
 */
export function shareLockClause(type: DataSource["options"]["type"]): string {
  switch (type) {
    case "mysql":
    case "mariadb":
      return " LOCK IN SHARE MODE";
    case "postgres":
      return " FOR SHARE";
    case "sqljs":
    case "better-sqlite3":
      return "";
    default:
      throw new ConfigurationError(`database type "${type}" is not supported; use MySQL, MariaDB, PostgreSQL or sql.js`);
  }
}
