import { expect } from "chai";
import fc from "fast-check";
import { InvalidArgumentError } from "../../../src/errors";
import type { LeakDetector } from "./leak-detector";
import type { Verdict } from "./oracles";
import { typedOutcome } from "./outcome";

/**
 * One adversarial call: what it does, whether the manual says its input is valid, and which
 * argument an InvalidArgumentError must name when it is not.
 */
export interface Case<W> {
  label: string;
  verdict: Verdict;
  /** Argument names an InvalidArgumentError may give (the first bad one the library checks). */
  args: readonly string[];
  run(world: W): Promise<unknown>;
  /** For a valid call: what the result must be. */
  check?(result: unknown, world: W): unknown;
}

/** Judges a Case: valid → returns and passes `check`; invalid → InvalidArgumentError naming one of `args`; either → typed. */
export async function judge<W>(c: Case<W>, world: W, leaks: LeakDetector): Promise<void> {
  const outcome = await typedOutcome(c.label, leaks, () => c.run(world));
  if (c.verdict === "valid") {
    if (!outcome.ok) expect.fail(`${c.label}: valid input was refused with ${outcome.error.name} (${outcome.error.code}): ${outcome.error.message}`);
    await c.check?.(outcome.value, world);
    return;
  }
  if (c.verdict === "invalid") {
    if (outcome.ok) expect.fail(`${c.label}: a bad value was accepted silently; expected InvalidArgumentError naming ${c.args.join(" or ")}`);
    expect(outcome.error, `${c.label}: expected InvalidArgumentError, got ${outcome.error.name}: ${outcome.error.message}`).to.be.instanceOf(InvalidArgumentError);
    const got = (outcome.error as InvalidArgumentError).argument;
    const named = c.args.some((n) => got === n || got.startsWith(`${n}.`) || got.startsWith(`${n}[`));
    expect(named, `${c.label}: InvalidArgumentError names ${JSON.stringify(got)}; expected ${c.args.join(" or ")}`).to.equal(true);
    return;
  }
  if (outcome.ok) await c.check?.(outcome.value, world);
}

/** The verdict of several independent values: any invalid wins, then any either. */
export function combine(parts: ReadonlyArray<{ name: string; verdict: Verdict }>): { verdict: Verdict; args: string[] } {
  const invalid = parts.filter((p) => p.verdict === "invalid").map((p) => p.name);
  // An "either" part may be the one refused first, so it may be named too.
  if (invalid.length > 0) return { verdict: "invalid", args: [...invalid, ...parts.filter((p) => p.verdict === "either").map((p) => p.name)] };
  return { verdict: parts.some((p) => p.verdict === "either") ? "either" : "valid", args: [] };
}

/** A record of optional fields, each either absent or drawn from its arbitrary. */
export function partialRecord<T extends Record<string, fc.Arbitrary<unknown>>>(fields: T): fc.Arbitrary<Partial<{ [K in keyof T]: unknown }>> {
  return fc.record(fields, { requiredKeys: [] }) as fc.Arbitrary<Partial<{ [K in keyof T]: unknown }>>;
}

/** A short, printable rendering of a generated value for failure messages (never of a secret). */
export function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…(${v.length})` : v);
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean" || v === undefined || v === null) return String(v);
  if (typeof v === "symbol" || typeof v === "function") return typeof v;
  try {
    const s = JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : typeof x === "number" && !Number.isFinite(x) ? String(x) : x === undefined ? "undefined" : typeof x === "string" && x.length > 60 ? `${x.slice(0, 60)}…(${x.length})` : x));
    return s === undefined ? String(v) : s.length > 300 ? `${s.slice(0, 300)}…` : s;
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/**
 * Collects failures across a whole property run instead of stopping at the first, so one run reports
 * every distinct defect (one bad argument must not hide the next). Failures are grouped by call and
 * message with the generated values stripped; each group keeps its shortest example, which is the
 * minimal reproduction to report. `assertNone()` fails the test with the list.
 */
export class FailureLog {
  private readonly groups = new Map<string, { count: number; example: string; message: string }>();

  /** Runs one generated case; an assertion or unexpected error is recorded, not thrown. */
  async check(label: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      const call = label.replace(/\(.*$/s, "");
      const key = `${call}|${message.split(label).join("<input>").replace(/"(?:[^"\\]|\\.)*"|\d+(\.\d+)?(e[+-]?\d+)?/g, "_").slice(0, 160)}`;
      const group = this.groups.get(key);
      if (!group) this.groups.set(key, { count: 1, example: label, message });
      else {
        group.count++;
        if (label.length < group.example.length) Object.assign(group, { example: label, message });
      }
    }
  }

  get size(): number {
    return this.groups.size;
  }

  assertNone(): void {
    if (this.groups.size === 0) return;
    const lines = [...this.groups.values()].map((g, i) => `${i + 1}. [${g.count}×] ${g.message.slice(0, 600)}`);
    expect.fail(`${this.groups.size} distinct failure(s):\n${lines.join("\n")}`);
  }
}
