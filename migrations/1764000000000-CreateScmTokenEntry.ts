import { Table, TableIndex, type MigrationInterface, type QueryRunner } from "typeorm";
import { dateColumnType } from "./column-types";

/** Creates scm_token_entry and scm_token_hold. Table API only (dates: see column-types.ts), so it runs on MySQL, MariaDB, PostgreSQL and SQLite (sql.js). */
export class CreateScmTokenEntry1764000000000 implements MigrationInterface {
  name = "CreateScmTokenEntry1764000000000";

  async up(queryRunner: QueryRunner): Promise<void> {
    const datetime = (name: string, isNullable = true) => ({ name, type: dateColumnType(queryRunner), precision: 3, isNullable });
    await queryRunner.createTable(
      new Table({
        name: "scm_token_entry",
        columns: [
          { name: "id", type: "varchar", length: "36", isPrimary: true },
          { name: "userId", type: "varchar", length: "128" },
          { name: "host", type: "varchar", length: "255" },
          { name: "accessToken", type: "text" },
          { name: "refreshToken", type: "text", isNullable: true },
          { name: "scopes", type: "varchar", length: "2048", default: "''" },
          { name: "username", type: "varchar", length: "255", isNullable: true },
          { name: "reuse", type: "varchar", length: "16", default: "'whenPossible'" },
          datetime("expiryDate"),
          datetime("reservedUntilDate"),
          datetime("pinnedUntilDate"),
          { name: "reservationSeq", type: "integer", default: 0 },
          datetime("drainingSince"),
          { name: "refreshLeaseOwner", type: "varchar", length: "64", isNullable: true },
          datetime("refreshLeaseUntil"),
          { name: "reauthorizationReason", type: "varchar", length: "32", isNullable: true },
          { name: "version", type: "integer", default: 1 },
          datetime("createdAt", false),
          datetime("updatedAt", false),
        ],
      }),
      true,
    );
    await queryRunner.createIndex("scm_token_entry", new TableIndex({ name: "IDX_scm_token_entry_user_host", columnNames: ["userId", "host"], isUnique: true }));
    await queryRunner.createIndex("scm_token_entry", new TableIndex({ name: "IDX_scm_token_entry_expiry", columnNames: ["expiryDate"] }));
    // One row per releasable hand-out: released rows are deleted, expired ones reaped.
    await queryRunner.createTable(
      new Table({
        name: "scm_token_hold",
        columns: [
          { name: "id", type: "varchar", length: "36", isPrimary: true },
          { name: "entryId", type: "varchar", length: "36" },
          { name: "version", type: "integer" },
          datetime("heldUntil", false),
        ],
      }),
      true,
    );
    await queryRunner.createIndex("scm_token_hold", new TableIndex({ name: "IDX_scm_token_hold_entry", columnNames: ["entryId", "heldUntil"] }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable("scm_token_hold", true);
    await queryRunner.dropTable("scm_token_entry", true);
  }
}
