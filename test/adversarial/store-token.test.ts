import { expect } from "chai";
import fc from "fast-check";
import { Token } from "../../src/token";
import { dbKinds } from "../support/databases";
import { hostileScalar } from "./support/arbitraries";
import { combine, FailureLog, judge, show, type Case } from "./support/cases";
import { LONE_SURROGATE, oneOfVerdict, optionsBagVerdict, scopesShapeVerdict, userIdVerdict, type Verdict } from "./support/oracles";
import { fcParams, typedOutcome } from "./support/outcome";
import { openWorld, type World } from "./support/world";

/**
 * storeToken with hostile input. A value the library accepts must read back exactly (on every
 * database: a database error for input the validation let through is a bug); a value it refuses must
 * be refused with an InvalidArgumentError naming the field, and never echoed.
 */

const STORE_KEYS = ["value", "refreshToken", "expiryDate", "scopes", "username", "reuse"];
const MAX_TOKEN = 16 * 1024;
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A secret with an adversarial body; `length` is the total UTF-16 length wanted (marker included). */
type SecretSpec = { tail: string } | { fill: string; length: number } | { raw: unknown };

const EDGE_SECRETS: SecretSpec[] = [
    { tail: "" },
    { tail: "\u0000" },
    { tail: "\nline" },
    { tail: "\u007f" },
    { tail: " with spaces " },
    { tail: "é\u0301\u200b\ufeff" },
    { tail: "'; DROP TABLE scm_token_entry; --" },
    { tail: "\ud800" }, // a lone surrogate: not valid UTF-16, cannot round-trip through UTF-8
    { fill: "x", length: MAX_TOKEN },
    { fill: "x", length: MAX_TOKEN + 1 },
    { fill: "€", length: MAX_TOKEN }, // 3 bytes per UTF-16 unit: the largest UTF-8 size the limit allows
    { fill: "\u{1F600}", length: MAX_TOKEN }, // 4-byte characters
    { raw: "" },
    { raw: null },
    { raw: 12345678 },
    { raw: ["a-secret-in-an-array"] },
    { raw: { toString: () => "an-object-secret" } },
];
const secretSpec: fc.Arbitrary<SecretSpec> = fc.oneof(
  fc.constantFrom(...EDGE_SECRETS),
  fc.string({ unit: "binary", maxLength: 12 }).map((tail) => ({ tail })),
);

function makeSecret(w: World, kind: string, spec: SecretSpec): unknown {
  if ("raw" in spec) return spec.raw;
  const base = w.leaks.secret(kind);
  if ("tail" in spec) return base + spec.tail;
  // Whole characters only: at most `length` UTF-16 units, never a cut surrogate pair.
  const chars = Array.from(base + spec.fill.repeat(Math.ceil((spec.length - base.length) / spec.fill.length)));
  let size = chars.reduce((n, c) => n + c.length, 0);
  while (size > spec.length) size -= chars.pop()!.length;
  return chars.join("");
}

function secretVerdict(v: unknown): Verdict {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_TOKEN || CONTROL.test(v)) return "invalid";
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(v)) return "either"; // lone surrogate
  return "valid";
}

const NOW = Date.parse("2026-01-01T00:00:00Z");
const expiryValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, null, new Date(NaN), "garbage", "2027-01-01T00:00:00Z", "2027-01-01", 0, -1, NaN, Infinity, new Date("1970-01-01T00:00:00Z"), new Date("1971-06-01T00:00:00Z"), new Date("9999-12-31T23:59:59Z"), new Date(8.64e15), {}, true),
  fc.integer({ min: -2 * 86_400_000, max: 400 * 86_400_000 }).map((d) => new Date(NOW + d)),
);

