import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";

/**
 * Remembers every secret a test hands to the library (access and refresh tokens, client secrets,
 * encryption keys, take-once ids and values, database passwords) and checks that none of them shows
 * up anywhere a secret must not: error messages and stacks, `util.inspect` and `JSON.stringify` of
 * errors and public objects, log lines, metrics text.
 *
 * Secrets made with `secret()` carry a random hex marker, so a leak is found even when the library
 * echoes only part of a value, escapes it, or truncates it around the marker. Secrets registered
 * from outside (`register`) are searched whole and by their first and last 16 characters.
 */
export class LeakDetector {
  private readonly needles = new Map<string, string>();

  /** A fresh, distinctive secret: `<kind>-<24 hex>` plus an optional adversarial tail. */
  secret(kind: string, tail = ""): string {
    const marker = randomBytes(12).toString("hex");
    this.needles.set(marker, kind);
    return `${kind}-${marker}${tail}`;
  }

  /** A secret from outside (a key, a password, an id the library made, a token the SCM issued). */
  register(kind: string, value: string | undefined): void {
    if (typeof value !== "string" || value.length < 8) return;
    this.needles.set(value, kind);
    if (value.length >= 24) {
      this.needles.set(value.slice(0, 16), `${kind} (first 16 characters)`);
      this.needles.set(value.slice(-16), `${kind} (last 16 characters)`);
    }
  }

  /** Extra strings that must not appear (e.g. ciphertext prefixes, i.e. SQL parameters). */
  forbid(kind: string, needle: string): void {
    this.needles.set(needle, kind);
  }

  /** Which secret (if any) occurs in `text`. */
  find(text: string): { kind: string; needle: string } | undefined {
    for (const [needle, kind] of this.needles) if (text.includes(needle)) return { kind, needle };
    return undefined;
  }

  /** Fails when `text` contains a secret; `where` names the surface in the failure message. */
  assertClean(where: string, text: string): void {
    const hit = this.find(text);
    if (hit) {
      const at = text.indexOf(hit.needle);
      const excerpt = text.slice(Math.max(0, at - 120), at + hit.needle.length + 40);
      expect.fail(`a secret (${hit.kind}) leaked into ${where}: …${excerpt}…`);
    }
  }

  /** Message, stack, inspect (depth 10), JSON, own enumerable values, and the same for each cause. */
  assertErrorClean(where: string, error: unknown): void {
    for (const [surface, text] of errorSurfaces(error)) this.assertClean(`${where}: ${surface}`, text);
  }

  /** JSON.stringify, spread, Object.values / entries and util.inspect (depth 10) of a public object. */
  assertObjectClean(where: string, value: unknown): void {
    for (const [surface, text] of objectSurfaces(value)) this.assertClean(`${where}: ${surface}`, text);
  }
}

/** Every textual surface of an error (and of its `cause` chain and AggregateError members). */
export function errorSurfaces(error: unknown): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const seen = new Set<unknown>();
  const visit = (e: unknown, path: string) => {
    if (seen.has(e) || seen.size > 20) return;
    seen.add(e);
    if (e instanceof Error) {
      out.push([`${path}.message`, e.message]);
      out.push([`${path}.stack`, e.stack ?? ""]);
    }
    out.push(...objectSurfaces(e).map(([s, t]): [string, string] => [`${path} ${s}`, t]));
    out.push([`${path} String()`, safe(() => String(e))]);
    if (e instanceof Error && e.cause !== undefined) visit(e.cause, `${path}.cause`);
    if (e instanceof AggregateError) e.errors.forEach((inner, i) => visit(inner, `${path}.errors[${i}]`));
  };
  visit(error, "error");
  return out;
}

export function objectSurfaces(value: unknown): Array<[string, string]> {
  const out: Array<[string, string]> = [["util.inspect", safe(() => inspect(value, { depth: 10, showHidden: false, getters: false }))]];
  out.push(["JSON.stringify", safe(() => JSON.stringify(value) ?? "")]);
  if (typeof value === "object" && value !== null) {
    out.push(["spread", safe(() => inspect({ ...value }, { depth: 10 }))]);
    out.push(["JSON.stringify(spread)", safe(() => JSON.stringify({ ...value }) ?? "")]);
    out.push(["Object.values", safe(() => inspect(Object.values(value), { depth: 10 }))]);
    out.push(["Object.entries", safe(() => JSON.stringify(Object.entries(value)) ?? "")]);
  }
  return out;
}

/** A surface that cannot even be rendered is reported as text, not thrown (the failure is elsewhere). */
function safe(render: () => string): string {
  try {
    return render();
  } catch (e) {
    return `<rendering threw ${(e as Error)?.name}>`;
  }
}
