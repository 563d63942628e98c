#!/usr/bin/env node
/**
 * The `scm-token-service` executable (package.json "bin"). Everything happens in runCli(); this file
 * only binds it to the real process and sets the exit code.
 */
import { processIo } from "./cli-io";
import { runCli } from "./run-cli";

// `scm-token-service inspect … | head`: the reader went away; stop quietly instead of crashing on EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}

runCli(process.argv.slice(2), processIo()).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`scm-token-service: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
