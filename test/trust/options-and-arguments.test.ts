import { randomBytes } from "node:crypto";
import { expect } from "chai";
import { createTokenService } from "../../src/create-token-service";
import { KeyRing } from "../../src/crypto/key-ring";
import { ConfigurationError, InvalidArgumentError, TokenServiceError } from "../../src/errors";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { NamedSecret } from "../../src/secrets/named-secret";
import { NamedSecretsBundle } from "../../src/secrets/named-secrets-bundle";
import { renderKubernetesSecret } from "../../src/secrets/kubernetes/render-kubernetes-secret";
import { TakeOnceSecrets } from "../../src/secrets/take-once/take-once-secrets";
import { providerForFakeScm } from "../../src/testing/provider-for-fake-scm";
import type { TokenService } from "../../src/token-service";
import type { TokenServiceOptions } from "../../src/token-service-options";
import { dbKinds, rawQuery } from "../support/databases";
import { serviceOn, uniqueUser } from "../support/service-fixture";

/*
 * Bad input, table-driven: every public entry point and option, each with the values users get
 * wrong. Each row asserts the exact error class and the option/argument it names, and that nothing
 * stored changed (the reference user's rows and holds are byte-identical, and its token is still
 * handed out afterwards).
 */

type Fixture = Awaited<ReturnType<typeof serviceOn>>;

/** A start-up option row: the options patch and the `option` the ConfigurationError must name. */
type OptionRow = [label: string, patch: (base: TokenServiceOptions, t: Fixture) => unknown, option: string];
/** A call row: the call and the `argument` the InvalidArgumentError must name. */
type ArgumentRow = [label: string, call: (c: CallContext) => unknown, argument: string];

interface CallContext {
  service: TokenService;
  user: string;
  host: string;
  secrets: TakeOnceSecrets;
  bundle: NamedSecretsBundle;
}

const key = () => randomBytes(32).toString("base64");
const K = randomBytes(32);

