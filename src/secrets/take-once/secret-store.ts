import type { DataSource } from "typeorm";
import { SqlRunner } from "../../storage/sql-runner";
import { fromSqlDate, toSqlDate } from "../../storage/sql-values";

const TABLE = "scm_secret";

/** A stored take-once secret, value still encrypted. */
export interface StoredSecret {
  id: string;
  ciphertext: string;
  purpose?: string;
  state: string;
  reference?: string;
  expiresAt: Date;
  createdAt: Date;
}

/**
 * All SQL of take-once secrets, in the style of storage/token-store.ts: one statement per step,
 * `?` placeholders, dates as comparable UTC strings, and the affected-row count of a DELETE or
 * UPDATE deciding who won — portable to MySQL, MariaDB, TiDB/Vitess and SQLite, no row lock held
 * between statements. Database errors are re-thrown as SecretStorageError (code STORAGE) without the SQL
 * parameters (they hold the id, which is a bearer capability).
 *
 * @example
 * const store = new SecretStore(dataSource);
 * await store.insert({ id, ciphertext, purpose: "clone", expiresAt, createdAt: now });
 */
export class SecretStore {
  private readonly sql: SqlRunner;

  constructor(dataSource: DataSource) {
    this.sql = new SqlRunner(dataSource);
  }

  /** @example await store.insert({ id, ciphertext, expiresAt, createdAt }) */
  async insert(row: { id: string; ciphertext: string; purpose?: string; expiresAt: Date; createdAt: Date }): Promise<void> {
    await this.execute("insert", `INSERT INTO ${TABLE} (id, ciphertext, purpose, state, reference, expiresAt, createdAt) VALUES (?, ?, ?, 'created', NULL, ?, ?)`, [
      row.id,
      row.ciphertext,
      row.purpose ?? null,
      toSqlDate(row.expiresAt),
      toSqlDate(row.createdAt),
    ]);
  }

  /** @example const row = await store.find(id) */
  async find(id: string): Promise<StoredSecret | undefined> {
    const rows = await this.select("read", `SELECT id, ciphertext, purpose, state, reference, expiresAt, createdAt FROM ${TABLE} WHERE id = ?`, [id]);
    return rows[0] && toStoredSecret(rows[0]);
  }

  /**
   * Deletes the row. Exactly one of any number of concurrent callers sees true: the database
   * serialises the DELETEs on the primary key, and the rest find nothing to delete.
   * @example if (await store.delete(id)) return value; // this caller won
   */
  async delete(id: string): Promise<boolean> {
    return (await this.execute("delete", `DELETE FROM ${TABLE} WHERE id = ?`, [id])) === 1;
  }

  /**
   * Sets the reference (step 3 of create→act→update) unless a different one is already set.
   * Returns false when no row matched. (mysql2's CLIENT_FOUND_ROWS makes a same-value update count 1, as SQLite does.)
   * @example await store.setReference(id, "ws-1234")
   */
  async setReference(id: string, reference: string): Promise<boolean> {
    return (await this.execute("update", `UPDATE ${TABLE} SET reference = ?, state = 'referenced' WHERE id = ? AND (reference IS NULL OR reference = ?)`, [reference, id, reference])) === 1;
  }

  /**
   * Deletes up to `limit` expired rows (expiresAt ≤ now): reads their ids on the expiresAt index,
   * then deletes by primary key, re-checking the expiry. Returns how many ids were selected (the loop
   * goes on while a full batch was found) and how many rows this call deleted (a concurrent reaper
   * may have deleted some first).
   * @example const { selected, deleted } = await store.deleteExpiredBatch(now, 1000);
   */
  async deleteExpiredBatch(now: Date, limit: number): Promise<{ selected: number; deleted: number }> {
    const cutoff = toSqlDate(now);
    const rows = await this.select("read", `SELECT id FROM ${TABLE} WHERE expiresAt <= ? ORDER BY expiresAt LIMIT ${Math.floor(limit)}`, [cutoff]);
    if (rows.length === 0) return { selected: 0, deleted: 0 };
    const ids = rows.map((r) => String(r.id));
    const deleted = await this.execute("delete", `DELETE FROM ${TABLE} WHERE id IN (${ids.map(() => "?").join(", ")}) AND expiresAt <= ?`, [...ids, cutoff]);
    return { selected: ids.length, deleted };
  }

  private select(operation: string, sql: string, params: unknown[]): Promise<Record<string, unknown>[]> {
    return this.sql.rows(`${operation} the scm_secret table`, sql, params);
  }

  private execute(operation: string, sql: string, params: unknown[]): Promise<number> {
    return this.sql.affected(`${operation} the scm_secret table`, sql, params);
  }
}

function toStoredSecret(row: Record<string, unknown>): StoredSecret {
  const str = (v: unknown) => (v === null || v === undefined ? undefined : String(v));
  return {
    id: String(row.id),
    ciphertext: String(row.ciphertext),
    purpose: str(row.purpose),
    state: String(row.state),
    reference: str(row.reference),
    expiresAt: fromSqlDate(row.expiresAt)!,
    createdAt: fromSqlDate(row.createdAt)!,
  };
}
