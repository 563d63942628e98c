import { Column, Entity, Index, PrimaryColumn } from "typeorm";

/**
 * A releasable hand-out: the token version it holds and until when. The holds are the whole record
 * of releasable hand-outs — the entry row is not written for them, and a release deletes the hold —
 * so a token version is reserved until the later of the entry's reservedUntilDate (non-releasable
 * hand-outs) and its live holds' heldUntil (see src/hand-out-reservation.ts for the protocol that
 * keeps a refresh from missing a hold). Entries written by versions before this one may carry a
 * reservedUntilDate that releasable hand-outs raised: it ends by itself.
 *
 * Identifier columns (every varchar) compare byte for byte: on MySQL/MariaDB the migration
 * BinaryIdentifierCollation gives them a binary NO PAD collation (utf8mb4_nopad_bin on MariaDB,
 * utf8mb4_0900_bin on MySQL); SQLite compares bytes already. The entity names no collation: TypeORM's
 * schema diff ignores collations, and no one name exists on all three databases. Create the tables
 * with the library's migrations, not `synchronize`, or ids that differ only in case or accents would
 * name one row.
 */
@Entity({ name: "scm_token_hold" })
@Index("IDX_scm_token_hold_entry", ["entryId", "heldUntil"])
export class TokenHold {
  @PrimaryColumn({ type: "varchar", length: 36 })
  id!: string;

  @Column({ type: "varchar", length: 36 })
  entryId!: string;

  @Column({ type: "integer" })
  version!: number;

  @Column({ type: Date, precision: 3 })
  heldUntil!: Date;
}
