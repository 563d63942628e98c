/**
 * `npx ts-node --transpile-only bench/policy-table.ts [bench/results/simulation.json]`
 *
 * Prints the README's policy table (markdown) from the results `npm run simulate` wrote.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { policyTable, type SimulationRuns } from "./lib/policy-table";

const file = process.argv[2] ?? resolve(__dirname, "results", "simulation.json");
process.stdout.write(policyTable(JSON.parse(readFileSync(file, "utf8")) as SimulationRuns));
