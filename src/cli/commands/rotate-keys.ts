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
    "with that key id and left untouched; the exit code is then 1. --dry-run finds them too (same exit code).",
  ])
    .addOption(new Option("--database-url <url>", DATABASE_URL_HELP))
    .option("--keys-file <path>", "JSON file with the key ring (default: $SCM_TOKEN_KEYS)")
    .addOption(new Option("--batch-size <n>", "entries read per batch").default(500).argParser(integerIn(1, 10_000)))
    .addOption(new Option("--max-rows <n>", "stop after this many entries (a rerun continues where it stopped)").argParser(integerIn(1, Number.MAX_SAFE_INTEGER)))
    .option("--dry-run", "decrypt every entry not under the primary key, write nothing: reports the rows a real run could not rotate (exit 1, as the real run)")
    .action(async (options: { databaseUrl?: string; keysFile?: string; batchSize: number; maxRows?: number; dryRun?: boolean }) => {
      const url = resolveDatabaseUrl(options.databaseUrl, io.env);
      const keys = loadKeyRing(options.keysFile, io.env);
      await withCliDatabase(url, { requireMigrated: true }, async (dataSource) => {
        const store = new KeyRotationStore(dataSource);
        const dryRun = options.dryRun === true;
        const started = Date.now();
        const bar = progressBar(io.stderr, `rotate-keys${dryRun ? " --dry-run" : ""} → "${keys.primaryId}" |{bar}| {value}/{total} entries | ${dryRun ? "rotatable" : "rotated"} {rotated}, skipped {skipped}, failed {failed} | ETA {eta_formatted}`);
        let report: RotationReport;
        let done = 0;
        try {
          // A dry run decrypts every row as the real run would (writing nothing), so a key missing from
          // the ring fails the dry run, with the same exit code, instead of the real run.
          report = await rotateEntryKeys(store, keys.ring, keys.ids, {
            batchSize: options.batchSize,
            maxRows: options.maxRows,
            dryRun,
            signal: io.stopSignal?.(),
            beforeWrite: hooks.beforeWrite && ((row) => hooks.beforeWrite!(row, dataSource)),
            onStart: (pending) => bar.start(pending, { rotated: 0, skipped: 0, failed: 0 }),
            onRow: (_outcome, r) => bar.update(++done, { rotated: r.rotated, skipped: r.skippedConcurrent, failed: failedCount(r) }),
          });
        } finally {
          bar.stop();
        }
        if (dryRun) {
          for (const line of summarizeDryRun(report, options.maxRows)) writeLine(io.stdout, line);
          if (failedCount(report) > 0) context.setExitCode(EXIT.failure);
          return;
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

function summarizeDryRun(report: RotationReport, maxRows: number | undefined): string[] {
  const failed = failedCount(report);
  const lines = [`${report.pendingAtStart} token entr${report.pendingAtStart === 1 ? "y is" : "ies are"} not under the primary key "${report.targetKeyId}" (dry run: nothing changed).`];
  if (failed > 0) {
    lines.push(`Could not decrypt: ${describeFailures(report)}. A real run would rotate ${report.rotated}, leave those ${failed} unchanged and exit 1.`);
  } else {
    lines.push(`Every one of them decrypts with this key ring: a real run would rotate ${report.rotated}.`);
  }
  if (report.stoppedBy === "max_rows") lines.push(`Checked only the first ${maxRows} (--max-rows).`);
  else if (report.stoppedBy === "signal") lines.push("Interrupted before every entry was checked.");
  return lines;
}

/** "2 need key "lost-2024" (not in the ring: add it); …" */
function describeFailures(report: RotationReport): string {
  return Object.entries(report.failedByKeyId)
    .map(([keyId, n]) => `${n} need key "${keyId}"${report.missingKeyIds.includes(keyId) ? " (not in the ring: add it)" : " (in the ring, but authentication failed: wrong key material or an altered row)"}`)
    .join("; ");
}

function summarize(report: RotationReport, maxRows: number | undefined, took: string): string[] {
  const failed = failedCount(report);
  const lines = [
    `Rotated ${report.rotated} token entr${report.rotated === 1 ? "y" : "ies"} to key "${report.targetKeyId}" in ${report.batches} batch(es), ${took} s; ` +
      `skipped (changed concurrently) ${report.skippedConcurrent}; failed to decrypt ${failed}.`,
  ];
  if (failed > 0) {
    lines.push(`Could not decrypt: ${describeFailures(report)}. Those rows were left unchanged.`);
  }
  if (report.stoppedBy === "max_rows") lines.push(`Stopped after --max-rows ${maxRows}: run again to continue.`);
  else if (report.stoppedBy === "signal") lines.push("Interrupted: run again to continue.");
  else if (report.skippedConcurrent > 0) lines.push("Run again to rotate the skipped entries.");
  else if (failed === 0) lines.push(`Done: every token entry is under "${report.targetKeyId}".`);
  return lines;
}