function expiryVerdict(v: unknown): Verdict {
  if (v === undefined) return "valid";
  if (v === null) return "either";
  const d = v instanceof Date || typeof v === "string" || typeof v === "number" ? new Date(v) : undefined;
  if (!d || Number.isNaN(d.getTime())) return "invalid";
  const y = d.getUTCFullYear();
  if (y < 1971 || y > 9999) return "invalid";
  return typeof v === "number" ? "either" : "valid"; // epoch milliseconds: the manual says a Date or an ISO string
}

const scopesValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, null, [], ["api"], ["api", "api"], ["read write"], [""], "api", [1], ["a\u0000"]),
  fc.array(fc.stringMatching(/^[A-Za-z_:.]{1,20}$/), { maxLength: 5 }),
  // Many long scopes: within the documented limits (100 × 200 characters), so they must be stored whole.
  fc.constantFrom(10, 50, 100).map((n) => Array.from({ length: n }, (_, i) => `scope${i}_`.padEnd(200, "s"))),
  fc.constant(Array.from({ length: 101 }, (_, i) => `s${i}`)),
);

const usernameValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, null, "", "x-token-auth", "oauth2", "é".repeat(255), "\u{1F600}".repeat(127), "\u{1F600}".repeat(128), "x".repeat(256), "a\nb", 42, {}),
  fc.string({ unit: "grapheme", maxLength: 20 }),
);

function usernameVerdict(v: unknown): Verdict {
  if (v === undefined) return "valid";
  if (v === null) return "either";
  if (typeof v !== "string" || v.length > 255 || CONTROL.test(v) || LONE_SURROGATE.test(v)) return "invalid";
  return "valid";
}

const reuseValue = fc.oneof(fc.constantFrom(undefined, "whenPossible", "exactly", "never", "Never", "always", "", null), hostileScalar);

