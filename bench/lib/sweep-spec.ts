/**
 * The policy ids of the sweeps (bench/sweep-policies.ts, bench/policy-frontier.ts), outside the report's
 * catalogue: h<horizon min>[-m<margin min>][-ed<ramp-to s>-<ramp-end min>][-rel][-prep][-mw<max wait s>][-s<slack %>],
 * options in any order, e.g. h15-ed120-8-rel; `@<kind>=<policy>` gives one user kind its own policy (an
 * oracle that knows who is a bot), e.g. h13-ed120-8@heavy=h40-ed120-8.
 */
import { RESERVATION_SLACK_FRACTION } from "../../src/hand-out-reservation";
import type { RefreshPolicy } from "../../src/refresh-policy";
import type { PolicySpec } from "../../src/simulation/policies";
import { USER_KINDS, type UserKind } from "../../src/simulation/user-kinds";

const MIN = 60_000;

/** `<policy>[@<kind>=<policy> …]`: per-kind policies (an oracle that knows each user's kind), e.g. h20@heavy=h45. */
export function parseSweepPolicy(id: string): PolicySpec {
  const [main, ...perKind] = id.split("@");
  const spec = parseOne(main);
  spec.id = id;
  for (const part of perKind) {
    const [kind, policyId] = part.split("=");
    if (!(USER_KINDS as readonly string[]).includes(kind) || !policyId) throw new Error(`bad policy ${id}: "@${part}" is not @<idle|normal|heavy|bot>=<policy>`);
    spec.policyByKind = { ...spec.policyByKind, [kind as UserKind]: parseOne(policyId).policy };
  }
  return spec;
}

function parseOne(id: string): PolicySpec {
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

