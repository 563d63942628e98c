import { expect } from "chai";
import fc from "fast-check";
import { BitbucketCloudProvider } from "../../src/providers/bitbucket-cloud-provider";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { GitHubProvider } from "../../src/providers/github-provider";
import { GitLabProvider } from "../../src/providers/gitlab-provider";
import { OAuth2Provider } from "../../src/providers/oauth2-provider";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { Token } from "../../src/token";
import { hostileNumber, hostileScalar } from "./support/arbitraries";
import { FailureLog, show } from "./support/cases";
import { LeakDetector } from "./support/leak-detector";
import { fcParams, typedOutcome } from "./support/outcome";
import { openWorld, type World } from "./support/world";

/**
 * Feature flags and provider constructors with hostile values. Flag values are typed in a UI by
 * operators: an invalid one falls back to the default (with a warning) and never breaks a hand-out.
 * Provider options are configuration: a bad one is a ConfigurationError at start-up, never a
 * TypeError, and the client secret never shows in the error or in the provider object.
 */

/** The two spellings of the flag keys (TokenFlags keys, LaunchDarkly flag names); one run uses one. */
const FLAG_KEYS = [
  ["opportunisticRefresh", "workspaceStartLifetimeMinutes", "horizonMinutes", "drain"],
  ["opportunistic_token_refresh", "workspace_start_scm_access_token_lifetime", "opportunistic_token_refresh_horizon_minutes", "token_refresh_drain"],
] as const;

describe("adversarial: feature flags", function () {
  this.timeout(120_000);
  let w: World;
  before(async () => {
    w = await openWorld("sqljs");
  });
  after(async () => w?.close());

  it("any flag value resolves to usable flags, and hand-outs keep working with them", async () => {
    const flagValue = fc.oneof(hostileNumber, hostileScalar, fc.boolean(), fc.constantFrom(0.001, 1 / 120, 1 / 60, 0.5, 10, 1440, 1441, "10", "true", "false"));
    const victim = await w.storeVictim(`${w.tag()}-flags`, w.hosts[0]);
    const failures = new FailureLog();
    const runFlags = async (values: Record<string, unknown>, perUser: boolean): Promise<void> => {
        const label = `flags ${show(values)}${perUser ? " for the user" : " for everyone"}`;
        await failures.check(label, async () => {
          const made = await typedOutcome(`StaticFeatureFlags(${label})`, w.leaks, () => {
            const flags = new StaticFeatureFlags({}, w.logger);
            if (perUser) flags.set(values as never, victim.userId);
            else flags.set(values as never);
            return flags;
          });
          if (!made.ok) expect.fail(`${label}: known flag keys must be accepted whatever the value (an invalid value falls back); got ${made.error.message}`);
          const flags = made.value!;
          const resolved = await flags.getFlags(victim.userId);
          expect(resolved.opportunisticRefresh, `${label}: opportunisticRefresh`).to.be.a("boolean");
          expect(resolved.drain, `${label}: drain`).to.be.a("boolean");
          expect(Number.isFinite(resolved.workspaceStartLifetimeMinutes) && resolved.workspaceStartLifetimeMinutes > 0 && resolved.workspaceStartLifetimeMinutes <= 1440, `${label}: workspaceStartLifetimeMinutes ${resolved.workspaceStartLifetimeMinutes}`).to.equal(true);
          if (resolved.horizonMinutes !== undefined) expect(Number.isFinite(resolved.horizonMinutes) && resolved.horizonMinutes >= 0 && resolved.horizonMinutes <= 1440, `${label}: horizonMinutes`).to.equal(true);
          // The resolved flags drive a real workspace-start hand-out: a flag typo must not break it.
          w.flags.set({ opportunisticRefresh: resolved.opportunisticRefresh, workspaceStartLifetimeMinutes: resolved.workspaceStartLifetimeMinutes, horizonMinutes: resolved.horizonMinutes ?? 0, drain: resolved.drain }, victim.userId);
          const got = await typedOutcome(`getTokenForWorkspaceStart with ${label}`, w.leaks, () => w.service.getTokenForWorkspaceStart(victim.userId, victim.host));
          if (!got.ok) expect.fail(`${label}: the workspace-start hand-out failed: ${got.error.message}`);
          expect((got.value as Token).value, `${label}: the user's token`).to.equal(victim.value);
        });
    };
    // The edges of every numeric flag first (both spellings), then generated combinations.
    for (const keys of FLAG_KEYS) {
      for (const v of [0.001, 1 / 120, 1 / 60, 1440, 1441, 0, -1, NaN, Infinity, "10", null]) {
        await runFlags({ [keys[1]]: v }, false);
        await runFlags({ [keys[2]]: v }, true);
      }
    }
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...FLAG_KEYS).chain((keys) => fc.dictionary(fc.constantFrom(...keys), flagValue, { maxKeys: 3 })), fc.boolean(), (values, perUser) => runFlags(values, perUser)),
      fcParams(25),
    );
    w.flags.set({ opportunisticRefresh: false, workspaceStartLifetimeMinutes: 10, horizonMinutes: 20, drain: true }, victim.userId);
    failures.assertNone();
  });

  it("unknown flag keys and non-object flag values are refused with a typed error", async () => {
    const failures = new FailureLog();
    for (const values of [{ opportunisticRefersh: true }, { opportunistic_refresh: true }, { workspaceStartLifetime: 10 }, null, "opportunisticRefresh", 5, [true]]) {
      await failures.check(`StaticFeatureFlags(${show(values)})`, async () => {
        const ctor = await typedOutcome(`new StaticFeatureFlags(${show(values)})`, w.leaks, () => new StaticFeatureFlags(values as never));
        const set = await typedOutcome(`flags.set(${show(values)})`, w.leaks, () => new StaticFeatureFlags().set(values as never));
        if (values !== null) expect(ctor.ok || set.ok, `${show(values)} was accepted silently`).to.equal(false);
      });
    }
    for (const userId of ["", 5, {}, null]) {
      await failures.check(`flags.set({}, ${show(userId)})`, async () => {
        await typedOutcome(`flags.set({}, ${show(userId)})`, w.leaks, () => new StaticFeatureFlags().set({}, userId as never));
      });
    }
    failures.assertNone();
  });
});

