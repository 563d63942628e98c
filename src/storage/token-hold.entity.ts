import { Column, Entity, Index, PrimaryColumn } from "typeorm";

/**
 * A releasable hand-out: the token version it holds and until when. The entry's
 * reservedUntilDate is kept at the maximum of its live holds and its pinned (non-releasable) hand-outs.
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

  @Column({ type: "datetime", precision: 3 })
  heldUntil!: Date;
}
