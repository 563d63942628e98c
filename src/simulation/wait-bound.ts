/**
 * A lower bound on the waits of any drain policy on a request stream — even one that knows every
 * future request — so that the report can say how far a goal on waits is from what is possible at
 * all, not only that no policy tried met it.
 *
 * The argument. Let U be the union of [t, t + L) over the requests at their arrival times. A refresh
 * at a time r inside U (some request arrived before r and is not done by r) either revokes a token
 * still promised to that request (broken) or that request was not handed out yet: it waits across r.
 * So, for a policy that breaks nothing, in which a waiting request waits for at most one refresh
 * (decide()'s: after the drained refresh the fresh token covers it) and a drain ends by the token's
 * expiry (decide() never lets a hold outlive the token), waits ≥ refreshes inside U.
 * Refreshes outside U ("free": right after a gap of the user's requests) cost no wait.
 *
 * The relaxation minimised below is generous to the policy, so its minimum is a lower bound:
 * - it knows the future: a free refresh may happen at any request arrival outside U (the latest
 *   point of each gap, the best one), a waited one exactly when the current token expires — the
 *   latest possible moment, whose fresh token covers the most;
 * - it costs one wait, however many requests really wait during the drain;
 * - reservations are exactly [t, t + L): the slack, and hand-outs delayed by waits, only add to U.
 *
 * minimumWaits() finds, per user, the fewest waits and among those schedules the fewest refreshes
 * (dynamic programming over the possible refresh times). If those refreshes stay within a budget
 * (e.g. 1.10× the floor), the bound holds under that budget too.
 */
import type { SimRequest } from "./user-kinds";

/** Access tokens of the simulated SCM live 60 minutes. */
const TOKEN_MS = 60 * 60_000;

/** The best schedule of the relaxation for one user. */
export interface BoundPoint {
  waits: number;
  refreshes: number;
}

interface State {
  /** When the current token was issued (its expiry is + TOKEN_MS). */
  refreshedAtMs: number;
  /** The first request that this token, or a later one, still has to serve. */
  next: number;
  waits: number;
  refreshes: number;
}

/** (waits, refreshes) in lexicographic order: fewer waits first, then fewer refreshes. */
function better(a: BoundPoint, b: BoundPoint): boolean {
  return a.waits < b.waits || (a.waits === b.waits && a.refreshes < b.refreshes);
}

/**
 * The fewest waits for one user's requests (sorted by time), given the stored token's expiry at the
 * start, in the relaxation described above — and the fewest refreshes that many waits allow.
 *
 * @example
 * // Requests every 3 minutes until 174 (needed until 179): always held, so every refresh after the first is waited for.
 * const reqs = Array.from({ length: 59 }, (_, i) => ({ atMs: i * 180_000, type: "api" as const, lifetimeMs: 300_000, releaseAfterMs: 0 }));
 * minimumWaits(reqs, -1); // → { waits: 2, refreshes: 3 }
 */
export function minimumWaits(requests: readonly SimRequest[], initialExpiresAtMs: number): BoundPoint {
  const n = requests.length;
  if (n === 0) return { waits: 0, refreshes: 0 };
  // free[i]: request i arrives when every earlier request is done — a refresh then waits for nobody.
  const free: boolean[] = new Array<boolean>(n);
  let latestEnd = -Infinity;
  for (let i = 0; i < n; i++) {
    free[i] = requests[i].atMs >= latestEnd;
    latestEnd = Math.max(latestEnd, requests[i].atMs + requests[i].lifetimeMs);
  }

  // States keyed by (refresh time, next request), processed in time order: every transition moves
  // forward in time, so a state is final when it is the earliest one pending.
  const states = new Map<number, State>();
  const pending: number[] = [];
  const offer = (s: State): void => {
    const key = s.refreshedAtMs * 1_000_000 + s.next;
    const known = states.get(key);
    if (known === undefined) {
      states.set(key, s);
      pending.push(key);
    } else if (better(s, known)) {
      states.set(key, s);
    }
  };
  offer({ refreshedAtMs: initialExpiresAtMs - TOKEN_MS, next: 0, waits: 0, refreshes: 0 });

  let best: State | undefined;
  while (pending.length > 0) {
    // The earliest pending state (a linear scan: the frontier holds a few states, not a heap's worth).
    let at = 0;
    for (let k = 1; k < pending.length; k++) if (pending[k] < pending[at]) at = k;
    const s = states.get(pending[at])!;
    pending[at] = pending[pending.length - 1];
    pending.pop();
    const expiresAtMs = s.refreshedAtMs + TOKEN_MS;

    // The first request this token cannot cover.
    let d = s.next;
    while (d < n && requests[d].atMs + requests[d].lifetimeMs <= expiresAtMs) d++;
    if (d === n) {
      if (best === undefined || better(s, best)) best = s;
      continue;
    }
    // A free refresh at any request arrival after this token's issue, up to the deadline request d.
    for (let i = s.next; i <= d; i++) {
      const t = requests[i].atMs;
      if (t > s.refreshedAtMs && free[i]) offer({ refreshedAtMs: t, next: i, waits: s.waits, refreshes: s.refreshes + 1 });
    }
    // A waited refresh when the token expires, if request d arrived before that (else its arrival is free).
    if (requests[d].atMs < expiresAtMs) offer({ refreshedAtMs: expiresAtMs, next: d, waits: s.waits + 1, refreshes: s.refreshes + 1 });
  }
  return { waits: best!.waits, refreshes: best!.refreshes };
}