for (const kind of dbKinds()) {
  describe(`adversarial: storeToken (${kind})`, function () {
    this.timeout(120_000);
    let w: World;
    before(async () => {
      w = await openWorld(kind);
    });
    after(async () => w?.close());

    it("stores exactly what it accepts and refuses the rest with the field's name, never echoing a secret", async () => {
      const inputArb = fc.record({
        userId: fc.oneof({ weight: 6, arbitrary: fc.constant("ok") }, { weight: 1, arbitrary: fc.oneof(hostileScalar, fc.constantFrom(" x", "x\u0000", "x".repeat(129))) }),
        host: fc.oneof({ weight: 6, arbitrary: fc.constant("ok") }, { weight: 1, arbitrary: hostileScalar }),
        shape: fc.oneof({ weight: 8, arbitrary: fc.constant("object") }, { weight: 1, arbitrary: fc.constantFrom("null", "string", "array", "extra-key", "snake-case") }),
        value: secretSpec,
        refreshToken: fc.option(secretSpec, { nil: undefined }),
        expiryDate: expiryValue,
        scopes: scopesValue,
        username: usernameValue,
        reuse: reuseValue,
      });
      type StoreInput = typeof inputArb extends fc.Arbitrary<infer T> ? T : never;
      const failures = new FailureLog();
      const runInput = async (input: StoreInput): Promise<void> => {
          const userId = input.userId === "ok" ? `${w.tag()}-store` : input.userId;
          const host = input.host === "ok" ? w.hosts[1] : input.host;
          const value = makeSecret(w, "access-token", input.value);
          const refreshToken = input.refreshToken === undefined ? undefined : makeSecret(w, "refresh-token", input.refreshToken);
          const fields: Record<string, unknown> = { value, refreshToken, expiryDate: input.expiryDate, scopes: input.scopes, username: input.username, reuse: input.reuse };
          for (const k of Object.keys(fields)) if (fields[k] === undefined) delete fields[k];
          const token: unknown =
            input.shape === "null" ? null
            : input.shape === "string" ? value
            : input.shape === "array" ? [value]
            : input.shape === "extra-key" ? { ...fields, refreshTokn: refreshToken ?? "x" }
            : input.shape === "snake-case" ? { ...fields, refresh_token: refreshToken ?? "x", expires_in: 3600 }
            : fields;

          const shapeVerdict = input.shape === "object" ? "valid" : input.shape === "null" ? "invalid" : optionsBagVerdict(token, STORE_KEYS);
          const { verdict, args } = combine([
            { name: "userId", verdict: userIdVerdict(userId) },
            { name: "host", verdict: host === w.hosts[1] ? "valid" : "invalid" },
            { name: "token", verdict: shapeVerdict },
            ...(shapeVerdict === "valid"
              ? [
                  { name: "token.value", verdict: secretVerdict(value) },
                  { name: "token.refreshToken", verdict: refreshToken === undefined ? ("valid" as const) : secretVerdict(refreshToken) },
                  { name: "token.expiryDate", verdict: expiryVerdict(input.expiryDate) },
                  { name: "token.scopes", verdict: scopesShapeVerdict(input.scopes) },
                  { name: "token.username", verdict: usernameVerdict(input.username) },
                  { name: "token.reuse", verdict: oneOfVerdict(input.reuse, ["whenPossible", "exactly", "never"]) },
                ]
              : []),
          ]);
          const label = `storeToken(${show(userId)}, ${show(host)}, ${input.shape} ${show({ value: input.value, refreshToken: input.refreshToken, expiryDate: input.expiryDate, scopes: input.scopes, username: input.username, reuse: input.reuse })})`;
          const c: Case<World> = {
            label,
            verdict,
            args: [...args, ...(input.shape === "object" ? [] : ["token"])],
            run: (x) => x.service.storeToken(userId as string, host as string, token as never),
            check: async (_r, x) => {
              // Read it back (when it still covers a 1-minute hand-out): exactly what was stored.
              const expiry = input.expiryDate === undefined || input.expiryDate === null ? undefined : new Date(input.expiryDate as string);
              if (expiry && expiry.getTime() < x.clock.now().getTime() + 86_400_000) return;
              const back = await typedOutcome(`read-back after ${label}`, x.leaks, () => x.service.getTokenForHost(userId as string, x.hosts[1], { lifetimeMinutes: 1 }));
              if (!back.ok) expect.fail(`${label}: accepted, but reading it back failed with ${back.error.name}: ${back.error.message}`);
              expect(back.value, `${label}: read back`).to.be.instanceOf(Token);
              const t = back.value as Token;
              expect(t.value === value, `${label}: the value read back differs from the value stored`).to.equal(true);
              if (Array.isArray(input.scopes)) expect(t.scopes, `${label}: scopes read back`).to.have.members([...new Set(input.scopes as string[])]);
              expect(t.username ?? null, `${label}: username read back`).to.equal(input.username ?? null);
            },
          };
          await failures.check(label, () => judge(c, w, w.leaks));
          await failures.check(`victims after ${label}`, () => w.checkVictims(label));
      };
      // Every edge value once (as the value and as the refresh token, everything else valid), then generated inputs.
      const plain = { userId: "ok", host: "ok", shape: "object", expiryDate: undefined, scopes: ["api"], username: undefined, reuse: undefined } as const;
      for (const spec of EDGE_SECRETS) {
        await runInput({ ...plain, value: spec, refreshToken: undefined });
        await runInput({ ...plain, value: { tail: "" }, refreshToken: spec });
      }
      // The documented maxima of the other fields, all at once: they must fit the columns on every database.
      await runInput({ ...plain, value: { fill: "€", length: MAX_TOKEN }, refreshToken: { fill: "€", length: MAX_TOKEN }, scopes: Array.from({ length: 100 }, (_, i) => `s${i}_`.padEnd(200, "s")), username: "\u{1F600}".repeat(127), expiryDate: new Date("9999-12-31T23:59:59.999Z") });
      await fc.assert(
        fc.asyncProperty(inputArb, async (input) => runInput(input)),
        fcParams(kind === "mariadb" ? 25 : 50),
      );
      await failures.check("surfaces", () => w.checkSurfaces("hostile storeToken"));
      failures.assertNone();
    });

  });
}
