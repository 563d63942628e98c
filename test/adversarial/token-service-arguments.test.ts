import { expect } from "chai";
import fc from "fast-check";
import { Token } from "../../src/token";
import { dbKinds } from "../support/databases";
import { hostileNumber, hostileScalar, lookalikeIdPair } from "./support/arbitraries";
import { combine, FailureLog, judge, partialRecord, show, type Case } from "./support/cases";
import {
  booleanVerdict,
  lifetimeVerdict,
  maxWaitVerdict,
  oneOfVerdict,
  optionsBagVerdict,
  positiveIntegerVerdict,
  scopesShapeVerdict,
  userIdVerdict,
  type Verdict,
} from "./support/oracles";
import { fcParams } from "./support/outcome";
import { openWorld, type Victim, type World } from "./support/world";

/**
 * Every argument of the TokenService methods, one hostile value at a time (or a whole hostile options
 * bag): the call returns the right thing or throws an InvalidArgumentError naming the argument —
 * never a TypeError, never a silently ignored bad value — and the other users' tokens stay as stored.
 */

const GET_OPTION_KEYS = ["lifetimeMinutes", "scopes", "maxWaitMs", "ifHeld", "releasable"] as const;

const userIdValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileScalar,
  lookalikeIdPair(() => "id").map((p) => p.b),
  fc.constantFrom("x".repeat(128), "x".repeat(129), "\u{1F600}".repeat(64), "\u{1F600}".repeat(65), "é".repeat(128), "e\u0301".repeat(64), "a\u0000b", "a\u007fb", "\u2028x", "x\u200b"),
);

const scopesValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, [], ["REPO_READ"], ["REPO_READ", "PROJECT_READ"], ["REPO_READ", "REPO_READ"], ["repo_read"], ["REPO_WRITE"], [""], ["REPO READ"], ["REPO_READ\u0000"], "REPO_READ", null, [1], [null], { 0: "REPO_READ", length: 1 }),
  fc.constantFrom(101, 100).map((n) => Array.from({ length: n }, () => "REPO_READ")),
  fc.constantFrom(200, 201).map((n) => ["R".repeat(n)]),
  fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }),
);

/** Hostile GetTokenOptions: a non-object, a bag of hostile field values, or a bag with a typo'd or foreign key. */
const optionFields = partialRecord({
  lifetimeMinutes: hostileNumber,
  scopes: scopesValue,
  maxWaitMs: hostileNumber,
  ifHeld: fc.oneof(fc.constantFrom("fail", "break", "FAIL", "Break", " fail", "wait"), hostileScalar),
  releasable: fc.oneof(fc.boolean(), hostileScalar),
});
const validOptionFields = partialRecord({
  lifetimeMinutes: fc.constantFrom(1 / 60, 1, 5, 1440),
  scopes: fc.constantFrom([], ["REPO_READ"]),
  maxWaitMs: fc.constantFrom(0, 1000, Infinity),
  ifHeld: fc.constantFrom("fail", "break"),
});
const getOptionsValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 1, arbitrary: hostileScalar },
  { weight: 2, arbitrary: validOptionFields },
  { weight: 4, arbitrary: optionFields },
  {
    weight: 1,
    arbitrary: fc
      .tuple(validOptionFields, fc.constantFrom("lifetimeMinute", "releaseable", "scope", "maxWait", "lifetime", "constructor", "toString"))
      .map(([o, typo]) => ({ ...o, [typo]: 5 })),
  },
);

/** The verdict of a GetTokenOptions bag for a subject whose stored scopes are `stored`. */
function getOptionsVerdict(o: unknown, keys: readonly string[], stored: readonly string[]): { verdict: Verdict; args: string[] } {
  const bag = optionsBagVerdict(o, keys);
  if (typeof o !== "object" || o === null) return { verdict: bag, args: ["options"] };
  const opts = o as Record<string, unknown>;
  const scopes = scopesShapeVerdict(opts.scopes);
  // An unknown key and a bad known field may both be present: the library may name either.
  const { verdict, args } = combine([
    { name: ["options", ...unknownKeys(o, keys)].join("|"), verdict: bag },
    { name: "lifetimeMinutes", verdict: lifetimeVerdict(opts.lifetimeMinutes) },
    // Well-formed scopes the stored token lacks are refused too (InvalidArgumentError "scopes").
    { name: "scopes", verdict: scopes === "valid" && !((opts.scopes as string[] | undefined) ?? []).every((s) => stored.includes(s)) ? "invalid" : scopes },
    { name: "maxWaitMs", verdict: maxWaitVerdict(opts.maxWaitMs) },
    { name: "ifHeld", verdict: oneOfVerdict(opts.ifHeld, ["fail", "break"]) },
    { name: "releasable", verdict: booleanVerdict(opts.releasable) },
  ]);
  return { verdict, args: args.flatMap((a) => a.split("|")) };
}

