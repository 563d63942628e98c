/**
 * The README's policy table, generated from the simulation's results (bench/results/simulation.json):
 * one table per workload, each cell the mean over the seeds with the range when the seeds differ.
 * Deterministic: the same results give the same markdown, byte for byte.
 */
import type { Metrics, PolicyResult, SimulationResults } from "../../src/simulation/run-simulation";
import type { Workload } from "../../src/simulation/user-kinds";

/** What `npm run simulate` writes: every run (workload × seed) of the selected policies. */
export interface SimulationRuns {
  users: number;
  days: number;
  seeds: number[];
  workloads: Workload[];
  policies: string[];
  runs: SimulationResults[];
}

const WORKLOAD_TITLES: Record<Workload, string> = {
  sessions: "Workload “sessions”: 30 % idle, 45 % normal, 20 % heavy users working in sessions (some weekend work), 5 % bots every 2–6 min; stored tokens start expired",
  scattered: "Workload “scattered”: 50 % idle, 35 % normal, 13 % heavy users with requests scattered over a 9-hour weekday, 2 % bots every 2–4 min around the clock; stored tokens start part-way through their hour",
};

/** Short, user-facing names of the policies in the table. */
const LABELS: Record<string, string> = {
  "every-request": "refresh on every request",
  "cover-only": "refresh only when it cannot cover",
  gitpod: "Gitpod (opportunistic whenever unreserved)",
  h20: "horizon 20 min, no drain",
  "h20-drain": "horizon 20 + drain",
  "h20-early": "previous defaults: horizon 20 + drain + early drain (≤ 60 s from 10 min left)",
  "h20-early120": "horizon 20 + drain + early drain (≤ 120 s from 8 min left)",
  "h20-m10-early120": "horizon per hand-out kind, margin 10 (API 15, workspace 20 min) + drain + early drain (≤ 120 s)",
  defaults: "defaults' policy (horizon per hand-out kind: API 13, workspace 18 min + drain + early drain ≤ 120 s), waits unbounded (`maxWaitMs: Infinity`)",
  "defaults-slack0": "defaults' policy without the write-free slack (a writing hand-out reserves exactly its lifetime)",
  "h20-kind-early": "horizon per hand-out kind (API 13, workspace 18 min) + drain + early drain (≤ 60 s from 10 min left)",
  "cover-only-drain": "no opportunistic refresh + drain (the slack stays out of the last L only)",
  "cover-only-drain-slack0": "no opportunistic refresh + drain, without the write-free slack",
  "h20-drain-prepare": "horizon 20 + drain + refresh prepared when a reservation ends",
  "h30-drain": "horizon 30 + drain",
  "h45-drain": "horizon 45 + drain",
  "gitpod-drain": "Gitpod's rule + drain (whenever unreserved)",
  "defaults-shipped": "**defaults as shipped: horizon per hand-out kind + drain + early drain, waits capped at 10 min (`defaultMaxWaitMs`)**",
  "defaults-wait30": "defaults with waits capped at 30 s (`defaultMaxWaitMs: 30_000`)",
  "defaults-release": "**defaults + early release** (`withToken` / `releasable: true`)",
  "h20-kind-early-release": "horizon per hand-out kind + drain + early drain + early release",
  "h18-early": "horizon 18 + drain + early drain",
  "h15-early-steep": "horizon 15 + drain + steep early drain",
  "h20-drain-wait30": "horizon 20 + drain, waits capped at 30 s",
  "h20-drain-release": "horizon 20 + drain + early release",
  "h20-early-release": "horizon 20 + drain + early drain + early release",
  "h18-early-release": "horizon 18 + drain + early drain + early release",
  "h15-drain-release": "horizon 15 + drain + early release",
  "h12-drain-release-prepare": "horizon 12 + drain + early release + refresh on release",
  "gitpod-release": "Gitpod + early release",
};

function stat(values: number[], digits: number): string {
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const min = Math.min(...values);
  const max = Math.max(...values);
  const f = (x: number) => x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return min.toFixed(digits) === max.toFixed(digits) ? f(mean) : `${f(mean)} (${f(min)}–${f(max)})`;
}

function percent(share: number): string {
  return `${Math.round(share * 100)} %`;
}

function perWeek(m: Metrics, value: number): number {
  return (value * 7) / (m.userDays / m.users);
}

function rows(runs: SimulationResults[], policies: string[]): string[] {
  return policies.map((id) => {
    const results = runs.map((r) => r.policies.find((p) => p.id === id)).filter((p): p is PolicyResult => p !== undefined);
    const totals = results.map((p) => p.total);
    const waits = totals.filter((t) => t.waits > 0);
    const cells = [
      LABELS[id] ?? id,
      `\`${id}\``,
      stat(totals.map((t) => t.vsFloor), 2),
      stat(totals.map((t) => perWeek(t, t.broken)), 0),
      stat(totals.map((t) => perWeek(t, t.waits)), 0),
      waits.length === 0 ? "—" : stat(waits.map((t) => t.waitMinutesAvg), 2),
      waits.length === 0 ? "—" : stat(waits.map((t) => t.waitMinutesMax), 1),
      stat(totals.map((t) => perWeek(t, t.waitMinutesTotal) / 60), 0),
      stat(totals.map((t) => perWeek(t, t.failed)), 0),
      percent(totals.reduce((sum, t) => sum + t.writeFreeShare, 0) / totals.length),
    ];
    return `| ${cells.join(" | ")} |`;
  });
}

/**
 * @example
 * policyTable(JSON.parse(readFileSync("bench/results/simulation.json", "utf8")));
 */
export function policyTable(all: SimulationRuns): string {
  const out: string[] = [];
  out.push(`<!-- generated by \`npm run simulate\` from bench/results/simulation.json: ${all.users} users × ${all.days} days, seeds ${all.seeds.join(", ")}; mean (min–max) over the seeds -->`);
  for (const workload of all.workloads) {
    const runs = all.runs.filter((r) => r.params.workload === workload);
    const floor = runs.map((r) => r.floor.total.perUserDay);
    const perWeekOf = (r: SimulationResults, value: number) => (value * 7) / r.params.days;
    out.push("");
    out.push(`${WORKLOAD_TITLES[workload]} (floor ${stat(floor, 2)} refreshes/user-day).`);
    out.push(
      `No drain policy that breaks nothing — not even one that knew every future request — can make fewer than ` +
        `${stat(runs.map((r) => perWeekOf(r, r.waitBound.total.waits)), 0)} waits/week here ` +
        `(bots ${stat(runs.map((r) => perWeekOf(r, r.waitBound.byKind.bot.waits)), 0)}; that schedule refreshes ${stat(runs.map((r) => r.waitBound.total.vsFloor), 2)}× the floor).`,
    );
    out.push("");
    out.push("| policy | id | refreshes × floor | broken / week | waits / week | mean wait (min) | max wait (min) | wait h / week | failed (TokenHeldError) / week | write-free hand-outs |");
    out.push("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    out.push(...rows(runs, all.policies));
  }
  return out.join("\n") + "\n";
}
