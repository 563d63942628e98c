/**
 * `npm run simulate -- [--users 1000] [--days 7] [--seeds 1,2,3,4,5 | --seed 42] [--workloads sessions,scattered]
 *                      [--policies id,id | --policies all] [--out path] [--table path] [--quiet]`
 *
 * Compares token refresh policies on seeded populations, for every workload and seed, prints the
 * reports and a summary across seeds, and writes the numbers to bench/results/simulation.json and the
 * README's policy table (markdown) to bench/results/policy-table.md. Same arguments → byte-identical files.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { POLICIES, README_POLICIES } from "../src/simulation/policies";
import { formatReport } from "../src/simulation/report";
import { runSimulation, type SimulationResults } from "../src/simulation/run-simulation";
import { WORKLOADS, type Workload } from "../src/simulation/user-kinds";
import { policyTable, type SimulationRuns } from "./lib/policy-table";

const USAGE =
  "usage: npm run simulate -- [--users N] [--days N] [--seeds 1,2,3,4,5 | --seed N] [--workloads sessions,scattered] [--policies id,id|all] [--out file.json] [--table file.md] [--quiet]";

function integerOption(name: string, raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value)) throw new Error(`simulate: --${name} must be a non-negative integer, got "${raw}"\n${USAGE}`);
  return value;
}

function list(raw: string): string[] {
  return raw.split(",").map((x) => x.trim()).filter(Boolean);
}

function main(): void {
  const { values } = parseArgs({
    options: {
      users: { type: "string", default: "1000" },
      days: { type: "string", default: "7" },
      seed: { type: "string" },
      seeds: { type: "string", default: "1,2,3,4,5" },
      workloads: { type: "string", default: WORKLOADS.join(",") },
      policies: { type: "string" },
      out: { type: "string", default: resolve(__dirname, "results", "simulation.json") },
      table: { type: "string", default: resolve(__dirname, "results", "policy-table.md") },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const seeds = (values.seed === undefined ? list(values.seeds) : [values.seed]).map((s) => integerOption("seeds", s));
  const workloads = list(values.workloads).map((w) => {
    if (!(WORKLOADS as readonly string[]).includes(w)) throw new Error(`simulate: unknown workload "${w}"; known: ${WORKLOADS.join(", ")}\n${USAGE}`);
    return w as Workload;
  });
  const policies = values.policies === "all" ? POLICIES.map((p) => p.id) : values.policies ? list(values.policies) : [...README_POLICIES];
  const users = integerOption("users", values.users);
  const days = integerOption("days", values.days);

  const runs: SimulationResults[] = [];
  for (const workload of workloads) {
    for (const seed of seeds) {
      const results = runSimulation({ users, days, seed, workload, policies });
      if (!values.quiet) process.stdout.write(formatReport(results) + "\n");
      runs.push(results);
    }
  }
  const all: SimulationRuns = { users, days, seeds, workloads, policies, runs };
  const table = policyTable(all);
  process.stdout.write(table);
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, JSON.stringify(all, null, 2) + "\n");
  mkdirSync(dirname(values.table), { recursive: true });
  writeFileSync(values.table, table);
  console.log(`\nwrote ${relative(process.cwd(), values.out)} and ${relative(process.cwd(), values.table)}`);
}

try {
  main();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
}
