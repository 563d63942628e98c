/**
 * `npm run simulate -- [--users 1000] [--days 7] [--seed 42] [--policies gitpod,h20-drain] [--out path]`
 *
 * Compares token refresh policies on a seeded population and prints the tables; the
 * same numbers go to bench/results/simulation.json. Same arguments → byte-identical output.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatReport } from "../src/simulation/report";
import { runSimulation } from "../src/simulation/run-simulation";

const USAGE = "usage: npm run simulate -- [--users N] [--days N] [--seed N] [--policies id,id] [--out file.json]";

function integerOption(name: string, raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value)) throw new Error(`simulate: --${name} must be a non-negative integer, got "${raw}"\n${USAGE}`);
  return value;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      users: { type: "string", default: "1000" },
      days: { type: "string", default: "7" },
      seed: { type: "string", default: "42" },
      policies: { type: "string" },
      out: { type: "string", default: resolve(__dirname, "results", "simulation.json") },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const results = runSimulation({
    users: integerOption("users", values.users),
    days: integerOption("days", values.days),
    seed: integerOption("seed", values.seed),
    policies: values.policies?.split(",").map((id) => id.trim()),
  });
  process.stdout.write(formatReport(results));
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, JSON.stringify(results, null, 2) + "\n");
  console.log(`\nwrote ${values.out === resolve(__dirname, "results", "simulation.json") ? "bench/results/simulation.json" : values.out}`);
}

try {
  main();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
}
