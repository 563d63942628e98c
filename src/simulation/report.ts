/**
 * Plain-text tables for `npm run simulate`. Deterministic: no timestamps, fixed number formats.
 */
import type { Metrics, SimulationResults } from "./run-simulation";
import { USER_KINDS, kindDescriptions } from "./user-kinds";

interface Column {
  title: string;
  value: (m: Metrics) => string;
}

const fixed = (digits: number) => (x: number) => x.toFixed(digits);

const COLUMNS: Column[] = [
  { title: "refr/user-day", value: (m) => fixed(2)(m.refreshesPerUserDay) },
  { title: "×floor", value: (m) => fixed(2)(m.vsFloor) },
  { title: "forced", value: (m) => String(m.forced) },
  { title: "opportun.", value: (m) => String(m.opportunistic + m.unconditional) },
  { title: "drained", value: (m) => String(m.drained) },
  { title: "broken", value: (m) => String(m.broken) },
  { title: "lost min", value: (m) => fixed(0)(m.brokenMinutes) },
  { title: "waits", value: (m) => String(m.waits) },
  { title: "avg wait", value: (m) => fixed(2)(m.waitMinutesAvg) },
  { title: "max wait", value: (m) => fixed(2)(m.waitMinutesMax) },
  { title: "write-free", value: (m) => `${fixed(1)(m.writeFreeShare * 100)} %` },
];

/** Left-aligns the first column, right-aligns the rest. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/**
 * @example
 * console.log(formatReport(runSimulation({ users: 1000, days: 7, seed: 42 })));
 */
export function formatReport(results: SimulationResults): string {
  const { params, floor, policies } = results;
  const out: string[] = [];
  out.push("Refresh-policy simulation");
  out.push(
    `workload=${params.workload} seed=${params.seed} users=${params.users} days=${params.days} ` +
      `(idle=${params.kindCounts.idle} normal=${params.kindCounts.normal} heavy=${params.kindCounts.heavy} bot=${params.kindCounts.bot}) ` +
      `requests=${params.requests}`,
  );
  out.push(
    `provider: ${params.provider}; access token ${params.tokenLifetimeMinutes} min; ` +
      `lifetime L: workspace start ${params.lifetimeMinutes.workspace} min, API call ${params.lifetimeMinutes.api} min`,
  );
  out.push(`release: ${params.releaseModel}`);
  out.push(`reproduce: npm run simulate -- --users ${params.users} --days ${params.days} --seed ${params.seed} --workloads ${params.workload}`);
  out.push("");
  out.push("User kinds:");
  for (const kind of USER_KINDS) out.push(`  ${kind.padEnd(6)} ${kindDescriptions(params.workload)[kind]}`);
  out.push("");
  out.push(`Floor: ${floor.total.perUserDay.toFixed(2)} refreshes/user-day (${floor.total.refreshes} in total) — ${floor.method}`);
  out.push(`  per kind: ${USER_KINDS.map((k) => `${k} ${floor.byKind[k].perUserDay.toFixed(2)}`).join(", ")}`);
  const bound = results.waitBound;
  out.push(`Wait bound: ${bound.total.waits} waits at least (its schedule: ${bound.total.vsFloor.toFixed(2)}× the floor) — ${bound.method}`);
  out.push(`  per kind: ${USER_KINDS.map((k) => `${k} ${bound.byKind[k].waits}`).join(", ")}`);
  out.push("");
  out.push("Per policy (counts over the whole run; wait times in minutes; lost min = hold end − revocation):");
  out.push(table(["policy", ...COLUMNS.map((c) => c.title)], policies.map((p) => [p.id, ...COLUMNS.map((c) => c.value(p.total))])));
  out.push("");
  out.push("Per policy × user kind:");
  const rows: string[][] = [];
  for (const p of policies) {
    for (const kind of USER_KINDS) rows.push([`${p.id} / ${kind}`, ...COLUMNS.map((c) => c.value(p.byKind[kind]))]);
  }
  // A blank line after each policy's four kinds keeps the long table scannable.
  const kindTable = table(["policy / kind", ...COLUMNS.map((c) => c.title)], rows).split("\n");
  out.push(kindTable.flatMap((line, i) => (i >= 2 && (i - 2) % USER_KINDS.length === USER_KINDS.length - 1 && i < kindTable.length - 1 ? [line, ""] : [line])).join("\n"));
  out.push("");
  out.push("Policies:");
  for (const p of policies) out.push(`  ${p.id.padEnd(26)} ${p.description}`);
  out.push("");
  out.push(
    "Columns: forced = the token could not cover L; opportun. = decide() label \"true\" (incl. refreshes the store prepared " +
      "when a reservation ended; for every-request: refreshes of a still-valid token); drained = the refresh a drain waited for; " +
      "broken = holders whose token was revoked before they were done; waits = requests that waited (once each); " +
      "write-free = hand-outs the token's pin already covered (no database write).",
  );
  const invariant = policies.filter((p) => p.total.shortHandOuts > 0 || p.total.failed > 0);
  out.push(
    invariant.length === 0
      ? "Checks: every hand-out covered its lifetime L; no request failed."
      : `Checks FAILED: ${invariant.map((p) => `${p.id} short=${p.total.shortHandOuts} failed=${p.total.failed}`).join("; ")}`,
  );
  return out.join("\n") + "\n";
}
