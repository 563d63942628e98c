/**
 * `npx ts-node --transpile-only bench/sweep-policies.ts <workload> <seeds> <policy> [policy …]`
 *
 * A parameter sweep over horizon, early-drain ramp and release, outside the report's policy catalogue.
 * Policy syntax: h<horizon min>[-m<margin min>][-ed<ramp-to s>-<ramp-end min>][-rel][-prep][-mw<max wait s>], e.g. h15-ed120-8-rel.
 * Prints one line per (seed, policy): × floor, broken, waits, mean/max wait, failed, waits per kind.
 */
import type { PolicySpec } from "../src/simulation/policies";
import { runSimulation } from "../src/simulation/run-simulation";
import type { Workload } from "../src/simulation/user-kinds";

const MIN = 60_000;

function parse(id: string): PolicySpec {
  const m = /^h(\d+)(?:-m(\d+))?(?:-ed(\d+)-(\d+))?(-rel)?(-prep)?(?:-mw(\d+))?$/.exec(id);
  if (!m) throw new Error(`bad policy ${id}`);
  const [, h, margin, rampTo, rampEnd, rel, prep, maxWait] = m;
  return {
    id,
    description: id,
    mode: "decide",
    policy: { opportunistic: true, horizonMs: Number(h) * MIN, horizonMarginMs: margin ? Number(margin) * MIN : undefined, drain: true, earlyDrain: rampTo ? { rampToMs: Number(rampTo) * 1000, rampEndMs: Number(rampEnd) * MIN } : null },
    release: rel !== undefined,
    prepare: prep !== undefined,
    maxWaitMs: maxWait ? Number(maxWait) * 1000 : Infinity,
    wakeOnRelease: true,
  };
}

const [workload, seedList, ...ids] = process.argv.slice(2);
for (const seed of seedList.split(",").map(Number)) {
  const r = runSimulation({ users: 1000, days: 7, seed, workload: workload as Workload, specs: ids.map(parse) });
  for (const p of r.policies) {
    const t = p.total;
    const kinds = (["idle", "normal", "heavy", "bot"] as const).map((k) => `${k}=${p.byKind[k].waits}`).join(" ");
    console.log(`${workload} ${seed} ${p.id.padEnd(18)} x${t.vsFloor.toFixed(3)} broken=${t.broken} waits=${t.waits} avg=${t.waitMinutesAvg.toFixed(2)} max=${t.waitMinutesMax.toFixed(1)} failed=${t.failed} ${kinds}`);
  }
}
