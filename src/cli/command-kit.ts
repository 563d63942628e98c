import { Command, InvalidArgumentError } from "commander";
import type { CliIo } from "./cli-io";
import type { ExitCode } from "./cli-error";

/** What a command's action gets: the injected I/O and a way to set the exit code without throwing. */
export interface CliContext {
  io: CliIo;
  /** Keeps the highest code set (a failure is not hidden by a later success). */
  setExitCode(code: ExitCode): void;
}

export const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  operational failure: database unreachable or not migrated, rows that could not be decrypted, entry not found
  2  usage error: unknown command or option, bad value, missing DATABASE_URL or encryption keys, bad key JSON`;

/** The "Examples:" block of a command's help. */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => (l ? `  ${l}` : "")).join("\n")}\n${EXIT_CODES_HELP}`;
}

/** A subcommand with the shared shape: description, examples and exit codes in --help. */
export function newCommand(name: string, description: string, exampleLines: string[]): Command {
  return new Command(name).description(description).addHelpText("after", examples(...exampleLines));
}

/** commander argParser for an integer in [min, max]: a usage error (exit 2) otherwise. */
export function integerIn(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    }
    return value;
  };
}

/** commander argParser for a non-negative number. */
export function nonNegativeNumber(raw: string): number {
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || value < 0) throw new InvalidArgumentError("must be a number ≥ 0");
  return value;
}

/** "in 12 min" / "3 min ago", for dates in human output. */
export function relative(date: Date, now: Date): string {
  const minutes = (date.getTime() - now.getTime()) / 60_000;
  const amount = Math.abs(minutes) < 1 ? `${Math.round(Math.abs(minutes) * 60)} s` : Math.abs(minutes) < 120 ? `${Math.round(Math.abs(minutes))} min` : `${(Math.abs(minutes) / 60).toFixed(1)} h`;
  return minutes >= 0 ? `in ${amount}` : `${amount} ago`;
}

export function seconds(startedMs: number): string {
  return ((Date.now() - startedMs) / 1000).toFixed(2);
}
