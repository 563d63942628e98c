/**
 * `npx ts-node --transpile-only bench/sweep-policies.ts <workload> <seeds> <policy> [policy …]`
 *
 * A parameter sweep over horizon, early-drain ramp and release, outside the report's policy catalogue.
 * Policy syntax: h<horizon min>[-m<margin min>][-ed<ramp-to s>-<ramp-end min>][-rel][-prep][-mw<max wait s>][-s<slack %>],
 * options in any order, e.g. h15-ed120-8-rel
 * (slack: the reservation slack of hand-outs that must write, default the library's).
 * Prints one line per (seed, policy): × floor, broken, waits, mean/max wait, failed, write-free share, waits per kind.
 */
import { RESERVATION_SLACK_FRACTION } from "../src/hand-out-reservation";
import type { RefreshPolicy } from "../src/refresh-policy";
import type { PolicySpec } from "../src/simulation/policies";
import { runSimulation } from "../src/simulation/run-simulation";
import type { Workload } from "../src/simulation/user-kinds";

const MIN = 60_000;

function parse(id: string): PolicySpec {
  const [first, ...rest] = id.split("-");
  const h = /^h(\d+)$/.exec(first);
  if (!h) throw new Error(`bad policy ${id}: it starts with h<horizon minutes>`);
  const policy: RefreshPolicy = { opportunistic: true, horizonMs: Number(h[1]) * MIN, drain: true, earlyDrain: null };
  const spec: PolicySpec = { id, description: id, mode: "decide", policy, release: false, prepare: false, maxWaitMs: Infinity, wakeOnRelease: true, slackFraction: RESERVATION_SLACK_FRACTION };
  for (let k = 0; k < rest.length; k++) {
    const token = rest[k];
    const [, name, value] = /^([a-z]+)(\d*)$/.exec(token) ?? [];
    const number = Number(value);
    // Two-number options take the next token as their second number.
    const second = () => Number(rest[++k]);
    if (name === "m") policy.horizonMarginMs = number * MIN;
    else if (name === "ed") policy.earlyDrain = { rampToMs: number * 1000, rampEndMs: second() * MIN };
    else if (name === "rel") spec.release = true;
    else if (name === "prep") spec.prepare = true;
    else if (name === "mw") spec.maxWaitMs = number * 1000;
    else if (name === "s") spec.slackFraction = number / 100;
    else throw new Error(`bad policy ${id}: unknown option "${token}"`);
  }
  return spec;
}

const [workload, seedList, ...ids] = process.argv.slice(2);
for (const seed of seedList.split(",").map(Number)) {
  const r = runSimulation({ users: 1000, days: 7, seed, workload: workload as Workload, specs: ids.map(parse) });
  for (const p of r.policies) {
    const t = p.total;
    const kinds = (["idle", "normal", "heavy", "bot"] as const).map((k) => `${k}=${p.byKind[k].waits} ${k}Drains=${p.byKind[k].waitedRefreshes} ${k}Avg=${p.byKind[k].waitMinutesAvg.toFixed(2)} ${k}X=${p.byKind[k].vsFloor.toFixed(3)}`).join(" ");
    console.log(`${workload} ${seed} ${p.id.padEnd(18)} x${t.vsFloor.toFixed(3)} broken=${t.broken} waits=${t.waits} avg=${t.waitMinutesAvg.toFixed(2)} max=${t.waitMinutesMax.toFixed(1)} failed=${t.failed} writeFree=${t.writeFreeShare.toFixed(3)} ${kinds}`);
  }
}