const OPTION_ROWS: OptionRow[] = [
  ["options: null", () => null, "options"],
  ["options: a string", () => "providers", "options"],
  ["unknown key metricPrefix (typo)", (b) => ({ ...b, metricPrefix: "gitpod_" }), "metricPrefix"],
  ["unknown key defaultLifetime (typo)", (b) => ({ ...b, defaultLifetime: 5 }), "defaultLifetime"],
  ["providers: []", (b) => ({ ...b, providers: [] }), "providers"],
  ["providers: a string", (b) => ({ ...b, providers: "bitbucket.example.com" }), "providers"],
  ["providers: [null]", (b) => ({ ...b, providers: [null] }), "providers[0]"],
  ["providers: [provider, {}]", (b) => ({ ...b, providers: [b.providers[0], {}] }), "providers[1]"],
  ["providers: the same host twice", (b) => ({ ...b, providers: [b.providers[0], b.providers[0]] }), "providers[1]"],
  [
    "providers: the same host with a trailing dot and other case",
    (b) => ({ ...b, providers: [b.providers[0], new BitbucketServerProvider({ host: `${b.providers[0].host.toUpperCase()}.`, clientId: "c", clientSecret: "s" })] }),
    "providers[1]",
  ],
  ["providers: a custom provider whose host is not canonical", (b) => ({ ...b, providers: [{ host: "Other.Example.com.", requiresOpportunisticRefresh: false, refresh: async () => ({ accessToken: "x" }) }] }), "providers[0].host"],
  ["encryptionKeys: []", (b) => ({ ...b, encryptionKeys: [] }), "encryptionKeys"],
  ["encryptionKeys: [null]", (b) => ({ ...b, encryptionKeys: [null] }), "encryptionKeys[0].id"],
  ["encryption key with text appended", (b) => ({ ...b, encryptionKeys: [{ id: "k", key: `${K.toString("base64")}oops` }] }), "encryptionKeys[0].key"],
  ["encryption key with a trailing newline", (b) => ({ ...b, encryptionKeys: [{ id: "k", key: `${K.toString("base64")}\n` }] }), "encryptionKeys[0].key"],
  ["encryption key with a space inside", (b) => ({ ...b, encryptionKeys: [{ id: "k", key: `${K.toString("base64").slice(0, 10)} ${K.toString("base64").slice(10)}` }] }), "encryptionKeys[0].key"],
  ["encryption key of 16 bytes", (b) => ({ ...b, encryptionKeys: [{ id: "k", key: randomBytes(16).toString("base64") }] }), "encryptionKeys[0].key"],
  ["encryption key: a number", (b) => ({ ...b, encryptionKeys: [{ id: "k", key: 42 }] }), "encryptionKeys[0].key"],
  ["encryption key primary: 'yes'", (b) => ({ ...b, encryptionKeys: [{ id: "k", key: key(), primary: "yes" }] }), "encryptionKeys[0].primary"],
  ["encryption key field typo primery", (b) => ({ ...b, encryptionKeys: [{ id: "k", key: key(), primery: true }] }), "encryptionKeys[0].primery"],
  ["dataSource: '5'", (b) => ({ ...b, dataSource: "5" }), "dataSource"],
  ["two primary keys", (b) => ({ ...b, encryptionKeys: [{ id: "a", key: key(), primary: true }, { id: "b", key: key(), primary: true }] }), "encryptionKeys"],
  ["retry: null", (b) => ({ ...b, retry: null }), "retry"],
  ["retry: a number", (b) => ({ ...b, retry: 3 }), "retry"],
  ["retry: unknown key maxAttempt", (b) => ({ ...b, retry: { maxAttempt: 3 } }), "retry.maxAttempt"],
  ["retry: an empty key", (b) => ({ ...b, retry: { "": 3 } }), 'retry[""]'],
  ...[Number.NaN, 0, -1, 1.5, "3", Number.POSITIVE_INFINITY, 21].map((v): OptionRow => [`retry.maxAttempts: ${String(v)}`, (b) => ({ ...b, retry: { maxAttempts: v } }), "retry.maxAttempts"]),
  ...[Number.NaN, -1, "200", 60_001].map((v): OptionRow => [`retry.baseDelayMs: ${String(v)}`, (b) => ({ ...b, retry: { baseDelayMs: v } }), "retry.baseDelayMs"]),
  ...[Number.NaN, -5, "x", Number.POSITIVE_INFINITY].map((v): OptionRow => [`retry.maxDelayMs: ${String(v)}`, (b) => ({ ...b, retry: { maxDelayMs: v } }), "retry.maxDelayMs"]),
  ...[Number.NaN, 0, -1, "10000", Number.POSITIVE_INFINITY].map((v): OptionRow => [`retry.timeoutMs: ${String(v)}`, (b) => ({ ...b, retry: { timeoutMs: v } }), "retry.timeoutMs"]),
  ["lease: null", (b) => ({ ...b, lease: null }), "lease"],
  ["lease: unknown key leaseMS", (b) => ({ ...b, lease: { leaseMS: 60_000 } }), "lease.leaseMS"],
  ...[Number.NaN, -1, 0, "60000", Number.POSITIVE_INFINITY].map((v): OptionRow => [`lease.leaseMs: ${String(v)}`, (b) => ({ ...b, lease: { leaseMs: v } }), "lease.leaseMs"]),
  ["lease.leaseMs shorter than the retry budget", (b) => ({ ...b, lease: { leaseMs: 5_000 } }), "lease.leaseMs"],
  ...[Number.NaN, -1, "30000"].map((v): OptionRow => [`lease.waitForOtherMs: ${String(v)}`, (b) => ({ ...b, lease: { waitForOtherMs: v } }), "lease.waitForOtherMs"]),
  ...[-5, "x", Number.NaN, 0, Number.POSITIVE_INFINITY].map((v): OptionRow => [`drainPollMs: ${String(v)}`, (b) => ({ ...b, drainPollMs: v }), "drainPollMs"]),
  ...[-1, 0, 1.5, "10", Number.NaN].map((v): OptionRow => [`poolSize: ${String(v)}`, (b) => ({ ...b, poolSize: v }), "poolSize"]),
  ...[-1, 0, Number.NaN, "5", 1441, Number.POSITIVE_INFINITY].map((v): OptionRow => [`defaultLifetimeMinutes: ${String(v)}`, (b) => ({ ...b, defaultLifetimeMinutes: v }), "defaultLifetimeMinutes"]),
  ...[-1, Number.NaN, "30000"].map((v): OptionRow => [`defaultMaxWaitMs: ${String(v)}`, (b) => ({ ...b, defaultMaxWaitMs: v }), "defaultMaxWaitMs"]),
  ...["my-prefix", "1abc_", "a b", 5].map((v): OptionRow => [`metricsPrefix: ${JSON.stringify(v)}`, (b) => ({ ...b, metricsPrefix: v }), "metricsPrefix"]),
  ["logger: {}", (b) => ({ ...b, logger: {} }), "logger"],
  ["clock: {}", (b) => ({ ...b, clock: {} }), "clock"],
  ["flags: {} (not a FeatureFlags)", (b) => ({ ...b, flags: {} }), "flags"],
  ["metricsRegistry: {}", (b) => ({ ...b, metricsRegistry: {} }), "metricsRegistry"],
  ["databaseUrl: 5", (b) => ({ ...b, dataSource: undefined, databaseUrl: 5 }), "databaseUrl"],
];

