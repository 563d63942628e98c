import { expect } from "chai";
import fc from "fast-check";
import { TakeOnceSecrets } from "../../src/secrets/take-once/take-once-secrets";
import { dbKinds } from "../support/databases";
import { hostileNumber, hostileScalar } from "./support/arbitraries";
import { combine, FailureLog, judge, partialRecord, show, type Case } from "./support/cases";
import { LONE_SURROGATE, optionsBagVerdict, positiveIntegerVerdict, type Verdict } from "./support/oracles";
import { fcParams, typedOutcome } from "./support/outcome";
import { openWorld, type World } from "./support/world";

/**
 * TakeOnceSecrets with hostile values and look-alike ids: a look-alike of someone's id (case,
 * whitespace, homoglyphs, one digit off) never takes, describes, references or deletes their secret;
 * an accepted value is taken back exactly once and exactly as created; ids and values never appear in
 * an error or a log line.
 */

const PURPOSE = /^[A-Za-z0-9._:-]{1,64}$/;
const DAY = 24 * 60 * 60 * 1000;

/** Cyrillic letters that look like the Latin hex letters a, c and e. */
const CYRILLIC: Record<string, string> = { a: "\u0430", c: "\u0441", e: "\u0435" };

/** Variants of a valid id: each is either malformed (refused) or another id (nothing there) — never the id itself. */
const idVariant = fc.constantFrom(
  ["upper case", (id: string) => (/[a-f]/.test(id) ? id.toUpperCase() : `${id.slice(0, -1)}A`)] as const,
  ["trailing space", (id: string) => `${id} `] as const,
  ["leading space", (id: string) => ` ${id}`] as const,
  ["trailing newline", (id: string) => `${id}\n`] as const,
  ["trailing zero-width space", (id: string) => `${id}\u200b`] as const,
  ["one character short", (id: string) => id.slice(0, 63)] as const,
  ["one character long", (id: string) => `${id}0`] as const,
  // Never the id itself: an id without an "a" (1 in 60) once turned this variant into the victim's own id.
  ["Cyrillic look-alike", (id: string) => (/[ace]/.test(id) ? id.replace(/[ace]/, (c) => CYRILLIC[c]) : `${id}\u0430`)] as const,
  ["full-width digit", (id: string) => (/[0-9]/.test(id) ? id.replace(/[0-9]/, (d) => String.fromCharCode(d.charCodeAt(0) + 0xfee0)) : `${id}\uff10`)] as const,
  ["last character changed", (id: string) => `${id.slice(0, -1)}${id.endsWith("0") ? "1" : "0"}`] as const,
  ["0x prefix", (id: string) => `0x${id.slice(2)}`] as const,
  ["truncated with %", (id: string) => `${id.slice(0, 32)}%`] as const,
  ["quote injection", (id: string) => `${id.slice(0, 60)}' OR '1'='1`.slice(0, 64)] as const,
  ["reversed", (id: string) => {
    const reversed = id.split("").reverse().join("");
    return reversed !== id ? reversed : `${id.slice(0, -1)}${id.endsWith("0") ? "1" : "0"}`;
  }] as const,
);

function valueVerdict(v: unknown): Verdict {
  if (typeof v !== "string" || v.length === 0 || Buffer.byteLength(v, "utf8") > 32 * 1024) return "invalid";
  // A lone surrogate cannot be stored as UTF-8: the manual says such a value is refused.
  return LONE_SURROGATE.test(v) ? "invalid" : "valid";
}

