import type { MigrationInterface, QueryRunner } from "typeorm";
import { ConfigurationError } from "../src/errors";

/**
 * Makes every varchar column of the library's tables compare byte for byte on MySQL and MariaDB.
 *
 * The earlier migrations left these columns at the server's default collation (typically
 * utf8mb4_general_ci), which ignores case and accents and, being PAD SPACE, trailing spaces: "ALICE",
 * "alicé" and "alice " would all find alice's row. User ids, hosts, hold and secret ids, purposes and
 * references are opaque identifiers, so this migration gives them a binary NO PAD collation:
 * utf8mb4_nopad_bin on MariaDB (10.2+), utf8mb4_0900_bin on MySQL (8.0.17+). Binary is stricter than
 * any case- or accent-insensitive collation, so no existing rows can collide under it and the unique
 * (userId, host) index stays valid; it is verified afterwards.
 *
 * SQLite (sql.js) already compares text byte for byte (its BINARY collation): nothing to do there.
 * TypeORM's schema comparison does not look at collations, so the entities need none (and could not
 * name one that exists on MySQL, MariaDB and SQLite alike).
 *
 * `down` restores the database's default collation (what the earlier migrations produced), after
 * checking that no rows would collide under it.
 */
export class BinaryIdentifierCollation1764200000000 implements MigrationInterface {
  name = "BinaryIdentifierCollation1764200000000";

  async up(queryRunner: QueryRunner): Promise<void> {
    if (!isMysqlFamily(queryRunner)) return;
    const collation = await binaryCollationOf(queryRunner);
    await alterColumns(queryRunner, "utf8mb4", collation);
    await verify(queryRunner, collation);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (!isMysqlFamily(queryRunner)) return;
    const rows = (await queryRunner.query(
      "SELECT DEFAULT_CHARACTER_SET_NAME AS charset, DEFAULT_COLLATION_NAME AS collation FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()",
    )) as Array<{ charset: string; collation: string }>;
    const { charset, collation } = rows[0];
    await refuseCollisions(queryRunner, charset, collation);
    await alterColumns(queryRunner, charset, collation);
  }
}

/** The library's varchar columns, exactly as the earlier migrations define them (type, nullability, default). */
const VARCHAR_COLUMNS: Record<string, string[]> = {
  scm_token_entry: [
    "`id` varchar(36) {c} NOT NULL",
    "`userId` varchar(128) {c} NOT NULL",
    "`host` varchar(255) {c} NOT NULL",
    "`scopes` varchar(2048) {c} NOT NULL DEFAULT ''",
    "`username` varchar(255) {c} NULL",
    "`reuse` varchar(16) {c} NOT NULL DEFAULT 'whenPossible'",
    "`refreshLeaseOwner` varchar(64) {c} NULL",
    "`reauthorizationReason` varchar(32) {c} NULL",
  ],
  scm_token_hold: ["`id` varchar(36) {c} NOT NULL", "`entryId` varchar(36) {c} NOT NULL"],
  scm_secret: [
    "`id` varchar(64) {c} NOT NULL",
    "`purpose` varchar(64) {c} NULL",
    "`state` varchar(16) {c} NOT NULL DEFAULT 'created'",
    "`reference` varchar(255) {c} NULL",
  ],
};

/** The unique keys that a weaker collation could make collide (checked before `down`). */
const UNIQUE_KEYS: Array<{ table: string; columns: string[] }> = [
  { table: "scm_token_entry", columns: ["userId", "host"] },
  { table: "scm_token_entry", columns: ["id"] },
  { table: "scm_token_hold", columns: ["id"] },
  { table: "scm_secret", columns: ["id"] },
];

const NAME = /^[A-Za-z0-9_]+$/;

function isMysqlFamily(queryRunner: QueryRunner): boolean {
  const type = queryRunner.connection.options.type;
  return type === "mysql" || type === "mariadb";
}

/**
 * MariaDB's or MySQL's binary NO PAD collation, chosen by what the server is (the connection type
 * says only which driver speaks to it), then probed: it must tell apart case, accents and a trailing space.
 */
