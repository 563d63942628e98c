import { createDecipheriv } from "node:crypto";
import type { Pool, ResultSetHeader, RowDataPacket } from "mysql2/promise";

/**
 * The baseline of the hot-path benchmark: a hand-written hand-out on a plain mysql2 pool that does
 * the minimum the library must do — the same two statements as src/storage/token-store.ts (`find`
 * and `reserve`, copied verbatim, sent with the same text protocol TypeORM uses: `query`, not
 * `execute`) and the same AES-256-GCM decrypt of the access token. No validation, no flags, no
 * decision table, no metrics, no row mapping: the difference to the library is library overhead.
 */

// Copied from token-store.ts (find, and reserve for a default, non-releasable hand-out: pinned = true).
// bench/lib/sql-capture.ts checks at every run that the library still sends exactly these.
const TABLE = "scm_token_entry";
const COLUMNS =
  "id, userId, host, accessToken, refreshToken, scopes, username, reuse, expiryDate, reservedUntilDate, pinnedUntilDate, reservationSeq, drainingSince, refreshLeaseOwner, refreshLeaseUntil, reauthorizationReason, version";
const raise = (column: string) => `${column} = CASE WHEN ${column} IS NULL OR ${column} < ? THEN ? ELSE ${column} END`;
export const FIND_SQL = `SELECT ${COLUMNS} FROM ${TABLE} WHERE userId = ? AND host = ?`;
export const RESERVE_SQL = `UPDATE ${TABLE} SET ${raise("reservedUntilDate")}, ${raise("pinnedUntilDate")}, reservationSeq = reservationSeq + 1
       WHERE id = ? AND version = ? AND drainingSince IS NULL AND (refreshLeaseUntil IS NULL OR refreshLeaseUntil < ?)`;
/** What one hand-out of a valid token sends, in order. */
export const BASELINE_STATEMENTS = [FIND_SQL, RESERVE_SQL];

interface Row extends RowDataPacket {
  id: string;
  accessToken: string;
  expiryDate: Date | null;
  version: number;
}

export class BaselineHandOut {
  private readonly keys: ReadonlyMap<string, Buffer>;

  /** `keys`: id → base64 of 32 bytes, the same ring the library got. */
  constructor(
    private readonly pool: Pool,
    keys: readonly { id: string; key: string }[],
  ) {
    this.keys = new Map(keys.map((k) => [k.id, Buffer.from(k.key, "base64")]));
  }

  /** Returns the decrypted access token, reserved until now + lifetimeMs; undefined when none is stored. */
  async handOut(userId: string, host: string, lifetimeMs: number): Promise<string | undefined> {
    for (;;) {
      const [rows] = await this.pool.query<Row[]>(FIND_SQL, [userId, host]);
      const row = rows[0];
      if (!row) return undefined;
      const now = Date.now();
      if (row.expiryDate && row.expiryDate.getTime() < now + lifetimeMs) throw new Error("baseline: token cannot cover the lifetime (the benchmark stores 24 h tokens)");
      const until = sqlDate(now + lifetimeMs);
      const [result] = await this.pool.query<ResultSetHeader>(RESERVE_SQL, [until, until, until, until, row.id, row.version, sqlDate(now)]);
      if (result.affectedRows === 0) continue; // changed under us: read again, as the library does
      return this.decrypt(row.accessToken, JSON.stringify(["access", userId, host]));
    }
  }

  /** `v1:<keyId>:<iv>:<tag>:<data>`, base64url parts; AAD = the row/column context. */
  private decrypt(ciphertext: string, aad: string): string {
    const [format, keyId, iv, tag, data] = ciphertext.split(":");
    const key = this.keys.get(keyId);
    if (format !== "v1" || !key) throw new Error("baseline: unexpected ciphertext");
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
    decipher.setAAD(Buffer.from(aad, "utf8"));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    return Buffer.concat([decipher.update(Buffer.from(data, "base64url")), decipher.final()]).toString("utf8");
  }
}

/** `YYYY-MM-DD HH:MM:SS.mmm` UTC, the store's date format. */
function sqlDate(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}
