import { expect } from "chai";
import fc from "fast-check";
import { inspect } from "node:util";
import { InvalidArgumentError, TokenServiceError, type TokenServiceErrorCode } from "../../../src/errors";
import type { LeakDetector } from "./leak-detector";

/**
 * The contract every public entry point is held to: it returns, or it throws a TokenServiceError
 * with a known `code` (and an InvalidArgumentError names the argument) — never a TypeError, a raw
 * driver error or anything else — and no secret is in the error.
 */

const CODES: ReadonlySet<TokenServiceErrorCode> = new Set([
  "INVALID_ARGUMENT",
  "REAUTHORIZATION_REQUIRED",
  "SCM_UNAVAILABLE",
  "SCM_BAD_RESPONSE",
  "TOKEN_HELD",
  "DECRYPTION_FAILED",
  "CONFIGURATION",
  "REFRESH_IN_PROGRESS",
  "STORAGE",
]);

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: TokenServiceError };

/** Runs `fn`; a non-TokenServiceError, an unknown code or a leaking error fails the property. */
export async function typedOutcome<T>(what: string, leaks: LeakDetector, fn: () => T | Promise<T>): Promise<Outcome<T>> {
  let value: T;
  try {
    value = await fn();
  } catch (e) {
    leaks.assertErrorClean(what, e);
    if (!(e instanceof TokenServiceError)) {
      expect.fail(`${what} threw an untyped ${describeThrown(e)}; every error must be a TokenServiceError with a code`);
    }
    expect(CODES.has(e.code), `${what}: unknown code ${e.code}`).to.equal(true);
    expect(e.message, `${what}: message`).to.match(/^scm-token-service: /);
    if (e instanceof InvalidArgumentError || e.code === "INVALID_ARGUMENT") {
      expect(e, `${what}: code INVALID_ARGUMENT must come as an InvalidArgumentError`).to.be.instanceOf(InvalidArgumentError);
      const argument = (e as InvalidArgumentError).argument;
      expect(argument, `${what}: InvalidArgumentError.argument`).to.be.a("string").and.not.equal("");
    }
    return { ok: false, error: e };
  }
  return { ok: true, value };
}

/** `fn` must reject `bad` input with an InvalidArgumentError naming one of `argument` (or a field of it). */
export async function expectInvalidArgument(what: string, leaks: LeakDetector, argument: string | readonly string[], fn: () => unknown): Promise<InvalidArgumentError> {
  const outcome = await typedOutcome(what, leaks, fn);
  if (outcome.ok) expect.fail(`${what} accepted a bad value silently (returned ${inspect(outcome.value, { depth: 1 }).slice(0, 200)}); expected InvalidArgumentError for ${String(argument)}`);
  const e = outcome.error;
  expect(e, `${what}: expected InvalidArgumentError, got ${e.name} (${e.code}): ${e.message}`).to.be.instanceOf(InvalidArgumentError);
  const names = typeof argument === "string" ? [argument] : argument;
  const got = (e as InvalidArgumentError).argument;
  const matches = names.some((n) => got === n || got.startsWith(`${n}.`) || got.startsWith(`${n}[`));
  expect(matches, `${what}: InvalidArgumentError names ${JSON.stringify(got)}, expected ${names.join(" or ")}`).to.equal(true);
  return e as InvalidArgumentError;
}

/** `fn` must fail with a TokenServiceError of `code` (start-up checks: CONFIGURATION). */
export async function expectCode(what: string, leaks: LeakDetector, code: TokenServiceErrorCode | readonly TokenServiceErrorCode[], fn: () => unknown): Promise<TokenServiceError> {
  const outcome = await typedOutcome(what, leaks, fn);
  if (outcome.ok) expect.fail(`${what} accepted a bad value silently; expected a ${String(code)} error`);
  const codes = typeof code === "string" ? [code] : code;
  expect(codes, `${what}: got ${outcome.error.name} (${outcome.error.code}): ${outcome.error.message}`).to.include(outcome.error.code);
  return outcome.error;
}

function describeThrown(e: unknown): string {
  if (e instanceof Error) return `${e.constructor?.name ?? "Error"}${(e as { code?: unknown }).code ? ` (code ${String((e as { code?: unknown }).code)})` : ""}: ${e.message.slice(0, 300)}`;
  return `non-Error value ${inspect(e).slice(0, 100)}`;
}

/**
 * fast-check parameters: seeded from ADVERSARIAL_SEED (printed at start, and by fast-check in every
 * failure together with the path, so `ADVERSARIAL_SEED=<seed>` replays the run), runs scaled by
 * ADVERSARIAL_RUNS_SCALE (default 1; raise it for a soak run).
 */
export const ADVERSARIAL_SEED = process.env.ADVERSARIAL_SEED === undefined ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0 : Number(process.env.ADVERSARIAL_SEED);
const SCALE = Number(process.env.ADVERSARIAL_RUNS_SCALE ?? "1") || 1;
let announced = false;

export function fcParams<T>(numRuns: number): fc.Parameters<T> {
  if (!announced) {
    announced = true;
    console.log(`      adversarial suite: ADVERSARIAL_SEED=${ADVERSARIAL_SEED}`);
  }
  return { seed: ADVERSARIAL_SEED, numRuns: Math.max(1, Math.round(numRuns * SCALE)), interruptAfterTimeLimit: 20_000 };
}