async function binaryCollationOf(queryRunner: QueryRunner): Promise<string> {
  const [{ version }] = (await queryRunner.query("SELECT VERSION() AS version")) as Array<{ version: string }>;
  const collation = /mariadb/i.test(version) ? "utf8mb4_nopad_bin" : "utf8mb4_0900_bin";
  let probe: Array<Record<string, unknown>>;
  try {
    probe = await queryRunner.query(
      `SELECT (_utf8mb4'a' COLLATE ${collation} = _utf8mb4'a ') AS pad, (_utf8mb4'a' COLLATE ${collation} = _utf8mb4'A') AS folds_case, (_utf8mb4'e' COLLATE ${collation} = _utf8mb4 X'C3A9') AS folds_accents`,
    );
  } catch {
    throw new ConfigurationError(`the database server (${version}) lacks the collation ${collation}; the library needs MariaDB 10.2+ or MySQL 8.0.17+ so that user ids compare byte for byte`);
  }
  const row = probe[0];
  if (Number(row.pad) !== 0 || Number(row.folds_case) !== 0 || Number(row.folds_accents) !== 0) {
    throw new ConfigurationError(`the collation ${collation} on ${version} does not compare byte for byte; the library needs MariaDB 10.2+ or MySQL 8.0.17+`);
  }
  return collation;
}

async function alterColumns(queryRunner: QueryRunner, charset: string, collation: string): Promise<void> {
  if (!NAME.test(charset) || !NAME.test(collation)) throw new ConfigurationError(`unexpected character set or collation name ${JSON.stringify(charset)} / ${JSON.stringify(collation)}`);
  const c = `CHARACTER SET ${charset} COLLATE ${collation}`;
  for (const [table, columns] of Object.entries(VARCHAR_COLUMNS)) {
    // One statement per table (one table rebuild). The table default too, so a column a later migration adds gets it.
    const modify = columns.map((definition) => `MODIFY ${definition.replace("{c}", c)}`).join(", ");
    await queryRunner.query(`ALTER TABLE \`${table}\` DEFAULT ${c}, ${modify}`);
  }
}

/** Every converted column has the collation, and the unique (userId, host) index is still there. */
async function verify(queryRunner: QueryRunner, collation: string): Promise<void> {
  const tables = Object.keys(VARCHAR_COLUMNS);
  const columns = (await queryRunner.query(
    `SELECT TABLE_NAME AS t, COLUMN_NAME AS c, COLLATION_NAME AS collation FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (${tables.map(() => "?").join(", ")}) AND DATA_TYPE = 'varchar'`,
    tables,
  )) as Array<{ t: string; c: string; collation: string }>;
  const expected = Object.values(VARCHAR_COLUMNS).flat().length;
  const wrong = columns.filter((col) => col.collation !== collation);
  if (columns.length !== expected || wrong.length > 0) {
    throw new ConfigurationError(
      `after converting to ${collation}, ${wrong.map((col) => `${col.t}.${col.c}`).join(", ") || `${columns.length} of ${expected} varchar columns`} did not match; check the tables against the library's migrations`,
    );
  }
  const index = (await queryRunner.query(
    `SELECT NON_UNIQUE AS nonUnique, COLUMN_NAME AS c FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'scm_token_entry' AND INDEX_NAME = 'IDX_scm_token_entry_user_host' ORDER BY SEQ_IN_INDEX`,
  )) as Array<{ nonUnique: unknown; c: string }>;
  if (index.map((r) => r.c).join(",") !== "userId,host" || index.some((r) => Number(r.nonUnique) !== 0)) {
    throw new ConfigurationError("the unique index IDX_scm_token_entry_user_host on scm_token_entry (userId, host) is missing or not unique; recreate it before using the library");
  }
}

/** Before `down`: rows that differ only in case, accents or trailing spaces would break a unique key under `collation`. */
async function refuseCollisions(queryRunner: QueryRunner, charset: string, collation: string): Promise<void> {
  if (!NAME.test(charset) || !NAME.test(collation)) throw new ConfigurationError(`unexpected character set or collation name ${JSON.stringify(charset)} / ${JSON.stringify(collation)}`);
  for (const key of UNIQUE_KEYS) {
    const groupBy = key.columns.map((col) => `CONVERT(\`${col}\` USING ${charset}) COLLATE ${collation}`).join(", ");
    const [{ n }] = (await queryRunner.query(
      `SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM \`${key.table}\` GROUP BY ${groupBy} HAVING COUNT(*) > 1) AS collisions`,
    )) as Array<{ n: unknown }>;
    if (Number(n) > 0) {
      throw new ConfigurationError(
        `cannot revert to ${collation}: ${Number(n)} group(s) of rows in ${key.table} differ only in case, accents or trailing spaces of (${key.columns.join(", ")}) and would collide; delete or rename them first`,
      );
    }
  }
}
