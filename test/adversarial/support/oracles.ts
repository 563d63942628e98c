/**
 * What the documentation says is a valid value, written independently of src/validation.ts, so a
 * check that drifts from the manual is caught. "either" marks values the manual leaves open: the
 * library may accept or refuse them, but only with a correct result or a typed error.
 */
export type Verdict = "valid" | "invalid" | "either";

const CONTROL = /[\u0000-\u001f\u007f]/;
/** A lone UTF-16 surrogate: UTF-8 (and so MySQL/MariaDB) cannot hold it; the manual says such text is refused. */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * `null` for an optional field: many JavaScript APIs read it as "not given", the manual does not say.
 * Accepting it as absent or refusing it are both fine; anything else (a crash, a NaN) is not.
 */
const NULL_FOR_OPTIONAL: Verdict = "either";

/** README: "empty/oversized ids" are refused; ids are opaque, at most 128 characters, no surrounding spaces or control characters. */
export function userIdVerdict(v: unknown): Verdict {
  if (typeof v !== "string" || v.length === 0 || CONTROL.test(v) || LONE_SURROGATE.test(v) || v.trim() !== v) return "invalid";
  if ([...v].length > 128) return "invalid";
  if (v.length > 128) return "either"; // 128 code points but more UTF-16 units: the manual does not say which
  return "valid";
}

/** lifetimeMinutes: a number of minutes from 1/60 (one second) to 1440 (24 hours). */
export function lifetimeVerdict(v: unknown): Verdict {
  if (v === undefined) return "valid";
  if (v === null) return NULL_FOR_OPTIONAL;
  if (typeof v !== "number" || !Number.isFinite(v)) return "invalid";
  if (v * 60_000 < 1000 || v > 1440) return "invalid";
  return "valid";
}

/** maxWaitMs: a number >= 0, Infinity allowed. */
export function maxWaitVerdict(v: unknown): Verdict {
  if (v === undefined) return "valid";
  if (v === null) return NULL_FOR_OPTIONAL;
  if (typeof v !== "number" || Number.isNaN(v) || v < 0) return "invalid";
  return "valid";
}

export function oneOfVerdict(v: unknown, allowed: readonly unknown[]): Verdict {
  if (v === null) return NULL_FOR_OPTIONAL;
  return v === undefined || allowed.includes(v) ? "valid" : "invalid";
}

export function booleanVerdict(v: unknown): Verdict {
  if (v === null) return NULL_FOR_OPTIONAL;
  return v === undefined || typeof v === "boolean" ? "valid" : "invalid";
}

/** Scopes: an array of at most 100 non-empty strings of at most 200 characters without whitespace, at most 2048 characters joined. */
export function scopesShapeVerdict(v: unknown): Verdict {
  if (v === undefined) return "valid";
  if (v === null) return NULL_FOR_OPTIONAL;
  if (!Array.isArray(v) || v.length > 100) return "invalid";
  if (!v.every((s) => typeof s === "string" && s.length > 0 && s.length <= 200 && !/\s/.test(s) && !CONTROL.test(s))) return "invalid";
  return [...new Set(v as string[])].join(" ").length <= 2048 ? "valid" : "invalid";
}

/** A positive integer (batch sizes and counts), with an upper bound. */
export function positiveIntegerVerdict(v: unknown, max: number, allowInfinity = false): Verdict {
  if (v === undefined) return "valid";
  if (v === null) return NULL_FOR_OPTIONAL;
  if (typeof v !== "number" || Number.isNaN(v)) return "invalid";
  if (allowInfinity && v === Number.POSITIVE_INFINITY) return "valid";
  return Number.isInteger(v) && v >= 1 && v <= max ? "valid" : "invalid";
}

/**
 * An options bag: undefined or a plain object of known keys (each then judged on its own); anything
 * else — null, a number, an array, an unknown key (a typo would be ignored) — is refused.
 */
export function optionsBagVerdict(v: unknown, knownKeys: readonly string[]): Verdict {
  if (v === undefined) return "valid";
  if (v === null) return NULL_FOR_OPTIONAL;
  if (typeof v !== "object" || Array.isArray(v)) return "invalid";
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return "either";
  return Object.keys(v).every((k) => knownKeys.includes(k)) ? "valid" : "invalid";
}
