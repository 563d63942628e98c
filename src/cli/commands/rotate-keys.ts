import { Option, type Command } from "commander";
import type { DataSource } from "typeorm";
import type { RotationCandidate } from "../../storage/key-rotation-store";
import { KeyRotationStore } from "../../storage/key-rotation-store";
import { EXIT } from "../cli-error";
import { writeLine } from "../cli-io";
import { integerIn, newCommand, seconds, type CliContext } from "../command-kit";
import { DATABASE_URL_HELP, resolveDatabaseUrl, withCliDatabase } from "../database";
import { KEYS_EXAMPLE, loadKeyRing } from "../load-key-ring";
import { progressBar } from "../progress";
import { failedCount, rotateEntryKeys, type RotationReport } from "../rotate-entry-keys";

/** Test hooks of rotate-keys (not reachable from the command line). */
export interface RotateKeysHooks {
  /** Runs between reading a row and writing it back, on the command's own database connection (a concurrent writer goes here). */
  beforeWrite?: (row: RotationCandidate, dataSource: DataSource) => Promise<void>;
}

/**
 * `scm-token-service rotate-keys`: re-encrypts every stored token that is not under the primary key
 * of the ring in SCM_TOKEN_KEYS (or --keys-file). The procedure:
 *
 * 1. Deploy the service with the new key added as primary and the old key still in the ring.
 * 2. Run rotate-keys with the same ring (rerun until it reports 0 skipped; it resumes).
 * 3. Remove the old key from the service's ring once no take-once secret under it is alive.
 */
export function rotateKeysCommand(context: CliContext, hooks: RotateKeysHooks = {}): Command {
  const { io } = context;
  return newCommand("rotate-keys", "re-encrypt stored tokens under the primary encryption key (resumable, safe while the service runs)", [
    `SCM_TOKEN_KEYS='${KEYS_EXAMPLE}' \\\n    scm-token-service rotate-keys --database-url mysql://app:secret@db.internal:3306/tokens`,
    "scm-token-service rotate-keys --keys-file /run/secrets/token-keys.json --batch-size 200",
    "scm-token-service rotate-keys --keys-file keys.json --dry-run",
    "",
    "Keys: a JSON array [{ \"id\", \"key\" (base64 of 32 bytes), \"primary\"? }], as the library's encryptionKeys option.",
    "Rows are rotated to the primary key (or the first, if none is marked); every other key only decrypts.",
    "Each row is written by compare-and-set, so a concurrent refresh is never overwritten: such rows are",
    "reported as skipped and picked up by the next run. Rows under a key the ring lacks are reported",
    "with that key id and left untouched; the exit code is then 1.",
  ])
    .addOption(new Option("--database-url <url>", DATABASE_URL_HELP))
    .option("--keys-file <path>", "JSON file with the key ring (default: $SCM_TOKEN_KEYS)")
    .addOption(new Option("--batch-size <n>", "entries read per batch").default(500).argParser(integerIn(1, 10_000)))
    .addOption(new Option("--max-rows <n>", "stop after this many entries (a rerun continues where it stopped)").argParser(integerIn(1, Number.MAX_SAFE_INTEGER)))
    .option("--dry-run", "only count the entries that are not under the primary key")
    .action(async (options: { databaseUrl?: string; keysFile?: string; batchSize: number; maxRows?: number; dryRun?: boolean }) => {
      const url = resolveDatabaseUrl(options.databaseUrl, io.env);
      const keys = loadKeyRing(options.keysFile, io.env);
      await withCliDatabase(url, { requireMigrated: true }, async (dataSource) => {
        const store = new KeyRotationStore(dataSource);
        if (options.dryRun) {
          const pending = await store.countNotUnder(keys.primaryId);
          writeLine(io.stdout, `${pending} token entr${pending === 1 ? "y is" : "ies are"} not under the primary key "${keys.primaryId}" (dry run: nothing changed).`);
          return;
        }
        const started = Date.now();
        const bar = progressBar(io.stderr, `rotate-keys → "${keys.primaryId}" |{bar}| {value}/{total} entries | rotated {rotated}, skipped {skipped}, failed {failed} | ETA {eta_formatted}`);
        let report: RotationReport;
        let done = 0;
        try {
          report = await rotateEntryKeys(store, keys.ring, keys.ids, {
            batchSize: options.batchSize,
            maxRows: options.maxRows,
            signal: io.stopSignal?.(),
            beforeWrite: hooks.beforeWrite && ((row) => hooks.beforeWrite!(row, dataSource)),
            onStart: (pending) => bar.start(pending, { rotated: 0, skipped: 0, failed: 0 }),
            onRow: (_outcome, r) => bar.update(++done, { rotated: r.rotated, skipped: r.skippedConcurrent, failed: failedCount(r) }),
          });
        } finally {
          bar.stop();
        }
        for (const line of summarize(report, options.maxRows, seconds(started))) writeLine(io.stdout, line);
        const secrets = await store.liveSecretsNotUnder(keys.primaryId, new Date());
        if (secrets.count > 0) {
          writeLine(
            io.stdout,
            `Note: ${secrets.count} live take-once secret(s) are under other keys; they are not re-encrypted (they expire by ${secrets.latestExpiry?.toISOString()}): keep the old keys in the ring until then.`,
          );
        }
        if (failedCount(report) > 0) context.setExitCode(EXIT.failure);
      });
    });
}

function summarize(report: RotationReport, maxRows: number | undefined, took: string): string[] {
  const failed = failedCount(report);
  const lines = [
    `Rotated ${report.rotated} token entr${report.rotated === 1 ? "y" : "ies"} to key "${report.targetKeyId}" in ${report.batches} batch(es), ${took} s; ` +
      `skipped (changed concurrently) ${report.skippedConcurrent}; failed to decrypt ${failed}.`,
  ];
  if (failed > 0) {
    const byKey = Object.entries(report.failedByKeyId).map(([keyId, n]) => `${n} need key "${keyId}"${report.missingKeyIds.includes(keyId) ? " (not in the ring: add it)" : " (in the ring, but authentication failed: wrong key material or an altered row)"}`);
    lines.push(`Could not decrypt: ${byKey.join("; ")}. Those rows were left unchanged.`);
  }
  if (report.stoppedBy === "max_rows") lines.push(`Stopped after --max-rows ${maxRows}: run again to continue.`);
  else if (report.stoppedBy === "signal") lines.push("Interrupted: run again to continue.");
  else if (report.skippedConcurrent > 0) lines.push("Run again to rotate the skipped entries.");
  else if (failed === 0) lines.push(`Done: every token entry is under "${report.targetKeyId}".`);
  return lines;
}
