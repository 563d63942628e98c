import { Command, CommanderError } from "commander";
import { TokenServiceError } from "../errors";
import { CliError, EXIT, type ExitCode } from "./cli-error";
import { writeLine, type CliIo } from "./cli-io";
import { EXIT_CODES_HELP, type CliContext } from "./command-kit";
import { demoCommand } from "./commands/demo";
import { gitCredentialCommand } from "./commands/git-credential";
import { inspectCommand } from "./commands/inspect";
import { migrateCommand } from "./commands/migrate";
import { reapCommand } from "./commands/reap";
import { rotateKeysCommand, type RotateKeysHooks } from "./commands/rotate-keys";
import { simulateCommand } from "./commands/simulate";
import { packageVersion } from "./package-version";

/** Hooks for tests that need to act in the middle of a command. */
export interface CliHooks {
  rotateKeys?: RotateKeysHooks;
}

const ROOT_HELP = `
Environment:
  DATABASE_URL     default for --database-url: mysql://user:pass@host:3306/db, mariadb://…, sqljs:/path/file.sqlite
  SCM_TOKEN_KEYS   key ring for rotate-keys: [{"id":"2026-02","key":"<base64 of 32 bytes>","primary":true}, …]
  SCM_TOKEN_DEBUG  set to 1 to print stack traces of unexpected errors

Examples:
  scm-token-service migrate run --database-url mysql://app:secret@db.internal:3306/tokens
  scm-token-service reap                                  # with DATABASE_URL set; run it from cron
  scm-token-service inspect user-1 bitbucket.example.com --json
  scm-token-service rotate-keys --keys-file /run/secrets/token-keys.json
  scm-token-service demo --horizon 0 --no-drain
  scm-token-service <command> --help                      # each command's options and examples
${EXIT_CODES_HELP}
`;

/**
 * Runs the `scm-token-service` command line in-process: parses `argv` (the arguments after the
 * program name), writes only to `io`'s streams and resolves to the exit code (0 ok, 1 operational
 * failure, 2 usage error) instead of exiting. src/cli/main.ts is the process entry.
 *
 * @example
 * const code = await runCli(["migrate", "show", "--database-url", "sqljs:/tmp/tokens.sqlite"], { stdout, stderr, env: {} });
 */
export async function runCli(argv: readonly string[], io: CliIo, hooks: CliHooks = {}): Promise<number> {
  let exitCode: ExitCode = EXIT.ok;
  const context: CliContext = {
    io,
    setExitCode(code) {
      if (code > exitCode) exitCode = code;
    },
  };
  const program = new Command("scm-token-service")
    .description("Operate the scm-token-service database (migrations, reaping, key rotation, inspection) and run its demo and refresh-policy simulation.")
    .version(packageVersion(), "-V, --version", "print the version")
    .helpCommand("help [command]", "show the help of a command")
    .addHelpText("after", ROOT_HELP)
    .addCommand(migrateCommand(context))
    .addCommand(reapCommand(context))
    .addCommand(rotateKeysCommand(context, hooks.rotateKeys))
    .addCommand(inspectCommand(context))
    .addCommand(demoCommand(context))
    .addCommand(simulateCommand(context))
    .addCommand(gitCredentialCommand(context));
  configure(program, io);

  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version "fail" with exit code 0; everything else commander rejects is a usage error.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (e instanceof CliError) {
      writeLine(io.stderr, `scm-token-service: ${e.message}`);
      return e.exitCode;
    }
    const message = e instanceof Error ? e.message : String(e);
    writeLine(io.stderr, `scm-token-service: ${e instanceof TokenServiceError ? message.replace(/^scm-token-service: /, "") : `unexpected error: ${message}`}`);
    if (io.env.SCM_TOKEN_DEBUG && e instanceof Error && e.stack) writeLine(io.stderr, e.stack);
    return EXIT.failure;
  }
}

/** The same output, error and exit behaviour on every (sub)command: commander's addCommand() does not copy them. */
function configure(command: Command, io: CliIo): void {
  command
    .exitOverride()
    .showHelpAfterError("(add --help for usage and examples)")
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      getOutHelpWidth: () => io.stdout.columns ?? 100,
      getErrHelpWidth: () => io.stderr.columns ?? 100,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    });
  for (const sub of command.commands) configure(sub, io);
}
