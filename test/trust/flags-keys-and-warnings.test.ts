import { expect } from "chai";
import type { LDClient } from "@launchdarkly/node-server-sdk";
import type { TestData } from "@launchdarkly/node-server-sdk/integrations";
import { ConfigurationError } from "../../src/errors";
import { DEFAULT_FLAGS, FLAG_NAMES, resolveFlags } from "../../src/flags/feature-flags";
import { LaunchDarklyFeatureFlags } from "../../src/flags/launchdarkly-feature-flags";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { RecordingLogger } from "../../src/testing/recording-logger";
import { serviceOn, uniqueUser } from "../support/service-fixture";
import { offlineLaunchDarkly } from "../support/offline-launchdarkly";

const INVALID = "Invalid feature flag value; using the default";

describe("feature flag keys: the flag's own name works, unknown keys are refused", () => {
  it("StaticFeatureFlags takes the flag names of the README's table", async () => {
    const flags = new StaticFeatureFlags({
      opportunistic_token_refresh: !DEFAULT_FLAGS.opportunisticRefresh,
      workspace_start_scm_access_token_lifetime: 25,
      opportunistic_token_refresh_horizon_minutes: 45,
      token_refresh_drain: false,
      opportunistic_token_refresh_horizon_margin_minutes: 4,
    });
    expect(await flags.getFlags("u")).to.deep.equal({ opportunisticRefresh: !DEFAULT_FLAGS.opportunisticRefresh, workspaceStartLifetimeMinutes: 25, horizonMinutes: 45, drain: false, horizonMarginMinutes: 4 });
  });

  it("set() takes flag names too, for everyone and per user, and mixes with TokenFlags keys", async () => {
    const flags = new StaticFeatureFlags({ workspaceStartLifetimeMinutes: 12 });
    flags.set({ token_refresh_drain: false });
    flags.set({ workspace_start_scm_access_token_lifetime: 30 }, "alice");
    expect(await flags.getFlags("bob")).to.include({ workspaceStartLifetimeMinutes: 12, drain: false });
    expect(await flags.getFlags("alice")).to.include({ workspaceStartLifetimeMinutes: 30, drain: false });
  });

  it("the same flag under both spellings with the same value is fine; different values are refused", () => {
    expect(() => new StaticFeatureFlags({ drain: false, token_refresh_drain: false })).to.not.throw();
    expect(() => new StaticFeatureFlags({ drain: true, token_refresh_drain: false })).to.throw(ConfigurationError, /token_refresh_drain twice/);
  });

  it("an unknown key throws a ConfigurationError naming it (in the constructor and in set)", () => {
    for (const make of [() => new StaticFeatureFlags({ opportunistic_refresh: true } as never), () => new StaticFeatureFlags().set({ workspaceStartLifetime: 5 } as never, "u")]) {
      let error: unknown;
      try {
        make();
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(ConfigurationError);
      expect((error as ConfigurationError).message).to.match(/is not a feature flag; use a flag name \(opportunistic_token_refresh, /);
    }
  });

  it("the service follows a flag given by its name", async () => {
    const t = await serviceOn("sqljs");
    try {
      t.flags.set({ workspace_start_scm_access_token_lifetime: 33 });
      const user = uniqueUser();
      await t.connectUser(user);
      const token = await t.service.getTokenForWorkspaceStart(user, t.host);
      expect(token!.reservedUntilDate!.getTime() - t.clock.now().getTime()).to.be.within(32 * 60_000, 33 * 60_000);
    } finally {
      await t.close();
    }
  });

  it("FLAG_NAMES is keyed by the TokenFlags keys; the earlier keys still read, without being listed", () => {
    expect(Object.keys(FLAG_NAMES).sort()).to.deep.equal(Object.keys(DEFAULT_FLAGS).sort());
    expect(FLAG_NAMES.horizonMinutes).to.equal("opportunistic_token_refresh_horizon_minutes");
    expect(FLAG_NAMES.workspaceStartLifetimeMinutes).to.equal("workspace_start_scm_access_token_lifetime");
    expect(FLAG_NAMES.horizonMarginMinutes).to.equal("opportunistic_token_refresh_horizon_margin_minutes");
    expect(FLAG_NAMES.horizon).to.equal(FLAG_NAMES.horizonMinutes);
    expect(FLAG_NAMES.workspaceStartLifetime).to.equal(FLAG_NAMES.workspaceStartLifetimeMinutes);
    expect(Object.values(FLAG_NAMES)).to.have.length(5);
  });
});

describe("feature flag warnings: unset is quiet, an invalid value is said once", () => {
  let client: LDClient;
  let td: TestData;
  beforeEach(async () => {
    ({ client, td } = await offlineLaunchDarkly());
  });
  afterEach(() => client.close());

  it("flags nobody created in LaunchDarkly: the defaults, and not one warning over 6 hand-outs", async () => {
    const logger = new RecordingLogger();
    const flags = new LaunchDarklyFeatureFlags(client, logger);
    const t = await serviceOn("sqljs");
    try {
      (t.flags as unknown as { getFlags: typeof flags.getFlags }).getFlags = (u) => flags.getFlags(u);
      const user = uniqueUser();
      await t.connectUser(user);
      for (let i = 0; i < 3; i++) {
        await t.service.getTokenForWorkspaceStart(user, t.host);
        await t.service.getTokenForHost(user, t.host);
      }
      expect(await flags.getFlags(user)).to.deep.equal(DEFAULT_FLAGS);
      expect(logger.records.filter((r) => r.level === "warn")).to.deep.equal([]);
    } finally {
      await t.close();
    }
  });

  it("null is unset too (resolveFlags), quietly", () => {
    const logger = new RecordingLogger();
    expect(resolveFlags({ opportunisticRefresh: null, workspaceStartLifetimeMinutes: null, horizonMinutes: null, drain: null }, logger)).to.deep.equal(DEFAULT_FLAGS);
    expect(logger.records).to.deep.equal([]);
  });

  it("an invalid value is warned once per flag and value, however many hand-outs read it", async () => {
    td.update(td.flag("workspace_start_scm_access_token_lifetime").valueForAll("ten minutes"));
    td.update(td.flag("token_refresh_drain").valueForAll("yes"));
    const logger = new RecordingLogger();
    const flags = new LaunchDarklyFeatureFlags(client, logger);
    for (let i = 0; i < 6; i++) expect(await flags.getFlags(`user-${i}`)).to.deep.equal(DEFAULT_FLAGS);
    expect(logger.filter(INVALID).map((r) => r.fields)).to.deep.equal([
      { flag: "workspace_start_scm_access_token_lifetime", value: "ten minutes", fallback: 10 },
      { flag: "token_refresh_drain", value: "yes", fallback: true },
    ]);

    // A different bad value is news: said once more. Going back to an earlier bad value is not.
    td.update(td.flag("workspace_start_scm_access_token_lifetime").valueForAll(-5));
    for (let i = 0; i < 3; i++) await flags.getFlags("u");
    td.update(td.flag("workspace_start_scm_access_token_lifetime").valueForAll("ten minutes"));
    await flags.getFlags("u");
    expect(logger.filter(INVALID)).to.have.length(3);
    expect(logger.filter(INVALID)[2].fields).to.deep.include({ value: -5 });
  });
});