function createOptionsVerdict(o: unknown): { verdict: Verdict; args: string[] } {
  const bag = optionsBagVerdict(o, ["expiresInMs", "purpose"]);
  if (o === undefined) return { verdict: "invalid", args: ["options", "expiresInMs"] };
  if (bag !== "valid") return { verdict: bag, args: ["options", "expiresInMs", "purpose", ...(typeof o === "object" && o !== null ? Object.keys(o) : [])] };
  const { expiresInMs, purpose } = o as Record<string, unknown>;
  return combine([
    { name: "expiresInMs", verdict: typeof expiresInMs === "number" && Number.isFinite(expiresInMs) && expiresInMs >= 1000 && expiresInMs <= DAY ? "valid" : "invalid" },
    { name: "purpose", verdict: purpose === undefined ? "valid" : typeof purpose === "string" && PURPOSE.test(purpose) ? "valid" : "invalid" },
  ]);
}

describe("adversarial: TakeOnceSecrets id look-alikes", () => {
  it("no variant is the id itself, whatever hex the id holds (else the victim's own id would be 'another's')", () => {
    for (const id of ["0".repeat(64), "f".repeat(64), "a".repeat(64), "0123456789abcdef".repeat(4), "bdf1".repeat(16)]) {
      fc.assert(fc.property(idVariant, ([, variant]) => variant(id) !== id), { numRuns: 200 });
    }
  });
});