describe("adversarial: provider constructors", function () {
  const leaks = new LeakDetector();
  const clientSecret = leaks.secret("client-secret");
  type Ctor = (options: unknown) => unknown;
  const providers: Array<[string, Ctor, Record<string, unknown>]> = [
    ["BitbucketServerProvider", (o) => new BitbucketServerProvider(o as never), { host: "bitbucket.example.com", clientId: "id", clientSecret }],
    ["GitLabProvider", (o) => new GitLabProvider(o as never), { host: "gitlab.example.com", clientId: "id", clientSecret }],
    ["GitHubProvider", (o) => new GitHubProvider(o as never), { clientId: "id", clientSecret }],
    ["BitbucketCloudProvider", (o) => new BitbucketCloudProvider(o as never), { clientId: "id", clientSecret }],
    ["OAuth2Provider", (o) => new OAuth2Provider(o as never), { host: "oauth.example.com", tokenUrl: "https://oauth.example.com/token", clientId: "id", clientSecret, clientAuth: "body", revokesOnRefresh: true }],
  ];
  const fieldValue: Record<string, fc.Arbitrary<unknown>> = {
    host: fc.oneof(hostileScalar, fc.constantFrom("", "a b", "https://x.example.com", "x.example.com/path", "x.example.com:99999", "UPPER.example.com", "x.example.com.", "..", "é.example.com", "x\u200b.example.com", "x".repeat(256))),
    clientId: fc.oneof(hostileScalar, fc.constantFrom("", " ")),
    clientSecret: fc.oneof(hostileScalar, fc.constantFrom("", " ")),
    baseUrl: fc.oneof(hostileScalar, fc.constantFrom("http://scm.example.com", "https://user:pw@scm.example.com", "ftp://scm.example.com", "not a url", "https://scm.example.com?x=1", "https://scm.example.com#f", "https://scm.example.com/", "http://127.0.0.1:7990", "//scm.example.com")),
    tokenUrl: fc.oneof(hostileScalar, fc.constantFrom("http://oauth.example.com/token", "https://oauth.example.com/token#x", "relative/token", "https://u:p@oauth.example.com/token")),
    clientAuth: fc.oneof(hostileScalar, fc.constantFrom("basic", "body", "Basic", "post", "none")),
    tokenKind: fc.oneof(hostileScalar, fc.constantFrom("app_user", "oauth_app", "app")),
    revokesOnRefresh: fc.oneof(hostileScalar, fc.boolean()),
    allowInsecureHttp: fc.oneof(hostileScalar, fc.boolean()),
    redirectUri: fc.oneof(hostileScalar, fc.constantFrom("https://app.example.com/cb", "not a url", "")),
    rejectedRefreshTokenErrors: fc.oneof(hostileScalar, fc.constantFrom(["invalid_request"], [""], [{ error: "x" }], [{ error: "x", description: /y/ }], "invalid_grant")),
    fallbackExpiresInSeconds: hostileNumber,
    clientsecret: fc.constant("a typo"),
    client_secret: fc.constant("snake case"),
  };

  it("a typed error or a provider for every hostile option, never showing the client secret", async () => {
    const failures = new FailureLog();
    const mutation = fc.tuple(
      fc.constantFrom(...providers),
      fc.oneof({ weight: 1, arbitrary: hostileScalar.map((v) => ["whole options", v] as [string, unknown]) }, { weight: 8, arbitrary: fc.constantFrom(...Object.keys(fieldValue)).chain((k) => fieldValue[k].map((v) => [k, v] as [string, unknown])) }),
    );
    const judgeProvider = async ([name, make, base]: [string, Ctor, Record<string, unknown>], [field, value]: [string, unknown]): Promise<void> => {
      {
        const options = field === "whole options" ? value : { ...base, [field]: value };
        const label = `new ${name}(${field === "whole options" ? show(value) : `{ …, ${field}: ${show(value)} }`})`;
        await failures.check(label, async () => {
          const got = await typedOutcome(label, leaks, () => make(options));
          if (got.ok) {
            leaks.assertObjectClean(`${label}: the provider`, got.value);
            if (field === "whole options") expect.fail(`${label}: accepted options that are not an object`);
            if (field === "clientsecret" || field === "client_secret") expect.fail(`${label}: an unknown (typo'd) option was accepted silently`);
          } else {
            expect(got.error.code, `${label}: ${got.error.message}`).to.equal("CONFIGURATION");
          }
        });
      }
    };
    // Every provider with no options, null and a typo'd secret first, then generated mutations.
    for (const p of providers) for (const m of [["whole options", undefined], ["whole options", null], ["clientsecret", "a typo"], ["client_secret", "snake case"]] as Array<[string, unknown]>) await judgeProvider(p, m);
    await fc.assert(fc.asyncProperty(mutation, ([p, m]) => judgeProvider(p, m)), fcParams(80));
    failures.assertNone();
  });
});
