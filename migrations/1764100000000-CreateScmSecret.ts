import { Table, TableIndex, type MigrationInterface, type QueryRunner } from "typeorm";
import { dateColumnType } from "./column-types";

/** Creates scm_secret (take-once secrets, src/secrets/take-once). Table API only (dates: see column-types.ts): runs on MySQL, MariaDB, PostgreSQL and SQLite. */
export class CreateScmSecret1764100000000 implements MigrationInterface {
  name = "CreateScmSecret1764100000000";

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: "scm_secret",
        columns: [
          { name: "id", type: "varchar", length: "64", isPrimary: true },
          { name: "ciphertext", type: "text" },
          { name: "purpose", type: "varchar", length: "64", isNullable: true },
          { name: "state", type: "varchar", length: "16", default: "'created'" },
          { name: "reference", type: "varchar", length: "255", isNullable: true },
          { name: "expiresAt", type: dateColumnType(queryRunner), precision: 3 },
          { name: "createdAt", type: dateColumnType(queryRunner), precision: 3 },
        ],
      }),
      true,
    );
    await queryRunner.createIndex("scm_secret", new TableIndex({ name: "IDX_scm_secret_expires", columnNames: ["expiresAt"] }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable("scm_secret", true);
  }
}
