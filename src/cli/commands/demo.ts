import { Option, type Command } from "commander";
import { DEFAULT_DEMO_OPTIONS, runDemo } from "../../demo/demo";
import { writeLine } from "../cli-io";
import { newCommand, nonNegativeNumber, type CliContext } from "../command-kit";

/** `scm-token-service demo`: the three-hour morning against a fake Bitbucket Data Center (src/demo). No database or network needed. */
export function demoCommand(context: CliContext): Command {
  const { io } = context;
  return newCommand("demo", "replay a morning of workspace starts and API calls against a fake Bitbucket Data Center (embedded database, no set-up)", [
    "scm-token-service demo                             # opportunistic refresh, 20-minute horizon, drain",
    "scm-token-service demo --no-opportunistic          # the same morning with the flag off",
    "scm-token-service demo --horizon 0 --no-drain      # Gitpod's rule: refresh whenever unreserved",
    "scm-token-service demo --release                   # callers release early: API calls on return, clones after 3 min",
    "scm-token-service demo --quiet                     # only the summary",
  ])
    .option("--no-opportunistic", "turn opportunistic_token_refresh off")
    .addOption(new Option("--horizon <minutes>", "refresh opportunistically only within this many minutes of expiry (0: whenever unreserved)").default(DEFAULT_DEMO_OPTIONS.horizonMinutes).argParser(nonNegativeNumber))
    .option("--no-drain", "let a forced refresh revoke a token that is still held, instead of waiting")
    .option("--quiet", "print only the summary, not every hand-out")
    .option("--release", "callers release their hand-outs early (API calls on return, clones after 3 minutes)")
    .action(async (options: { opportunistic: boolean; horizon: number; drain: boolean; quiet?: boolean; release?: boolean }) => {
      await runDemo({ opportunistic: options.opportunistic, horizonMinutes: options.horizon, drain: options.drain, quiet: options.quiet === true, release: options.release === true }, (line) => writeLine(io.stdout, line));
    });
}
