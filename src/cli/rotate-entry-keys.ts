import { KeyRing } from "../crypto/key-ring";
import { DecryptionError } from "../errors";
import type { KeyRotationStore, RotationCandidate } from "../storage/key-rotation-store";
import { TokenCrypto } from "../token-crypto";

export interface RotationOptions {
  /** Rows read per SELECT (default 500). */
  batchSize?: number;
  /** Stop after this many rows were handled (rotated, skipped or failed); a rerun continues. */
  maxRows?: number;
  /** Stop (after the current row) when aborted; a rerun continues. */
  signal?: AbortSignal;
  /** Called once before the work starts, with the number of entries not yet under the primary key. */
  onStart?: (pending: number) => void;
  /** Called after every row. */
  onRow?: (outcome: RowOutcome, report: RotationReport) => void;
  /** Test hook: runs between reading a batch's row and writing it (a concurrent writer can go here). */
  beforeWrite?: (row: RotationCandidate) => Promise<void>;
  /**
   * Decrypt every row as a real run would, but write nothing: `rotated` then counts the rows a real
   * run would rotate, and `failedByKeyId` the rows it could not (so a missing key shows up before the run).
   */
  dryRun?: boolean;
}

export type RowOutcome = "rotated" | "skipped_concurrent" | "failed";

export interface RotationReport {
  /** The key every rotated row is now under. */
  targetKeyId: string;
  /** True when nothing was written (RotationOptions.dryRun): `rotated` counts rows that would be rotated. */
  dryRun: boolean;
  /** Entries not under the target key when the run started. */
  pendingAtStart: number;
  /** Rows re-encrypted under the target key (in a dry run: rows that decrypt and would be). */
  rotated: number;
  /** Rows that changed between read and write (a refresh or storeToken won); the next run retries them. */
  skippedConcurrent: number;
  /** Rows that could not be decrypted, by the key id their ciphertext names ("(not v1)" for a foreign format). */
  failedByKeyId: Record<string, number>;
  /** Of those, the key ids that are not in the ring at all (the fix: add the key). Others are in the ring but fail authentication. */
  missingKeyIds: string[];
  batches: number;
  /** Why the run ended before visiting every row, if it did. */
  stoppedBy?: "max_rows" | "signal";
}

/** Rows that could not be decrypted, in total. */
export function failedCount(report: RotationReport): number {
  return Object.values(report.failedByKeyId).reduce((a, b) => a + b, 0);
}

/**
 * Re-encrypts every token entry whose access or refresh ciphertext is not under the ring's primary
 * key, in id-ordered batches. Each row is written with a compare-and-set on id, version and the old
 * ciphertexts (KeyRotationStore.replaceCiphertexts), so a refresh that lands meanwhile is never
 * overwritten: that row is skipped and picked up by the next run. Rows that cannot be decrypted are
 * counted by the key id they need and left as they are. Running it again continues where it
 * stopped, because rows already under the primary key are not selected.
 *
 * The service must run with a ring that holds both the old and the new key while this runs (new
 * rows and refreshes are then written under whichever key that service's ring calls primary).
 *
 * @example
 * const report = await rotateEntryKeys(new KeyRotationStore(dataSource), ring, new Set(["2026-02", "2025-08"]), { batchSize: 500 });
 * if (failedCount(report) > 0) process.exitCode = 1;
 */
export async function rotateEntryKeys(store: KeyRotationStore, ring: KeyRing, keyIds: ReadonlySet<string>, options: RotationOptions = {}): Promise<RotationReport> {
  const batchSize = options.batchSize ?? 500;
  const target = ring.primaryId;
  const crypto = new TokenCrypto(ring);
  const report: RotationReport = {
    targetKeyId: target,
    dryRun: options.dryRun === true,
    pendingAtStart: await store.countNotUnder(target),
    rotated: 0,
    skippedConcurrent: 0,
    failedByKeyId: {},
    missingKeyIds: [],
    batches: 0,
  };
  options.onStart?.(report.pendingAtStart);
  let handled = 0;
  let afterId = "";
  for (;;) {
    if (options.signal?.aborted) {
      report.stoppedBy = "signal";
      break;
    }
    const batch = await store.nextBatch(target, afterId, batchSize);
    if (batch.length === 0) break;
    report.batches++;
    for (const row of batch) {
      if (options.maxRows !== undefined && handled >= options.maxRows) {
        report.stoppedBy = "max_rows";
        return report;
      }
      if (options.signal?.aborted) {
        report.stoppedBy = "signal";
        return report;
      }
      afterId = row.id;
      handled++;
      const outcome = await rotateRow(store, crypto, target, keyIds, row, report, options);
      options.onRow?.(outcome, report);
    }
    if (batch.length < batchSize) break;
  }
  return report;
}

async function rotateRow(
  store: KeyRotationStore,
  crypto: TokenCrypto,
  target: string,
  keyIds: ReadonlySet<string>,
  row: RotationCandidate,
  report: RotationReport,
  options: Pick<RotationOptions, "beforeWrite" | "dryRun">,
): Promise<RowOutcome> {
  const reencrypt = (kind: "access" | "refresh", ciphertext: string): string => {
    if (KeyRing.keyIdOf(ciphertext) === target) return ciphertext;
    try {
      return crypto.encrypt(kind, row.userId, row.host, crypto.decrypt(kind, row.userId, row.host, ciphertext));
    } catch (e) {
      if (e instanceof DecryptionError) throw new RowDecryptionFailed(KeyRing.keyIdOf(ciphertext) ?? "(not v1)");
      throw e;
    }
  };
  let access: string;
  let refresh: string | undefined;
  try {
    access = reencrypt("access", row.accessTokenCiphertext);
    refresh = row.refreshTokenCiphertext === undefined ? undefined : reencrypt("refresh", row.refreshTokenCiphertext);
  } catch (e) {
    if (!(e instanceof RowDecryptionFailed)) throw e;
    report.failedByKeyId[e.keyId] = (report.failedByKeyId[e.keyId] ?? 0) + 1;
    if (!keyIds.has(e.keyId) && !report.missingKeyIds.includes(e.keyId)) report.missingKeyIds.push(e.keyId);
    return "failed";
  }
  if (options.dryRun) {
    report.rotated++;
    return "rotated";
  }
  await options.beforeWrite?.(row);
  if (await store.replaceCiphertexts(row, access, refresh)) {
    report.rotated++;
    return "rotated";
  }
  report.skippedConcurrent++;
  return "skipped_concurrent";
}

class RowDecryptionFailed extends Error {
  constructor(readonly keyId: string) {
    super(`cannot decrypt a row under key ${keyId}`);
  }
}
