import { Column, Entity, Index, PrimaryColumn } from "typeorm";

/**
 * One take-once secret: encrypted, expiring, deleted when taken. Every column type is
 * explicit and matches migrations/1764100000000-CreateScmSecret.ts exactly, so the schema builder
 * sees no difference on MySQL, MariaDB or SQLite.
 *
 * Identifier columns (every varchar) compare byte for byte: on MySQL/MariaDB the migration
 * BinaryIdentifierCollation gives them a binary NO PAD collation (utf8mb4_nopad_bin on MariaDB,
 * utf8mb4_0900_bin on MySQL); SQLite compares bytes already. The entity names no collation: TypeORM's
 * schema diff ignores collations, and no one name exists on all three databases. Create the tables
 * with the library's migrations, not `synchronize`, or ids that differ only in case or accents would
 * name one row.
 */
@Entity({ name: "scm_secret" })
@Index("IDX_scm_secret_expires", ["expiresAt"])
export class SecretEntry {
  /** 32 random bytes as lowercase hex (64 characters; see secret-id.ts): unguessable, and a bearer capability — never log it. */
  @PrimaryColumn({ type: "varchar", length: 64 })
  id!: string;

  /** AES-256-GCM ciphertext of the value, bound to the id (KeyRing context). */
  @Column({ type: "text" })
  ciphertext!: string;

  /** What the secret is for, e.g. "workspace-start"; take() can require it. */
  @Column({ type: "varchar", length: 64, nullable: true })
  purpose!: string | null;

  /** "created" (step 1 of create→act→update) or "referenced" (step 3 done). */
  @Column({ type: "varchar", length: 16, default: "created" })
  state!: string;

  /** What the secret was handed to (e.g. the workspace id), set after acting. */
  @Column({ type: "varchar", length: 255, nullable: true })
  reference!: string | null;

  @Column({ type: Date, precision: 3 })
  expiresAt!: Date;

  @Column({ type: Date, precision: 3 })
  createdAt!: Date;
}
