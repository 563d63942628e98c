import { expect } from "chai";
import fc from "fast-check";
import { randomBytes } from "node:crypto";
import { Registry } from "prom-client";
import type { DataSource } from "typeorm";
import { createTokenService } from "../../src/create-token-service";
import type { ConfigurationError } from "../../src/errors";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { GitLabProvider } from "../../src/providers/gitlab-provider";
import type { TokenServiceOptions } from "../../src/token-service-options";
import { closeDataSource, dbKinds, openTestDataSource, SERVER_URL } from "../support/databases";
import { hostileNumber, hostileScalar } from "./support/arbitraries";
import { FailureLog, show } from "./support/cases";
import { LeakDetector } from "./support/leak-detector";
import type { Verdict } from "./support/oracles";
import { fcParams, typedOutcome } from "./support/outcome";

/**
 * createTokenService with one hostile option at a time: a ConfigurationError (naming the option when
 * it says which) or a working service — never a TypeError, a prom-client or driver error, a
 * silently ignored typo, and never a key, client secret or password in the error.
 */

interface Mutation {
  label: string;
  /** The option an error should name (a prefix of ConfigurationError.option). */
  option: string;
  verdict: Verdict;
  apply(o: Record<string, unknown>): void;
}

const numberOption = (path: string, good: number, sane: (n: number) => boolean): fc.Arbitrary<Mutation> =>
  fc.oneof(fc.constant<unknown>(good), hostileNumber).map((v) => ({
    label: `${path} = ${show(v)}`,
    option: path,
    verdict: v === good ? "valid" : typeof v !== "number" || Number.isNaN(v) || v < 0 ? "invalid" : sane(v) ? "valid" : "either",
    apply: (o) => setPath(o, path, v),
  }));

function setPath(o: Record<string, unknown>, path: string, v: unknown): void {
  const [head, tail] = path.split(".");
  if (tail === undefined) o[head] = v;
  else o[head] = { ...(o[head] as object), [tail]: v };
}

function validKey(): string {
  return randomBytes(32).toString("base64");
}

