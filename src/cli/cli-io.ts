/** A stream the CLI writes to: process.stdout/stderr, or a collector in tests. */
export interface CliStream {
  write(chunk: string): unknown;
  /** True for a terminal: progress bars are drawn only then. */
  isTTY?: boolean;
  columns?: number;
}

/**
 * Everything the CLI touches outside itself, injected so tests run it in-process: output streams,
 * the environment (DATABASE_URL, SCM_TOKEN_KEYS) and a way for long commands to be asked to stop
 * cleanly (Ctrl-C in a terminal).
 *
 * @example
 * const code = await runCli(["reap", "--database-url", "sqljs:/tmp/tokens.sqlite"], processIo());
 */
export interface CliIo {
  stdout: CliStream;
  stderr: CliStream;
  env: Readonly<Record<string, string | undefined>>;
  /** Standard input, for commands that read it (git-credential reads git's credential description). */
  stdin?: AsyncIterable<Buffer | string>;
  /**
   * Commands that can stop cleanly (rotate-keys, reap: they finish the current row or batch and
   * report) call this once; the signal is aborted when the user asks them to stop. Other commands
   * never call it, so for them Ctrl-C keeps its usual meaning.
   */
  stopSignal?: () => AbortSignal;
}

/** The real process: its streams and environment; for a command that asks, the first Ctrl-C stops it cleanly and a second one exits. */
export function processIo(): CliIo {
  let controller: AbortController | undefined;
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    stdin: process.stdin,
    stopSignal() {
      if (!controller) {
        const created = new AbortController();
        controller = created;
        process.once("SIGINT", () => {
          process.stderr.write("\nStopping after the current row/batch; run the command again to continue (Ctrl-C again quits at once)…\n");
          created.abort();
          process.once("SIGINT", () => process.exit(130));
        });
      }
      return controller.signal;
    },
  };
}

/** Writes one line. */
export function writeLine(stream: CliStream, line = ""): void {
  stream.write(`${line}\n`);
}
