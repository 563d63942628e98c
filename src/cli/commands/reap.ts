import { Option, type Command } from "commander";
import { DEFAULT_REAP_BATCH_SIZE, reapDeadEntries } from "../../reaper";
import { TokenStore } from "../../storage/token-store";
import { writeLine } from "../cli-io";
import { integerIn, newCommand, seconds, type CliContext } from "../command-kit";
import { DATABASE_URL_HELP, resolveDatabaseUrl, withCliDatabase } from "../database";
import { progressBar } from "../progress";

/**
 * `scm-token-service reap`: deletes token entries that can never be handed out again (expired and
 * without a refresh token, or expired and marked for re-authorisation) in paced, bounded batches —
 * the same reaper as TokenService.reapExpired (src/reaper.ts) — then ended hand-out holds. Safe to
 * run from cron on several hosts at once.
 */
export function reapCommand(context: CliContext): Command {
  const { io } = context;
  return newCommand("reap", "delete dead token entries (expired and not refreshable) in bounded batches", [
    "scm-token-service reap --database-url mysql://app:secret@db.internal:3306/tokens",
    "DATABASE_URL=sqljs:./tokens.sqlite scm-token-service reap --batch-size 500 --max-batches 20",
  ])
    .addOption(new Option("--database-url <url>", DATABASE_URL_HELP))
    .addOption(new Option("--batch-size <n>", "entries deleted per statement (keeps locks short)").default(DEFAULT_REAP_BATCH_SIZE).argParser(integerIn(1, 100_000)))
    .addOption(new Option("--max-batches <n>", "stop after this many batches (default: until no dead entry is left)").argParser(integerIn(1, Number.MAX_SAFE_INTEGER)))
    .action(async (options: { databaseUrl?: string; batchSize: number; maxBatches?: number }) => {
      const url = resolveDatabaseUrl(options.databaseUrl, io.env);
      await withCliDatabase(url, { requireMigrated: true }, async (dataSource) => {
        const store = new TokenStore(dataSource);
        const signal = io.stopSignal?.();
        const started = Date.now();
        // The total is not known up front (counting would scan the table twice): the line shows what was done.
        const bar = progressBar(io.stderr, "reap | {value} dead entries deleted in {batches} batch(es) | {duration}s");
        bar.start(0, { batches: 0 });
        const { deleted, batches, holds, lastBatchFull } = await reapDeadEntries(store, {
          batchSize: options.batchSize,
          maxBatches: options.maxBatches ?? Number.POSITIVE_INFINITY,
          now: () => new Date(),
          stopped: () => signal?.aborted === true,
          onBatch: (progress) => {
            bar.setTotal(progress.deleted);
            bar.update(progress.deleted, { batches: progress.batches });
          },
        }).finally(() => bar.stop());
        let summary = `Reaped ${deleted} dead token entries in ${batches} batch(es), ${seconds(started)} s; removed ${holds} ended hold(s).`;
        if (signal?.aborted) summary += " Interrupted: run again to continue.";
        else if (lastBatchFull && options.maxBatches !== undefined && batches >= options.maxBatches) summary += ` Stopped at --max-batches ${options.maxBatches}; more dead entries may remain: run again.`;
        writeLine(io.stdout, summary);
      });
    });
}
