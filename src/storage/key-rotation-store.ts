import type { DataSource } from "typeorm";
import { SqlRunner } from "./sql-runner";
import { fromSqlDate, toSqlDate } from "./sql-values";

const TABLE = "scm_token_entry";
const SECRETS = "scm_secret";

/** A token entry whose access or refresh ciphertext is not under the target key (tokens still encrypted). */
export interface RotationCandidate {
  id: string;
  userId: string;
  host: string;
  accessTokenCiphertext: string;
  refreshTokenCiphertext?: string;
  version: number;
}

/**
 * The SQL of key rotation (`scm-token-service rotate-keys`), in the style of token-store.ts: plain
 * `?` placeholders, one statement per step, and the affected-row count of a compare-and-set UPDATE
 * deciding whether the write won. Portable to MySQL, MariaDB and SQLite (SUBSTR, no LIKE: key ids
 * may contain `_`, a LIKE wildcard).
 *
 * A ciphertext is "under" key K when it starts with `v1:K:` (crypto/key-ring.ts). Rows are visited
 * in id order (keyset pagination), so a run that stops half-way — or skips a row that changed under
 * it — is resumed by running it again: rows already under the target key no longer match.
 *
 * @example
 * const store = new KeyRotationStore(dataSource);
 * for (let batch = await store.nextBatch("2026-02", "", 500); batch.length > 0; batch = await store.nextBatch("2026-02", batch.at(-1)!.id, 500)) {
 *   for (const row of batch) await store.replaceCiphertexts(row, reencrypt(row.accessTokenCiphertext), reencrypt(row.refreshTokenCiphertext));
 * }
 */
export class KeyRotationStore {
  // Driver failures become StorageError without the statements' parameters (ciphertexts, user ids).
  private readonly sql: SqlRunner;

  constructor(dataSource: DataSource) {
    this.sql = new SqlRunner(dataSource);
  }

  /** How many entries have a ciphertext that is not under `keyId`. */
  async countNotUnder(keyId: string): Promise<number> {
    const [filter, params] = notUnder(keyId);
    const rows = await this.sql.rows("count entries to re-encrypt", `SELECT COUNT(*) AS n FROM ${TABLE} WHERE ${filter}`, params);
    return Number(rows[0]?.n ?? 0);
  }

  /** The next `limit` entries (by id, after `afterId`; "" for the first batch) with a ciphertext not under `keyId`. */
  async nextBatch(keyId: string, afterId: string, limit: number): Promise<RotationCandidate[]> {
    const [filter, params] = notUnder(keyId);
    const rows = await this.sql.rows(
      "read entries to re-encrypt",
      `SELECT id, userId, host, accessToken, refreshToken, version FROM ${TABLE} WHERE id > ? AND ${filter} ORDER BY id LIMIT ${Math.floor(limit)}`,
      [afterId, ...params],
    );
    return rows.map((row) => ({
      id: String(row.id),
      userId: String(row.userId),
      host: String(row.host),
      accessTokenCiphertext: String(row.accessToken),
      refreshTokenCiphertext: row.refreshToken === null || row.refreshToken === undefined ? undefined : String(row.refreshToken),
      version: Number(row.version),
    }));
  }

  /**
   * Writes re-encrypted ciphertexts if the row still holds exactly what was read: same `version` and
   * the same old ciphertexts. A refresh or storeToken that landed meanwhile makes it a no-op (false),
   * so rotation never overwrites a newer token. The version is deliberately not bumped: the token
   * did not change, and releasable holds (scm_token_hold.version) and in-flight reservations that
   * compare-and-set on the version must keep working across a rotation.
   */
  async replaceCiphertexts(row: RotationCandidate, accessTokenCiphertext: string, refreshTokenCiphertext: string | undefined): Promise<boolean> {
    const oldRefresh = row.refreshTokenCiphertext === undefined ? "refreshToken IS NULL" : "refreshToken = ?";
    const params: unknown[] = [accessTokenCiphertext, refreshTokenCiphertext ?? null, row.id, row.version, row.accessTokenCiphertext];
    if (row.refreshTokenCiphertext !== undefined) params.push(row.refreshTokenCiphertext);
    return (await this.sql.affected("write re-encrypted tokens", `UPDATE ${TABLE} SET accessToken = ?, refreshToken = ? WHERE id = ? AND version = ? AND accessToken = ? AND ${oldRefresh}`, params)) > 0;
  }

  /**
   * Take-once secrets (scm_secret) that are not under `keyId` and have not expired at `now`. They
   * are not re-encrypted — they live minutes and are deleted when taken — so the old key must stay
   * in the ring until `latestExpiry`.
   */
  async liveSecretsNotUnder(keyId: string, now: Date): Promise<{ count: number; latestExpiry?: Date }> {
    const prefix = `v1:${keyId}:`;
    const rows = await this.sql.rows("count live secrets under old keys", `SELECT COUNT(*) AS n, MAX(expiresAt) AS latest FROM ${SECRETS} WHERE expiresAt > ? AND SUBSTR(ciphertext, 1, ?) <> ?`, [
      toSqlDate(now),
      prefix.length,
      prefix,
    ]);
    return { count: Number(rows[0]?.n ?? 0), latestExpiry: fromSqlDate(rows[0]?.latest) };
  }
}

/** `accessToken` or `refreshToken` does not start with `v1:<keyId>:`. */
function notUnder(keyId: string): [string, unknown[]] {
  const prefix = `v1:${keyId}:`;
  return [
    "(SUBSTR(accessToken, 1, ?) <> ? OR (refreshToken IS NOT NULL AND SUBSTR(refreshToken, 1, ?) <> ?))",
    [prefix.length, prefix, prefix.length, prefix],
  ];
}
