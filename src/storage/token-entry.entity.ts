import { Column, Entity, Index, PrimaryColumn } from "typeorm";

/**
 * One stored token per (userId, host). Tokens are stored encrypted (see crypto/key-ring.ts); every
 * column type is explicit so the entity does not depend on decorator type metadata.
 *
 * Identifier columns (every varchar) compare byte for byte: on MySQL/MariaDB the migration
 * BinaryIdentifierCollation gives them a binary NO PAD collation (utf8mb4_nopad_bin on MariaDB,
 * utf8mb4_0900_bin on MySQL); SQLite compares bytes already. The entity names no collation: TypeORM's
 * schema diff ignores collations, and no one name exists on all three databases. Create the tables
 * with the library's migrations, not `synchronize`, or ids that differ only in case or accents would
 * name one row.
 */
@Entity({ name: "scm_token_entry" })
@Index("IDX_scm_token_entry_user_host", ["userId", "host"], { unique: true })
@Index("IDX_scm_token_entry_expiry", ["expiryDate"])
export class TokenEntry {
  @PrimaryColumn({ type: "varchar", length: 36 })
  id!: string;

  @Column({ type: "varchar", length: 128 })
  userId!: string;

  @Column({ type: "varchar", length: 255 })
  host!: string;

  /** AES-256-GCM ciphertext of the access token. */
  @Column({ type: "text" })
  accessToken!: string;

  /** AES-256-GCM ciphertext of the refresh token; null = not refreshable. */
  @Column({ type: "text", nullable: true })
  refreshToken!: string | null;

  /** Space-separated OAuth scopes. */
  @Column({ type: "varchar", length: 2048, default: "" })
  scopes!: string;

  @Column({ type: "varchar", length: 255, nullable: true })
  username!: string | null;

  /** Reuse mode: whenPossible | exactly | never. */
  @Column({ type: "varchar", length: 16, default: "whenPossible" })
  reuse!: string;

  @Column({ type: Date, precision: 3, nullable: true })
  expiryDate!: Date | null;

  /**
   * Until when non-releasable hand-outs (and the requester of the last refresh) hold the token;
   * releasable hand-outs are rows of scm_token_hold. Older library versions also raised it for
   * releasable hand-outs: such a value ends by itself.
   */
  @Column({ type: Date, precision: 3, nullable: true })
  reservedUntilDate!: Date | null;

  /** The latest end of the non-releasable hand-outs (write-free hand-outs rely on it; nothing lowers it while the version is stored). */
  @Column({ type: Date, precision: 3, nullable: true })
  pinnedUntilDate!: Date | null;

  /** Bumped by every write of a non-releasable reservation: a count for diagnostics (inspect shows it). */
  @Column({ type: "integer", default: 0 })
  reservationSeq!: number;

  /** Set while a forced refresh waits for the reservations to end; hand-outs then stop extending them. */
  @Column({ type: Date, precision: 3, nullable: true })
  drainingSince!: Date | null;

  @Column({ type: "varchar", length: 64, nullable: true })
  refreshLeaseOwner!: string | null;

  @Column({ type: Date, precision: 3, nullable: true })
  refreshLeaseUntil!: Date | null;

  /** Why the refresh token is known to be dead; callers fail fast instead of calling the SCM again. */
  @Column({ type: "varchar", length: 32, nullable: true })
  reauthorizationReason!: string | null;

  /** Bumped whenever the token itself changes; all writes of a new token compare-and-set on it. */
  @Column({ type: "integer", default: 1 })
  version!: number;

  @Column({ type: Date, precision: 3 })
  createdAt!: Date;

  @Column({ type: Date, precision: 3 })
  updatedAt!: Date;
}
