/**
 * `npx ts-node --transpile-only bench/sweep-policies.ts <workload> <seeds> <policy> [policy …]`
 *
 * A parameter sweep over horizon, early-drain ramp and release, outside the report's policy catalogue.
 * Policy syntax: see bench/lib/sweep-spec.ts (e.g. h15-ed120-8-rel, h13-ed120-8@heavy=h40-ed120-8).
 * Prints one line per (seed, policy): × floor, broken, waits, mean/max wait, failed, write-free share, waits per kind.
 */
import { runSimulation } from "../src/simulation/run-simulation";
import type { Workload } from "../src/simulation/user-kinds";
import { parseSweepPolicy } from "./lib/sweep-spec";

const [workload, seedList, ...ids] = process.argv.slice(2);
for (const seed of seedList.split(",").map(Number)) {
  const r = runSimulation({ users: 1000, days: 7, seed, workload: workload as Workload, specs: ids.map(parseSweepPolicy) });
  for (const p of r.policies) {
    const t = p.total;
    const kinds = (["idle", "normal", "heavy", "bot"] as const).map((k) => `${k}=${p.byKind[k].waits} ${k}Drains=${p.byKind[k].waitedRefreshes} ${k}Avg=${p.byKind[k].waitMinutesAvg.toFixed(2)} ${k}X=${p.byKind[k].vsFloor.toFixed(3)}`).join(" ");
    console.log(`${workload} ${seed} ${p.id.padEnd(18)} x${t.vsFloor.toFixed(3)} broken=${t.broken} waits=${t.waits} avg=${t.waitMinutesAvg.toFixed(2)} max=${t.waitMinutesMax.toFixed(1)} failed=${t.failed} writeFree=${t.writeFreeShare.toFixed(3)} ${kinds}`);
  }
}