/** Other constructors that take configuration. */
const CONSTRUCTOR_ROWS: Array<[label: string, make: () => unknown, option: string]> = [
  ["StaticFeatureFlags: unknown flag key", () => new StaticFeatureFlags({ opportunistic_token_refres: true } as never), "flags.opportunistic_token_refres"],
  ["StaticFeatureFlags: old FLAG_NAMES key horizon", () => new StaticFeatureFlags({ horizon: 5 } as never), "flags.horizon"],
  ["StaticFeatureFlags: a flag under both spellings, different values", () => new StaticFeatureFlags({ drain: true, token_refresh_drain: false }), "flags.token_refresh_drain"],
  ["StaticFeatureFlags: null", () => new StaticFeatureFlags(null as never), "flags"],
  ["StaticFeatureFlags.set: unknown key", () => new StaticFeatureFlags().set({ opportunisticRefres: true } as never), "flags.opportunisticRefres"],
  ["BitbucketServerProvider: baseUrl ftp://", () => new BitbucketServerProvider({ host: "b.example.com", clientId: "c", clientSecret: "s", baseUrl: "ftp://b.example.com" }), "baseUrl"],
  ["BitbucketServerProvider: host 'bad host!'", () => new BitbucketServerProvider({ host: "bad host!", clientId: "c", clientSecret: "s" }), "host"],
  ["BitbucketServerProvider: host '.example.com.'", () => new BitbucketServerProvider({ host: ".example.com.", clientId: "c", clientSecret: "s" }), "host"],
  ["KeyRing: base64url key with text appended", () => new KeyRing([{ id: "k", key: `${K.toString("base64url")}x` }]), "encryptionKeys[0].key"],
];

