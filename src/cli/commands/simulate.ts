import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Option, type Command } from "commander";
import { POLICIES, selectPolicies } from "../../simulation/policies";
import { formatReport } from "../../simulation/report";
import { runSimulation } from "../../simulation/run-simulation";
import { usageError } from "../cli-error";
import { writeLine } from "../cli-io";
import { integerIn, newCommand, type CliContext } from "../command-kit";

/** `scm-token-service simulate`: the refresh-policy simulation (src/simulation), as `npm run simulate` runs it. */
export function simulateCommand(context: CliContext): Command {
  const { io } = context;
  return newCommand("simulate", "compare token refresh policies on a seeded population of simulated users (deterministic)", [
    "scm-token-service simulate                                   # 1000 users, 7 days, seed 42, every policy",
    "scm-token-service simulate --users 100 --days 2 --policies gitpod,h20-drain",
    "scm-token-service simulate --seed 7 --out results/simulation.json",
    "",
    `Policies: ${POLICIES.map((p) => p.id).join(", ")}`,
  ])
    .addOption(new Option("--users <n>", "simulated users").default(1000).argParser(integerIn(1, 1_000_000)))
    .addOption(new Option("--days <n>", "simulated weekdays").default(7).argParser(integerIn(1, 366)))
    .addOption(new Option("--seed <n>", "PRNG seed: the same arguments give byte-identical output").default(42).argParser(integerIn(0, 0xffffffff)))
    .option("--policies <ids>", "comma-separated policy ids (default: all)")
    .option("--out <file>", "also write the results as JSON to this file")
    .action((options: { users: number; days: number; seed: number; policies?: string; out?: string }) => {
      const policies = options.policies?.split(",").map((id) => id.trim()).filter(Boolean);
      try {
        selectPolicies(policies);
      } catch (e) {
        throw usageError(`--policies: ${(e as Error).message.replace(/^simulation: /, "")}`);
      }
      const results = runSimulation({ users: options.users, days: options.days, seed: options.seed, policies });
      io.stdout.write(formatReport(results));
      if (options.out) {
        const out = resolve(options.out);
        mkdirSync(dirname(out), { recursive: true });
        writeFileSync(out, JSON.stringify(results, null, 2) + "\n");
        writeLine(io.stdout, `\nwrote ${options.out}`);
      }
    });
}
