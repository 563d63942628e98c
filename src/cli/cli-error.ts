/** The CLI's exit codes, as documented in `scm-token-service --help`. */
export const EXIT = {
  ok: 0,
  /** The command ran but could not do its job: database unreachable, rows that could not be decrypted, entry not found. */
  failure: 1,
  /** The command line or its configuration is wrong: unknown option, bad value, missing DATABASE_URL, bad key JSON. */
  usage: 2,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * An error the CLI reports as one line on stderr (no stack) with its exit code. Messages say what
 * to do next and never contain a token, a key or a database password.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** Wrong command line or configuration: exit code 2. */
export function usageError(message: string): CliError {
  return new CliError(message, EXIT.usage);
}

/** The command could not do its job: exit code 1. */
export function failure(message: string): CliError {
  return new CliError(message, EXIT.failure);
}