for (const kind of dbKinds()) {
  describe(`adversarial: TakeOnceSecrets (${kind})`, function () {
    this.timeout(120_000);
    let w: World;
    let secrets: TakeOnceSecrets;
    let victim: { id: string; value: string };

    before(async () => {
      w = await openWorld(kind);
      secrets = new TakeOnceSecrets(w.dataSource, w.keyRing, w.clock, { logger: w.logger });
      const value = w.leaks.secret("take-once-value");
      const { id } = await secrets.create(value, { expiresInMs: DAY, purpose: "victim" });
      w.leaks.register("take-once id", id);
      victim = { id, value };
    });
    after(async () => w?.close());

    const victimIntact = async (after: string) => {
      const meta = await secrets.describe(victim.id);
      expect(meta, `after ${after}: the victim's secret is gone`).to.not.equal(undefined);
      expect(meta!.state, `after ${after}: the victim's secret changed state (reference now ${show(meta!.reference)})`).to.equal("created");
    };

    it("hostile create/take/describe/delete/attachReference/reapExpired, and look-alikes of another's id", async () => {
      const valueArb: fc.Arbitrary<{ spec: string; make: () => unknown }> = fc.oneof(
        fc.constantFrom("", "\u0000", "plain", "é\u0301\u200b", "\ud800", "x".repeat(32 * 1024), "x".repeat(32 * 1024 + 1), "€".repeat(10_923), "€".repeat(10_924), 42, null, ["a"]).map((tail) => ({
          spec: show(tail),
          make: () => (typeof tail === "string" && tail !== "" && !tail.startsWith("x") && !tail.startsWith("€") ? w.leaks.secret("take-once-value", tail) : tail),
        })),
        fc.string({ unit: "binary", maxLength: 10 }).map((tail) => ({ spec: show(tail), make: () => w.leaks.secret("take-once-value", tail) })),
      );
      const createOptions = fc.oneof(
        { weight: 1, arbitrary: hostileScalar },
        { weight: 3, arbitrary: fc.record({ expiresInMs: fc.oneof(fc.constantFrom(60_000, DAY), hostileNumber) }, { requiredKeys: ["expiresInMs"] }) },
        { weight: 3, arbitrary: partialRecord({ expiresInMs: fc.constantFrom(60_000, 999, 1000, DAY, DAY + 1), purpose: fc.oneof(fc.constantFrom("workspace-start", "a".repeat(64), "a".repeat(65), "with space", "é", "", "x\n"), hostileScalar) }) },
        { weight: 1, arbitrary: fc.constantFrom({ expiresInMs: 60_000, purpse: "typo" }, { expiresIn: 60_000 }, { expiresInMs: 60_000, ttl: 5 }) },
      );

      const caseArb: fc.Arbitrary<Case<World>> = fc.oneof(
        fc.tuple(valueArb, createOptions).map(([value, options]): Case<World> => {
          let made: unknown;
          const label = `create(${value.spec}, ${show(options)})`;
          return {
            label,
            get verdict() {
              return combine([{ name: "value", verdict: valueVerdict(made) }, { name: "options", verdict: createOptionsVerdict(options).verdict }]).verdict;
            },
            get args() {
              // Both may be bad: the library may name either.
              if (valueVerdict(made) !== "invalid") return createOptionsVerdict(options).args;
              return createOptionsVerdict(options).verdict === "invalid" ? ["value", ...createOptionsVerdict(options).args] : ["value"];
            },
            run: async () => {
              made = value.make();
              const created = await secrets.create(made as string, options as never);
              w.leaks.register("take-once id", created.id);
              return created;
            },
            check: async (created) => {
              const { id } = created as { id: string };
              const purpose = (options as { purpose?: string }).purpose;
              const taken = await typedOutcome(`take after ${label}`, w.leaks, () => secrets.take(id, { purpose }));
              expect(taken.ok && taken.value === made, `${label}: take() must return exactly the created value`).to.equal(true);
              const again = await typedOutcome(`second take after ${label}`, w.leaks, () => secrets.take(id));
              expect(again.ok && again.value === undefined, `${label}: a second take() must get nothing`).to.equal(true);
            },
          };
        }),
        fc.tuple(idVariant, fc.constantFrom("take", "describe", "delete", "deleteQuiet", "attachReference")).map(([[variantName, variant], op]): Case<World> => {
          const id = variant(victim.id);
          // Which look-alike, and whether it is the victim's id after all: a failure must say what happened.
          const label = `${op}(look-alike of another's id (${variantName}${id === victim.id ? ", EQUAL to the victim's" : ""}): ${show(id.replace(/[0-9a-f]{16,}/g, "<hex>"))})`;
          const wellFormed = /^[0-9a-f]{64}$/.test(id);
          return {
            label,
            // A well-formed other id names nothing (undefined/false/SecretNotFound); a malformed one is refused.
            verdict: wellFormed ? "either" : "invalid",
            args: ["id"],
            run: () =>
              op === "take" ? secrets.take(id)
              : op === "describe" ? secrets.describe(id)
              : op === "delete" ? secrets.delete(id)
              : op === "deleteQuiet" ? secrets.delete(id, { mustExist: false })
              : secrets.attachReference(id, "ws-attacker"),
            check: (r) => expect(r === undefined || r === false, `${label} found something under another id: ${show(r)}`).to.equal(true),
          };
        }),
        fc.oneof(hostileScalar, fc.constantFrom("ws-1", "x".repeat(255), "x".repeat(256), "a\nb", "")).map((reference): Case<World> => ({
          label: `attachReference(own id, ${show(reference)})`,
          verdict: typeof reference === "string" && reference.length > 0 && reference.length <= 255 && !/[\u0000-\u001f\u007f]/.test(reference) ? "valid" : "invalid",
          args: ["reference"],
          run: async () => {
            const { id } = await secrets.create(w.leaks.secret("take-once-value"), { expiresInMs: 60_000 });
            w.leaks.register("take-once id", id);
            return secrets.attachReference(id, reference as string);
          },
          check: (r) => expect(r, "attachReference on an existing secret").to.equal(true),
        })),
        fc.oneof(hostileScalar, partialRecord({ batchSize: hostileNumber, maxBatches: hostileNumber })).map((options): Case<World> => {
          const bag = optionsBagVerdict(options, ["batchSize", "maxBatches"]);
          const o = (typeof options === "object" && options !== null ? options : {}) as Record<string, unknown>;
          const { verdict, args } =
            bag !== "valid"
              ? { verdict: bag, args: ["options", ...Object.keys(o)] }
              : combine([
                  { name: "batchSize", verdict: positiveIntegerVerdict(o.batchSize, 10_000) },
                  { name: "maxBatches", verdict: positiveIntegerVerdict(o.maxBatches, Number.POSITIVE_INFINITY, true) },
                ]);
          return { label: `reapExpired(${show(options)})`, verdict, args, run: () => secrets.reapExpired(options as never), check: (n) => expect(n).to.be.a("number") };
        }),
        fc.oneof(hostileScalar, fc.constantFrom("workspace-start", "victim", "VICTIM", "victim ", "a".repeat(65))).map((purpose): Case<World> => ({
          label: `take(victim id, { purpose: ${show(purpose)} })`,
          verdict: purpose === undefined ? "valid" : typeof purpose === "string" && PURPOSE.test(purpose) ? "valid" : "invalid",
          args: ["purpose", "options"],
          // Never with the victim's own purpose: that would (rightly) take it.
          run: () => (purpose === "victim" || purpose === undefined ? Promise.resolve(undefined) : secrets.take(victim.id, { purpose: purpose as string })),
          check: (r) => expect(r, "a take with another purpose must leave the secret").to.equal(undefined),
        })),
      );

      const failures = new FailureLog();
      await fc.assert(
        fc.asyncProperty(caseArb, async (c) => {
          await failures.check(c.label, () => judge(c, w, w.leaks));
          await failures.check(`victim after ${c.label}`, () => victimIntact(c.label));
        }),
        fcParams(kind === "mariadb" ? 35 : 60),
      );
      await failures.check("victim take", async () => {
        expect(await secrets.take(victim.id, { purpose: "victim" }), "the victim's secret reads back exactly").to.equal(victim.value);
      });
      await failures.check("surfaces", () => w.checkSurfaces("hostile take-once secrets"));
      failures.assertNone();
    });

    it("takes back exactly the value created, for every edge value it accepts", async () => {
      const failures = new FailureLog();
      const edges = ["\ud800", "x\udc00", "\u0000", "line\nbreak", "é\u0301\u200b\ufeff", "\u{1F600}", "x".repeat(32 * 1024), "€".repeat(10_922), "\u{1F600}".repeat(8192)];
      for (const tail of edges) {
        const value = tail.length > 100 ? tail : w.leaks.secret("take-once-value", tail);
        const label = `create(${show(tail)})`;
        await failures.check(label, async () => {
          const created = await typedOutcome(label, w.leaks, () => secrets.create(value, { expiresInMs: 60_000 }));
          if (!created.ok) return; // refused with a typed error: fine
          w.leaks.register("take-once id", created.value.id);
          const taken = await typedOutcome(`take after ${label}`, w.leaks, () => secrets.take(created.value.id));
          expect(taken.ok && taken.value === value, `${label} was accepted but take() returned ${taken.ok ? show(taken.value) : taken.error.name}`).to.equal(true);
        });
      }
      failures.assertNone();
    });

    it("constructor options: a typed error for every hostile maxExpiresInMs or logger", async () => {
      const failures = new FailureLog();
      await fc.assert(
        fc.asyncProperty(fc.oneof(hostileScalar, partialRecord({ maxExpiresInMs: hostileNumber, logger: hostileScalar }), fc.constant({ maxExpiresIn: 5 })), async (options) => {
          const label = `new TakeOnceSecrets(…, ${show(options)})`;
          await failures.check(label, async () => {
            const got = await typedOutcome(label, w.leaks, () => new TakeOnceSecrets(w.dataSource, w.keyRing, w.clock, options as never));
            const o = (options ?? {}) as Record<string, unknown>;
            const max = o.maxExpiresInMs;
            const bag = optionsBagVerdict(options, ["maxExpiresInMs", "logger"]);
            const sane = bag === "valid" && (max === undefined || (typeof max === "number" && max >= 1000 && max <= 30 * DAY)) && (o.logger === undefined || o.logger === null);
            if (!sane && bag !== "either" && got.ok) expect.fail(`${label}: accepted silently`);
          });
        }),
        fcParams(20),
      );
      failures.assertNone();
    });
  });
}
