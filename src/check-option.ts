import { ConfigurationError, InvalidArgumentError } from "./errors";

/**
 * The one shared check for numbers and option objects. Start-up options fail with a
 * ConfigurationError naming the `option`; call arguments with an InvalidArgumentError naming the
 * `argument`. Both are thrown here, directly, so no caller re-wraps or re-words an error.
 */

/** The accepted range of a number. `max: Infinity` also accepts Infinity itself ("no limit"). */
export interface NumberRange {
  min: number;
  max: number;
  /** Only whole numbers (Infinity still passes when max is Infinity). */
  integer?: boolean;
  /** The unit, for the message: "milliseconds", "minutes". */
  unit?: string;
  /** Replaces the generated range text, e.g. "a number of minutes from 1/60 (one second) to 1440 (24 hours)". */
  text?: string;
}

type Fail = (name: string, message: string) => never;

const failOption: Fail = (option, message) => {
  throw new ConfigurationError(message, option);
};
const failArgument: Fail = (argument, message) => {
  throw new InvalidArgumentError(argument, message);
};

/** A start-up option: throws ConfigurationError with `option` set. */
export function checkNumberOption(value: unknown, option: string, range: NumberRange): number {
  return checkNumber(value, option, range, failOption);
}

/** A call argument: throws InvalidArgumentError with `argument` set. */
export function checkNumberArgument(value: unknown, argument: string, range: NumberRange): number {
  return checkNumber(value, argument, range, failArgument);
}

/** An options object (undefined → {}), refusing anything else and unknown keys (typos would be ignored silently). */
export function checkObjectOption(value: unknown, option: string, keys: readonly string[]): Record<string, unknown> {
  return checkObject(value, option, keys, failOption);
}

/** The same for a call's options argument. */
export function checkObjectArgument(value: unknown, argument: string, keys: readonly string[]): Record<string, unknown> {
  return checkObject(value, argument, keys, failArgument);
}

function checkNumber(value: unknown, name: string, range: NumberRange, fail: Fail): number {
  const ok =
    typeof value === "number" &&
    !Number.isNaN(value) &&
    value >= range.min &&
    value <= range.max &&
    (!range.integer || Number.isInteger(value) || (value === Number.POSITIVE_INFINITY && range.max === Number.POSITIVE_INFINITY));
  if (!ok) fail(name, `${name} must be ${range.text ?? describeRange(range)}, got ${describeValue(value)}`);
  return value as number;
}

function checkObject(value: unknown, name: string, keys: readonly string[], fail: Fail): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(name, `${name} must be an object with the keys ${keys.join(", ")} (each optional unless documented otherwise), got ${describeValue(value)}`);
  }
  const unknown = Object.keys(value as object).find((k) => !keys.includes(k));
  if (unknown !== undefined) {
    // The top-level options object is not a named option: name the key itself ("metricPrefix"). A key
    // that is not an identifier (empty, spaces, symbols) is quoted, so the name is never empty.
    const quoted = /^[A-Za-z_$][\w$]*$/.test(unknown) ? undefined : `[${JSON.stringify(unknown.slice(0, 40))}]`;
    const field = quoted ? `${name}${quoted}` : name === "options" ? unknown : `${name}.${unknown}`;
    fail(field, `${field} is not a known option (a typo?); the keys of ${name} are ${keys.join(", ")}`);
  }
  return value as Record<string, unknown>;
}

function describeRange(range: NumberRange): string {
  const kind = range.integer ? "an integer" : "a number";
  const of = range.unit ? ` of ${range.unit}` : "";
  if (range.max === Number.POSITIVE_INFINITY) return `${kind}${of} >= ${range.min} (or Infinity)`;
  return `${kind}${of} from ${range.min} to ${range.max}`;
}

/** An object option that must have these methods (a logger, a clock, a DataSource…); undefined passes. */
export function checkInterface(value: unknown, option: string, methods: readonly string[], what: string): void {
  if (value === undefined) return;
  const ok = typeof value === "object" && value !== null && methods.every((m) => typeof (value as Record<string, unknown>)[m] === "function");
  if (!ok) throw new ConfigurationError(`${option} must be ${what} (with ${methods.map((m) => `${m}()`).join(", ")}), got ${describeValue(value)}`, option);
}

/** Options and arguments checked here are never secrets; still, long strings are cut. */
export function describeValue(value: unknown): string {
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value;
}