const ARGUMENT_ROWS: ArgumentRow[] = [
  // getTokenForHost
  ["getTokenForHost(u, h, null)", (c) => c.service.getTokenForHost(c.user, c.host, null as never), "options"],
  ["getTokenForHost(u, h, 'x')", (c) => c.service.getTokenForHost(c.user, c.host, "x" as never), "options"],
  ["getTokenForHost: unknown option lifetimeMinute", (c) => c.service.getTokenForHost(c.user, c.host, { lifetimeMinute: 5 } as never), "lifetimeMinute"],
  ...[Number.NaN, -1, 0, "5", 1441, Number.POSITIVE_INFINITY].map((v): ArgumentRow => [`getTokenForHost lifetimeMinutes: ${String(v)}`, (c) => c.service.getTokenForHost(c.user, c.host, { lifetimeMinutes: v as never }), "lifetimeMinutes"]),
  ...[Number.NaN, -1, "x"].map((v): ArgumentRow => [`getTokenForHost maxWaitMs: ${String(v)}`, (c) => c.service.getTokenForHost(c.user, c.host, { maxWaitMs: v as never }), "maxWaitMs"]),
  ["getTokenForHost ifHeld: 'maybe'", (c) => c.service.getTokenForHost(c.user, c.host, { ifHeld: "maybe" as never }), "ifHeld"],
  ["getTokenForHost releasable: 'yes'", (c) => c.service.getTokenForHost(c.user, c.host, { releasable: "yes" as never }), "releasable"],
  ["getTokenForHost scopes: 'repo'", (c) => c.service.getTokenForHost(c.user, c.host, { scopes: "repo" as never }), "scopes"],
  ...["", null, " user", 5].map((v): ArgumentRow => [`getTokenForHost userId: ${JSON.stringify(v)}`, (c) => c.service.getTokenForHost(v as never, c.host), "userId"]),
  ...["unknown.example.com", null, ""].map((v): ArgumentRow => [`getTokenForHost host: ${JSON.stringify(v)}`, (c) => c.service.getTokenForHost(c.user, v as never), "host"]),
  // getTokenForWorkspaceStart
  ["getTokenForWorkspaceStart(u, h, null)", (c) => c.service.getTokenForWorkspaceStart(c.user, c.host, null as never), "options"],
  ["getTokenForWorkspaceStart: lifetimeMinutes (the flag's to set)", (c) => c.service.getTokenForWorkspaceStart(c.user, c.host, { lifetimeMinutes: 30 } as never), "lifetimeMinutes"],
  ["getTokenForWorkspaceStart maxWaitMs: NaN", (c) => c.service.getTokenForWorkspaceStart(c.user, c.host, { maxWaitMs: Number.NaN }), "maxWaitMs"],
  // withToken: checked before anything is reserved
  ["withToken: use is not a function (null)", (c) => c.service.withToken(c.user, c.host, {}, null as never), "use"],
  ["withToken: use is a string", (c) => c.service.withToken(c.user, c.host, {}, "clone" as never), "use"],
  ["withToken: options null", (c) => c.service.withToken(c.user, c.host, null as never, async () => 1), "options"],
  ["withToken: releasable (always true here)", (c) => c.service.withToken(c.user, c.host, { releasable: false } as never, async () => 1), "releasable"],
  ["withToken lifetimeMinutes: -1", (c) => c.service.withToken(c.user, c.host, { lifetimeMinutes: -1 }, async () => 1), "lifetimeMinutes"],
  // releaseReservation
  ["releaseReservation(null)", (c) => c.service.releaseReservation(null as never), "handOut"],
  ["releaseReservation({})", (c) => c.service.releaseReservation({} as never), "handOut"],
  ["releaseReservation('token')", (c) => c.service.releaseReservation("token" as never), "handOut"],
  ["releaseReservation: holdId a number", (c) => c.service.releaseReservation({ userId: c.user, host: c.host, entryId: "00000000-0000-4000-8000-000000000000", version: 1, holdId: 42 } as never), "handOut"],
  ["releaseReservation: holdId an object", (c) => c.service.releaseReservation({ userId: c.user, host: c.host, entryId: "00000000-0000-4000-8000-000000000000", version: 1, holdId: { id: 1 } } as never), "handOut"],
  ["releaseReservation: holdId SQL text", (c) => c.service.releaseReservation({ userId: c.user, host: c.host, entryId: "00000000-0000-4000-8000-000000000000", version: 1, holdId: "' OR '1'='1" }), "handOut"],
  ["releaseReservation: host not configured", (c) => c.service.releaseReservation({ userId: c.user, host: "evil.example.com", entryId: "00000000-0000-4000-8000-000000000000", version: 1, holdId: "00000000-0000-4000-8000-000000000001" }), "handOut"],
  ["getTokenForHost host with a BOM", (c) => c.service.getTokenForHost(c.user, `\ufeff${c.host}`), "host"],
  ["getTokenForHost host with a no-break space", (c) => c.service.getTokenForHost(c.user, `${c.host}\u00a0`), "host"],
  // reapExpired
  ["reapExpired(null)", (c) => c.service.reapExpired(null as never), "options"],
  ["reapExpired: unknown option maxBatch", (c) => c.service.reapExpired({ maxBatch: 1 } as never), "maxBatch"],
  ["reapExpired: an empty key", (c) => c.service.reapExpired({ "": 1 } as never), 'options[""]'],
  ["reapExpired: a key with spaces", (c) => c.service.reapExpired({ "max batches": 1 } as never), 'options["max batches"]'],
  ...[-1, "abc", Number.NaN, 0, 1.5].map((v): ArgumentRow => [`reapExpired maxBatches: ${String(v)}`, (c) => c.service.reapExpired({ maxBatches: v as never }), "maxBatches"]),
  ...[0, Number.NaN, "x", 100_001, Number.POSITIVE_INFINITY].map((v): ArgumentRow => [`reapExpired batchSize: ${String(v)}`, (c) => c.service.reapExpired({ batchSize: v as never }), "batchSize"]),
  // storeToken / deleteTokens (must not touch the stored token)
  ["storeToken(u, h, null)", (c) => c.service.storeToken(c.user, c.host, null as never), "token"],
  ["storeToken value ''", (c) => c.service.storeToken(c.user, c.host, { value: "" }), "token.value"],
  // A misspelt key would otherwise store the token without what it carried (here: the refresh token).
  ["storeToken: a misspelt key (refreshTokn)", (c) => c.service.storeToken(c.user, c.host, { value: "v", refreshTokn: "r" } as never), "token.refreshTokn"],
  ["storeToken: an OAuth response's spelling (refresh_token)", (c) => c.service.storeToken(c.user, c.host, { value: "v", refresh_token: "r", expires_in: 3600 } as never), "token.refresh_token"],
  ["storeToken expiryDate 'soon'", (c) => c.service.storeToken(c.user, c.host, { value: "v", expiryDate: "soon" }), "token.expiryDate"],
  ["storeToken scopes: a NUL inside one", (c) => c.service.storeToken(c.user, c.host, { value: "v", scopes: ["repo\u0000admin"] }), "token.scopes"],
  ["storeToken scopes: a lone surrogate", (c) => c.service.storeToken(c.user, c.host, { value: "v", scopes: ["repo\ud800"] }), "token.scopes"],
  ["getTokenForHost scopes: a control character", (c) => c.service.getTokenForHost(c.user, c.host, { scopes: ["repo\u0007"] }), "scopes"],
  ["deleteTokens(null)", (c) => c.service.deleteTokens(null as never), "userId"],
  ["deleteTokens(u, 'nope.example.com')", (c) => c.service.deleteTokens(c.user, "nope.example.com"), "host"],
  // TakeOnceSecrets.reapExpired
  ["TakeOnceSecrets.reapExpired(null)", (c) => c.secrets.reapExpired(null as never), "options"],
  ...[-1, "abc", Number.NaN, 0].map((v): ArgumentRow => [`TakeOnceSecrets.reapExpired maxBatches: ${String(v)}`, (c) => c.secrets.reapExpired({ maxBatches: v as never }), "maxBatches"]),
  ["TakeOnceSecrets.reapExpired batchSize: 10001", (c) => c.secrets.reapExpired({ batchSize: 10_001 }), "batchSize"],
  // renderKubernetesSecret
  ["renderKubernetesSecret(null, …)", () => renderKubernetesSecret(null as never, { name: "ws-secrets", namespace: "workspaces" }), "bundle"],
  ["renderKubernetesSecret([…], …) (a plain array)", (c) => renderKubernetesSecret([...c.bundle] as never, { name: "ws-secrets", namespace: "workspaces" }), "bundle"],
  ["renderKubernetesSecret(bundle, null)", (c) => renderKubernetesSecret(c.bundle, null as never), "options"],
];

