import { Option, type Command } from "commander";
import { TokenStore } from "../../storage/token-store";
import { writeLine } from "../cli-io";
import { integerIn, newCommand, seconds, type CliContext } from "../command-kit";
import { DATABASE_URL_HELP, resolveDatabaseUrl, withCliDatabase } from "../database";
import { progressBar } from "../progress";

/** Holds that were never released end with their reservation; they are dropped an hour later (as TokenService.reapExpired does). */
const HOLD_GRACE_MS = 3_600_000;

/**
 * `scm-token-service reap`: deletes token entries that can never be handed out again (expired and
 * without a refresh token, or expired and marked for re-authorisation) in bounded batches — the
 * same storage calls as TokenService.reapExpired — then ended hand-out holds. Safe to run from cron
 * on several hosts at once.
 */
export function reapCommand(context: CliContext): Command {
  const { io } = context;
  return newCommand("reap", "delete dead token entries (expired and not refreshable) in bounded batches", [
    "scm-token-service reap --database-url mysql://app:secret@db.internal:3306/tokens",
    "DATABASE_URL=sqljs:./tokens.sqlite scm-token-service reap --batch-size 500 --max-batches 20",
  ])
    .addOption(new Option("--database-url <url>", DATABASE_URL_HELP))
    .addOption(new Option("--batch-size <n>", "entries deleted per statement (keeps locks short)").default(1000).argParser(integerIn(1, 100_000)))
    .addOption(new Option("--max-batches <n>", "stop after this many batches (default: until no dead entry is left)").argParser(integerIn(1, Number.MAX_SAFE_INTEGER)))
    .action(async (options: { databaseUrl?: string; batchSize: number; maxBatches?: number }) => {
      const url = resolveDatabaseUrl(options.databaseUrl, io.env);
      await withCliDatabase(url, { requireMigrated: true }, async (dataSource) => {
        const store = new TokenStore(dataSource);
        const signal = io.stopSignal?.();
        const started = Date.now();
        const maxBatches = options.maxBatches ?? Number.POSITIVE_INFINITY;
        // The total is not known up front (counting would scan the table twice): the line shows what was done.
        const bar = progressBar(io.stderr, "reap | {value} dead entries deleted in {batches} batch(es) | {duration}s");
        let deleted = 0;
        let batches = 0;
        let lastBatchFull = false;
        let holds = 0;
        bar.start(0, { batches: 0 });
        try {
          while (batches < maxBatches && !signal?.aborted) {
            const n = await store.deleteDeadBatch(new Date(), options.batchSize);
            batches++;
            deleted += n;
            lastBatchFull = n === options.batchSize;
            bar.setTotal(deleted);
            bar.update(deleted, { batches });
            if (!lastBatchFull) break;
          }
          const holdsBefore = new Date(Date.now() - HOLD_GRACE_MS);
          for (let batch = 0; batch < maxBatches && !signal?.aborted; batch++) {
            const n = await store.deleteEndedHoldsBatch(holdsBefore, options.batchSize);
            holds += n;
            if (n < options.batchSize) break;
          }
        } finally {
          bar.stop();
        }
        let summary = `Reaped ${deleted} dead token entries in ${batches} batch(es), ${seconds(started)} s; removed ${holds} ended hold(s).`;
        if (signal?.aborted) summary += " Interrupted: run again to continue.";
        else if (lastBatchFull && batches >= maxBatches) summary += ` Stopped at --max-batches ${options.maxBatches}; more dead entries may remain: run again.`;
        writeLine(io.stdout, summary);
      });
    });
}
