#!/usr/bin/env node
/**
 * The `scm-token-service` executable (package.json "bin"). Everything happens in runCli(); this file
 * only binds it to the real process and sets the exit code.
 */
import { processIo, type CliIo } from "./cli-io";

// `scm-token-service inspect … | head`: the reader went away; stop quietly instead of crashing on EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}

// git starts its credential helper for every fetch and push: that command loads only itself, not the
// database layers the other commands need.
const argv = process.argv.slice(2);
type Run = (argv: readonly string[], io: CliIo) => Promise<number>;
/* eslint-disable @typescript-eslint/no-require-imports */
const run: Run = argv[0] === "git-credential" ? require("./commands/git-credential").runGitCredentialCli : require("./run-cli").runCli;
/* eslint-enable @typescript-eslint/no-require-imports */

run(argv, processIo()).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`scm-token-service: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