async function settle(run: () => unknown): Promise<unknown> {
  try {
    await run();
    return undefined;
  } catch (e) {
    return e;
  }
}

for (const kind of dbKinds()) {
  describe(`bad options and arguments on ${kind}: typed errors naming the culprit, nothing stored changes`, function () {
    this.timeout(120_000);
    let t: Fixture;
    let user: string;
    let stored: string;
    let base: TokenServiceOptions;
    let secrets: TakeOnceSecrets;
    let secretId: string;

    /** The reference user's token rows and holds, and the reference secret, as stored. */
    const snapshot = async () =>
      JSON.stringify({
        rows: await t.rawRows(user),
        holds: await rawQuery(t.dataSource, "SELECT COUNT(*) AS n FROM scm_token_hold"),
        secrets: await rawQuery(t.dataSource, "SELECT COUNT(*) AS n FROM scm_secret"),
      });

    before(async () => {
      t = await serviceOn(kind);
      user = uniqueUser("reference");
      stored = (await t.connectUser(user)).accessToken;
      // One hand-out first, so the row's reservation is part of what must not change.
      expect((await t.service.getTokenForHost(user, t.host))!.value).to.equal(stored);
      base = { dataSource: t.dataSource, providers: [providerForFakeScm(t.scm)], encryptionKeys: [{ id: "k", key: key() }] };
      const keys = [{ id: "s", key: key() }];
      secrets = new TakeOnceSecrets(t.dataSource, new KeyRing(keys), t.clock);
      secretId = (await secrets.create("reference-secret", { expiresInMs: 3_600_000 })).id;
    });
    after(async () => {
      // Still readable after everything: the token (same value) and the take-once secret.
      expect((await t.service.getTokenForHost(user, t.host))!.value).to.equal(stored);
      expect(await secrets.take(secretId)).to.equal("reference-secret");
      await t.close();
    });

    describe(`${OPTION_ROWS.length + CONSTRUCTOR_ROWS.length} bad start-up options → ConfigurationError with .option`, () => {
      for (const [label, patch, option] of OPTION_ROWS) {
        it(label, async () => {
          const before = await snapshot();
          const error = await settle(() => createTokenService(patch(base, t) as TokenServiceOptions));
          expect(error, "rejected").to.be.instanceOf(ConfigurationError);
          expect((error as ConfigurationError).option).to.equal(option);
          expect((error as ConfigurationError).code).to.equal("CONFIGURATION");
          expect(await snapshot()).to.equal(before);
        });
      }
      for (const [label, make, option] of CONSTRUCTOR_ROWS) {
        it(label, () => {
          let error: unknown;
          try {
            make();
          } catch (e) {
            error = e;
          }
          expect(error, "thrown").to.be.instanceOf(ConfigurationError);
          expect((error as ConfigurationError).option).to.equal(option);
        });
      }
    });

    describe(`${ARGUMENT_ROWS.length} bad call arguments → InvalidArgumentError with .argument`, () => {
      for (const [label, call, argument] of ARGUMENT_ROWS) {
        it(label, async () => {
          const bundle = new NamedSecretsBundle([new NamedSecret({ name: "env-FOO", value: "bar", kind: "env", envName: "FOO" })]);
          const before = await snapshot();
          const error = await settle(() => call({ service: t.service, user, host: t.host, secrets, bundle }));
          expect(error, "rejected").to.be.instanceOf(InvalidArgumentError);
          expect(error).to.be.instanceOf(TokenServiceError);
          expect((error as InvalidArgumentError).argument).to.equal(argument);
          expect(await snapshot()).to.equal(before);
        });
      }
    });

    it("a host is found in any spelling: other case, surrounding spaces, trailing dot", async () => {
      for (const spelling of [t.host.toUpperCase(), ` ${t.host} `, `${t.host}.`]) {
        expect((await t.service.getTokenForHost(user, spelling))!.value, spelling).to.equal(stored);
      }
    });

    it("a number option that is valid is accepted (the range is not too tight)", async () => {
      const service = await createTokenService({ ...base, retry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0, timeoutMs: 1 }, lease: { leaseMs: 1_000, waitForOtherMs: 0 }, drainPollMs: 1, poolSize: 1, defaultLifetimeMinutes: 1440, defaultMaxWaitMs: Number.POSITIVE_INFINITY, metricsPrefix: "a:b_" });
      await service.close();
      expect(new KeyRing([{ id: "url", key: K.toString("base64url") }]).primaryId).to.equal("url");
    });
  });
}