describe("adversarial: createTokenService options", function () {
  this.timeout(120_000);
  let dataSource: DataSource;
  const leaks = new LeakDetector();
  const clientSecret = leaks.secret("client-secret");
  const provider = () => new BitbucketServerProvider({ host: "bitbucket.example.com", clientId: "c", clientSecret });

  before(async () => {
    dataSource = await openTestDataSource("sqljs");
  });
  after(async () => closeDataSource(dataSource));

  /** A working configuration; each mutation changes one thing. */
  const base = (key: string): Record<string, unknown> => ({ dataSource, providers: [provider()], encryptionKeys: [{ id: "k1", key }] });

  it("refuses each hostile option with a ConfigurationError naming it, and starts with each sane one", async () => {
    const keyMutations: Mutation[] = (
      [
        ["no keys", "invalid", () => []],
        ["keys = null", "invalid", () => null],
        ["keys = a string", "invalid", (k) => k],
        ["key + 'garbage' after the padding", "invalid", (k) => [{ id: "k1", key: `${k}garbage` }]],
        ["key + '!!'", "invalid", (k) => [{ id: "k1", key: `${k}!!` }]],
        ["key with '*' inside", "invalid", (k) => [{ id: "k1", key: `${k.slice(0, 10)}*${k.slice(10)}` }]],
        ["key of 31 bytes", "invalid", () => [{ id: "k1", key: randomBytes(31).toString("base64") }]],
        ["key of 33 bytes", "invalid", () => [{ id: "k1", key: randomBytes(33).toString("base64") }]],
        ["key as hex (64 characters)", "invalid", () => [{ id: "k1", key: randomBytes(32).toString("hex") }]],
        ["key as a Buffer", "invalid", () => [{ id: "k1", key: randomBytes(32) }]],
        ["key without padding", "either", (k) => [{ id: "k1", key: k.replace(/=+$/, "") }]],
        ["key in base64url", "either", (k) => [{ id: "k1", key: k.replace(/\+/g, "-").replace(/\//g, "_") }]],
        ["key with a trailing newline", "either", (k) => [{ id: "k1", key: `${k}\n` }]],
        ["key id with a colon", "invalid", (k) => [{ id: "k:1", key: k }]],
        ["key id empty", "invalid", (k) => [{ id: "", key: k }]],
        ["key id null", "invalid", (k) => [{ id: null, key: k }]],
        ["duplicate key ids", "invalid", (k) => [{ id: "k1", key: k }, { id: "k1", key: validKey() }]],
        ["two primaries", "invalid", (k) => [{ id: "k1", key: k, primary: true }, { id: "k2", key: validKey(), primary: true }]],
        ["primary: 'yes'", "invalid", (k) => [{ id: "k1", key: k, primary: "yes" }]],
        ["a typo'd key field (primery)", "invalid", (k) => [{ id: "k1", key: k, primery: true }]],
        ["keys = [null]", "invalid", () => [null]],
        ["two good keys", "valid", (k) => [{ id: "k1", key: k }, { id: "k2", key: validKey(), primary: true }]],
      ] as Array<[string, Verdict, (key: string) => unknown]>
    ).map(([label, verdict, make]) => ({
        label: `encryptionKeys: ${label}`,
        option: "encryptionKeys",
        verdict,
        apply: (o: Record<string, unknown>) => {
          o.encryptionKeys = make(((o.encryptionKeys as Array<{ key: string }>)[0]).key);
        },
      }));

    const providerMutations: Mutation[] = (
      [
        ["providers = []", "invalid", () => []],
        ["providers = null", "invalid", () => null],
        ["providers = [null]", "invalid", () => [null]],
        ["providers = [{}]", "invalid", () => [{}]],
        ["providers = [{ host: 'x' }] (no refresh())", "invalid", () => [{ host: "x.example.com" }]],
        ["two providers for one host", "invalid", () => [provider(), provider()]],
        ["two providers, hosts differing in case and a trailing dot", "invalid", () => [provider(), new GitLabProvider({ host: "Bitbucket.Example.com.", clientId: "c", clientSecret })]],
        ["providers = a provider (not a list)", "invalid", () => provider()],
      ] as Array<[string, Verdict, () => unknown]>
    ).map(([label, verdict, make]) => ({ label, option: "providers", verdict, apply: (o: Record<string, unknown>) => (o.providers = make()) }));

    const prefixMutations: fc.Arbitrary<Mutation> = fc
      .oneof(fc.constantFrom<unknown>("gitpod_", "", "a:b_", "bad-prefix", "1abc_", "with space_", "é_", "x\n", 5, null, {}, []), fc.string({ maxLength: 6 }))
      .map((p) => ({
        label: `metricsPrefix = ${show(p)}`,
        option: "metricsPrefix",
        verdict: typeof p === "string" && /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(p) ? "valid" : "invalid",
        apply: (o: Record<string, unknown>) => (o.metricsPrefix = p),
      }));

    const interfaceMutations: fc.Arbitrary<Mutation> = fc
      .tuple(fc.constantFrom("flags", "logger", "clock", "metricsRegistry", "dataSource"), fc.oneof(hostileScalar.filter((v) => v !== undefined), fc.constant({ getFlags: 1, info: 1, now: 1 })))
      .map(([option, v]) => ({ label: `${option} = ${show(v)}`, option, verdict: "invalid" as const, apply: (o: Record<string, unknown>) => (o[option] = v) }));

    const unknownKey: fc.Arbitrary<Mutation> = fc.constantFrom("encryptionKey", "provider", "metricPrefix", "retries", "leaseMs", "poolsize", "databaseURL").map((k) => ({
      label: `unknown option ${k}`,
      option: k,
      verdict: "invalid" as const,
      apply: (o: Record<string, unknown>) => (o[k] = 1),
    }));

    const wholeBags: fc.Arbitrary<Mutation> = fc
      .tuple(fc.constantFrom("retry", "lease"), fc.oneof(hostileScalar.filter((v) => v !== undefined), fc.constant({ maxAttempt: 3 })))
      .map(([option, v]) => ({ label: `${option} = ${show(v)}`, option, verdict: (v === null ? "either" : typeof v === "object" && !Array.isArray(v) && Object.keys(v as object).length === 0 ? "valid" : "invalid") as Verdict, apply: (o: Record<string, unknown>) => (o[option] = v) }));

    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      numberOption("defaultLifetimeMinutes", 5, (n) => n >= 1 / 60 && n <= 1440),
      numberOption("drainPollMs", 1000, (n) => n >= 1 && n <= 60_000),
      numberOption("poolSize", 5, (n) => Number.isInteger(n) && n >= 1 && n <= 100),
      numberOption("decryptedTokenCacheSize", 100, (n) => Number.isInteger(n) && n >= 0 && n <= 1_000_000),
      numberOption("retry.maxAttempts", 3, (n) => Number.isInteger(n) && n >= 1 && n <= 5),
      numberOption("retry.baseDelayMs", 200, (n) => n <= 1000),
      numberOption("retry.maxDelayMs", 5000, (n) => n <= 5000),
      numberOption("retry.timeoutMs", 10_000, (n) => n >= 1 && n <= 10_000),
      numberOption("lease.leaseMs", 60_000, (n) => n >= 60_000 && n <= 3_600_000),
      numberOption("lease.waitForOtherMs", 30_000, (n) => n <= 60_000),
      fc.constantFrom(...keyMutations, ...providerMutations),
      prefixMutations,
      interfaceMutations,
      unknownKey,
      wholeBags,
    );

    const failures = new FailureLog();
    const judgeMutation = async (m: Mutation) => {
        const key = validKey();
        leaks.register("encryption key", key);
        const options = base(key);
        m.apply(options);
        for (const k of (options.encryptionKeys as Array<{ key?: unknown }> | undefined) ?? []) if (typeof k?.key === "string") leaks.register("encryption key", k.key);
        await failures.check(`createTokenService(${m.label})`, async () => {
          const got = await typedOutcome(`createTokenService(${m.label})`, leaks, () => createTokenService(options as unknown as TokenServiceOptions));
          // (The started service's own surfaces are checked once, in secrets-never-shown: inspecting one is ~1 MB of text.)
          if (got.ok) await got.value.close();
          if (m.verdict === "valid" && !got.ok) expect.fail(`createTokenService(${m.label}): a sane option was refused: ${got.error.message}`);
          if (m.verdict === "invalid") {
            if (got.ok) expect.fail(`createTokenService(${m.label}): accepted silently; expected a ConfigurationError naming ${m.option}`);
            expect(got.error.code, `createTokenService(${m.label}): ${got.error.message}`).to.equal("CONFIGURATION");
            const named = (got.error as ConfigurationError).option;
            if (named !== undefined) expect(named.startsWith(m.option) || m.option.startsWith(named), `createTokenService(${m.label}): the error names ${named}`).to.equal(true);
          }
        });
    };
    // Every hand-written case once, then generated ones.
    for (const m of [...keyMutations, ...providerMutations]) await judgeMutation(m);
    await fc.assert(fc.asyncProperty(mutation, judgeMutation), fcParams(60));
    failures.assertNone();
  });

  it("refuses to register its metrics twice on one registry with a typed error, not prom-client's", async () => {
    const registry = new Registry();
    const options = { ...base(validKey()), metricsRegistry: registry } as unknown as TokenServiceOptions;
    const first = await createTokenService(options);
    const second = await typedOutcome("createTokenService(the same registry again)", leaks, () => createTokenService(options));
    if (!second.ok) expect(second.error.code).to.equal("CONFIGURATION");
    await first.close();
  });

  if (dbKinds().includes("mariadb")) {
    it("start-up failures against bad database URLs are typed and never show the password", async () => {
      const server = new URL(SERVER_URL);
      const failures = new FailureLog();
      const urls = [
        (pw: string) => `mysql://root:${pw}@127.0.0.1:1/db`, // refused
        (pw: string) => `mysql://root:${pw}@${server.host}/no_such_db`, // wrong password
        (pw: string) => `mariadb://nobody:${encodeURIComponent(pw)}@${server.host}/x`,
        (pw: string) => `mysql://root:${pw}@[::1]:1/db`,
        (pw: string) => `mysql://root:${pw}@127.0.0.1:99999/db`, // port out of range
        (pw: string) => `mysql://root:${pw}@/db`,
        (pw: string) => `postgres://root:${pw}@127.0.0.1:5432/db`, // unsupported
        (pw: string) => `mysql://root:${pw}@127.0.0.1:1/db?connectTimeout=abc`,
        (pw: string) => `${pw}`,
      ];
      for (const url of urls) {
        const password = leaks.secret("db-password", "%40x");
        const databaseUrl = url(password);
        await failures.check(`createTokenService(databaseUrl=${databaseUrl.replace(password, "<password>")})`, async () => {
          const got = await typedOutcome(`createTokenService(databaseUrl with a password)`, leaks, () =>
            createTokenService({ databaseUrl, providers: [provider()], encryptionKeys: [{ id: "k1", key: validKey() }] }),
          );
          if (got.ok) {
            leaks.assertObjectClean("a service started from a URL with a password", got.value);
            await got.value.close();
          }
        });
      }
      failures.assertNone();
    });
  }
});
