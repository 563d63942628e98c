/**
 * `npm run policy-frontier` (~4 min): can any horizon policy meet the wait goals without releases
 * (mean wait and waits a week each ≥ 30 % below horizon 20 + drain, at ≤ 1.10× the floor)?
 *
 * Runs a grid of policies on both workloads, seeds 1–5, in which every user kind gets its own horizon
 * and early-drain ramp — an oracle that knows who is a bot or a heavy user, which decide() does not —
 * and reports, per workload, the best the grid can do within 1.10× the floor and the fewest refreshes
 * at which it meets each goal. A per-kind policy can do anything one policy for everyone can, so
 * where the grid misses a goal, the library's policies miss it too. Writes
 * bench/results/policy-frontier.json and the README's table, bench/results/policy-frontier.md.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { runSimulation } from "../src/simulation/run-simulation";
import { WORKLOADS, type Workload } from "../src/simulation/user-kinds";
import { parseSweepPolicy } from "./lib/sweep-spec";

const SEEDS = [1, 2, 3, 4, 5];
const REFRESH_GOAL = 1.1;
/** Both wait goals: ≥ 30 % below the reference. */
const WAIT_GOAL_FACTOR = 0.7;
/** Horizon 20 + drain, the goals' reference (no margin, no early drain). */
const REFERENCE = "h20";
/** The shipped defaults' policy: horizon 20 with margin 8, early drain up to 120 s from 8 min left. */
const DEFAULTS = "h20-m8-ed120-8";

/** Every combination: idle and normal users share one horizon; heavy users and bots get their own. */
function grid(): string[] {
  const ids: string[] = [];
  for (const ramp of ["", "-ed120-8"]) {
    for (const normal of ["h20-m8", "h20"]) {
      for (const heavy of ["h20-m8", "h20", "h25", "h30", "h35", "h40", "h45", "h60"]) {
        for (const bot of ["h20-m8", "h20", "h45"]) ids.push(`${normal}${ramp}@heavy=${heavy}${ramp}@bot=${bot}${ramp}`);
      }
    }
  }
  return [REFERENCE, DEFAULTS, ...ids];
}

interface Point {
  id: string;
  /** Means over the seeds. */
  vsFloor: number;
  waits: number;
  meanWaitMinutes: number;
  perSeed: { seed: number; vsFloor: number; waits: number; meanWaitMinutes: number }[];
}

function mean(values: number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

function runWorkload(workload: Workload, ids: string[]): Point[] {
  const specs = ids.map(parseSweepPolicy);
  const bySeed = SEEDS.map((seed) => {
    process.stderr.write(`${workload}, seed ${seed}…\n`);
    return runSimulation({ users: 1000, days: 7, seed, workload, specs });
  });
  return ids.map((id, k) => {
    const perSeed = bySeed.map((r, s) => ({ seed: SEEDS[s], vsFloor: r.policies[k].total.vsFloor, waits: r.policies[k].total.waits, meanWaitMinutes: r.policies[k].total.waitMinutesAvg }));
    return { id, vsFloor: mean(perSeed.map((p) => p.vsFloor)), waits: mean(perSeed.map((p) => p.waits)), meanWaitMinutes: mean(perSeed.map((p) => p.meanWaitMinutes)), perSeed };
  });
}

function best(points: Point[], keep: (p: Point) => boolean, key: (p: Point) => number): Point | undefined {
  return points.filter(keep).sort((a, b) => key(a) - key(b))[0];
}

function row(label: string, p: Point | undefined, goal: { waits: number; meanWait: number }): string {
  if (!p) return `| ${label} | none in the grid | — | — | — |  |`;
  const mark = (ok: boolean) => (ok ? "yes" : "no");
  const meets = `refreshes ${mark(p.vsFloor <= REFRESH_GOAL)}, waits ${mark(p.waits <= goal.waits)}, mean wait ${mark(p.meanWaitMinutes <= goal.meanWait)}`;
  return `| ${label} | \`${p.id}\` | ${p.vsFloor.toFixed(2)} | ${Math.round(p.waits).toLocaleString("en-US")} | ${p.meanWaitMinutes.toFixed(2)} | ${meets} |`;
}

function table(workload: Workload, points: Point[]): string {
  const reference = points.find((p) => p.id === REFERENCE)!;
  const goal = { waits: WAIT_GOAL_FACTOR * reference.waits, meanWait: WAIT_GOAL_FACTOR * reference.meanWaitMinutes };
  const within = (p: Point) => p.vsFloor <= REFRESH_GOAL;
  const lines = [
    `Workload “${workload}”: goals ≤ ${REFRESH_GOAL.toFixed(2)}× the floor, ≤ ${Math.round(goal.waits).toLocaleString("en-US")} waits a week, mean wait ≤ ${goal.meanWait.toFixed(2)} min (70 % of \`${REFERENCE}\`)`,
    "",
    "| | policy | refreshes × floor | waits / week | mean wait (min) | goals met |",
    "|---|---|---:|---:|---:|---|",
    row("horizon 20 + drain (the reference)", reference, goal),
    row("the shipped defaults' policy", points.find((p) => p.id === DEFAULTS), goal),
    row(`fewest waits within ${REFRESH_GOAL.toFixed(2)}×`, best(points, within, (p) => p.waits), goal),
    row(`shortest mean wait within ${REFRESH_GOAL.toFixed(2)}×`, best(points, within, (p) => p.meanWaitMinutes), goal),
    row("fewest refreshes meeting the waits goal", best(points, (p) => p.waits <= goal.waits, (p) => p.vsFloor), goal),
    row("fewest refreshes meeting the mean-wait goal", best(points, (p) => p.meanWaitMinutes <= goal.meanWait, (p) => p.vsFloor), goal),
    row("fewest refreshes meeting both wait goals", best(points, (p) => p.waits <= goal.waits && p.meanWaitMinutes <= goal.meanWait, (p) => p.vsFloor), goal),
  ];
  return lines.join("\n") + "\n";
}

function main(): void {
  const ids = grid();
  const results = WORKLOADS.map((workload) => ({ workload, points: runWorkload(workload, ids) }));
  const header = `<!-- generated by \`npm run policy-frontier\` from bench/results/policy-frontier.json: ${ids.length - 2} per-kind policies (ids: bench/lib/sweep-spec.ts), 1000 users × 7 days, seeds ${SEEDS.join(", ")}; means over the seeds -->\n\n`;
  const markdown = header + results.map((r) => table(r.workload, r.points)).join("\n");
  process.stdout.write(markdown);
  const dir = resolve(__dirname, "results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(resolve(dir, "policy-frontier.json"), JSON.stringify({ seeds: SEEDS, reference: REFERENCE, defaults: DEFAULTS, results }, null, 1) + "\n");
  writeFileSync(resolve(dir, "policy-frontier.md"), markdown);
}

main();