function unknownKeys(o: unknown, keys: readonly string[]): string[] {
  return typeof o === "object" && o !== null ? Object.keys(o).filter((k) => !keys.includes(k)) : [];
}

for (const kind of dbKinds()) {
  describe(`adversarial: TokenService arguments (${kind})`, function () {
    this.timeout(120_000);
    let w: World;
    let subject: Victim;
    before(async () => {
      w = await openWorld(kind);
      subject = await w.storeVictim(`${w.tag()}-subject`, w.hosts[0]);
    });
    after(async () => w?.close());

    /** A returned token must be the subject's, released again if it was releasable. */
    const expectSubjectToken = async (label: string, result: unknown) => {
      expect(result, `${label}: result`).to.be.instanceOf(Token);
      const token = result as Token;
      expect(token.value, `${label}: the subject's own token`).to.equal(subject.value);
      if (token.handOut.holdId !== undefined) await w.service.releaseReservation(token);
    };

    it("getTokenForHost / getTokenForWorkspaceStart / withToken: hostile user ids, hosts, options and callbacks", async () => {
      const caseArb: fc.Arbitrary<Case<World>> = fc.oneof(
        userIdValue.map(
          (userId): Case<World> => ({
            label: `getTokenForHost(userId=${show(userId)})`,
            verdict: userIdVerdict(userId),
            args: ["userId"],
            run: (x) => x.service.getTokenForHost(userId as string, x.hosts[0]),
            check: (r) => expect(r, `userId=${show(userId)} has nothing stored`).to.equal(undefined),
          }),
        ),
        hostileScalar.map(
          (host): Case<World> => ({
            label: `getTokenForHost(host=${show(host)})`,
            verdict: "invalid",
            args: ["host"],
            run: (x) => x.service.getTokenForHost(subject.userId, host as string),
          }),
        ),
        getOptionsValue.map((options): Case<World> => {
          const { verdict, args } = getOptionsVerdict(options, GET_OPTION_KEYS, subject.scopes);
          const label = `getTokenForHost(options=${show(options)})`;
          return { label, verdict, args, run: (x) => x.service.getTokenForHost(subject.userId, x.hosts[0], options as never), check: (r) => expectSubjectToken(label, r) };
        }),
        getOptionsValue.map((options): Case<World> => {
          const keys = GET_OPTION_KEYS.filter((k) => k !== "lifetimeMinutes");
          const { verdict, args } = getOptionsVerdict(options, keys, subject.scopes);
          const label = `getTokenForWorkspaceStart(options=${show(options)})`;
          return { label, verdict, args: [...args, "lifetimeMinutes"], run: (x) => x.service.getTokenForWorkspaceStart(subject.userId, x.hosts[0], options as never), check: (r) => expectSubjectToken(label, r) };
        }),
        fc.tuple(getOptionsValue, fc.oneof(hostileScalar, fc.constant("fn"))).map(([options, use]): Case<World> => {
          const keys = GET_OPTION_KEYS.filter((k) => k !== "releasable");
          const opts = getOptionsVerdict(options, keys, subject.scopes);
          const { verdict, args } = combine([
            { name: opts.args.join("|") || "options", verdict: opts.verdict },
            // Any function is a valid `use` (the hostile scalars include one: () => 1).
            { name: "use", verdict: use === "fn" || typeof use === "function" ? "valid" : "invalid" },
          ]);
          const label = `withToken(options=${show(options)}, use=${show(use)})`;
          return {
            label,
            verdict,
            args: args.flatMap((a) => a.split("|")).concat("releasable"),
            run: (x) => x.service.withToken(subject.userId, x.hosts[0], options as never, use === "fn" ? async (t) => t?.value : (use as never)),
            check: (r) =>
              use === "fn"
                ? expect(r, `${label}: use() saw the subject's token`).to.equal(subject.value)
                : expect(r, `${label}: withToken returns what use() returned`).to.equal((use as () => unknown)()),
          };
        }),
      );
      const failures = new FailureLog();
      await fc.assert(
        fc.asyncProperty(caseArb, async (c) => {
          await failures.check(c.label, () => judge(c, w, w.leaks));
          await w.checkVictims(c.label, [subject]);
        }),
        fcParams(kind === "mariadb" ? 50 : 90),
      );
      failures.assertNone();
      await w.checkVictims("hostile hand-out arguments");
      await w.checkSurfaces("hostile hand-out arguments");
    });

    it("withToken rethrows exactly what the callback throws, and releases the hand-out", async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.constantFrom(new Error("boom"), new TypeError("x"), "a string", 42, undefined, null), fc.anything()), async (thrown) => {
          let caught: unknown = "nothing";
          try {
            await w.service.withToken(subject.userId, w.hosts[0], {}, async () => {
              throw thrown;
            });
          } catch (e) {
            caught = e;
          }
          expect(caught === thrown || (Number.isNaN(caught) && Number.isNaN(thrown)), `withToken must rethrow the callback's ${show(thrown)} unchanged`).to.equal(true);
        }),
        fcParams(10),
      );
      await w.checkVictims("withToken with a throwing callback", [subject]);
    });

    it("releaseReservation, deleteTokens and reapExpired: hostile hand-outs, hosts and batch options", async () => {
      const realRelease = await w.service.getTokenForHost(subject.userId, w.hosts[0], { releasable: true });
      const caseArb: fc.Arbitrary<Case<World>> = fc.oneof(
        fc
          .oneof(
            hostileScalar,
            partialRecord({
              userId: fc.oneof(fc.constant(subject.userId), hostileScalar),
              host: fc.oneof(fc.constant(w.hosts[0]), hostileScalar),
              entryId: fc.oneof(fc.constant(realRelease!.handOut.entryId), fc.uuid(), hostileScalar),
              version: fc.oneof(fc.constant(realRelease!.handOut.version), hostileNumber),
              holdId: fc.oneof(fc.uuid(), hostileScalar, fc.constantFrom("' OR '1'='1", "%", "*", ["a"], { id: 1 })),
            }),
          )
          .map((ref): Case<World> => {
            const r = ref as Record<string, unknown> | null;
            const wellFormed = typeof r === "object" && r !== null && typeof r.entryId === "string" && typeof r.holdId === "string";
            const label = `releaseReservation(${show(ref)})`;
            return {
              label,
              // A forged or malformed hand-out: false (nothing of this caller's to release) or an InvalidArgumentError.
              verdict: wellFormed ? "either" : "invalid",
              args: ["handOut"],
              run: (x) => x.service.releaseReservation(ref as never),
              check: (result) => expect(result, `${label} released a hold nobody gave it`).to.equal(false),
            };
          }),
        fc.tuple(userIdValue, fc.oneof(fc.constant(undefined), hostileScalar)).map(
          ([userId, host]): Case<World> => {
            const { verdict, args } = combine([
              { name: "userId", verdict: userIdVerdict(userId) },
              { name: "host", verdict: host === undefined ? "valid" : "invalid" },
            ]);
            return {
              label: `deleteTokens(${show(userId)}, ${show(host)})`,
              verdict,
              args,
              run: (x) => x.service.deleteTokens(userId as string, host as string),
              check: (n) => expect(n, "deleted count for a user with nothing stored").to.equal(0),
            };
          },
        ),
        fc.oneof(hostileScalar, partialRecord({ batchSize: hostileNumber, maxBatches: hostileNumber })).map((options): Case<World> => {
          const bag = optionsBagVerdict(options, ["batchSize", "maxBatches"]);
          const o = (typeof options === "object" && options !== null ? options : {}) as Record<string, unknown>;
          const { verdict, args } =
            bag !== "valid"
              ? { verdict: bag, args: ["options", ...unknownKeys(options, ["batchSize", "maxBatches"])] }
              : combine([
                  { name: "batchSize", verdict: positiveIntegerVerdict(o.batchSize, 100_000) },
                  { name: "maxBatches", verdict: positiveIntegerVerdict(o.maxBatches, Number.POSITIVE_INFINITY, true) },
                ]);
          return {
            label: `reapExpired(${show(options)})`,
            verdict,
            args,
            run: (x) => x.service.reapExpired(options as never),
            check: (n) => expect(n, "reaped count").to.be.a("number").and.not.be.NaN,
          };
        }),
      );
      const failures = new FailureLog();
      await fc.assert(
        fc.asyncProperty(caseArb, async (c) => {
          await failures.check(c.label, () => judge(c, w, w.leaks));
          await w.checkVictims(c.label, [subject]);
        }),
        fcParams(kind === "mariadb" ? 35 : 70),
      );
      failures.assertNone();
      expect(await w.service.releaseReservation(realRelease!), "the real hand-out is still releasable after the forgeries").to.equal(true);
      await w.checkVictims("hostile release/delete/reap");
      await w.checkSurfaces("hostile release/delete/reap");
    });
  });
}
