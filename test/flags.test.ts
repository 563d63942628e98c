import { expect } from "chai";
import type { LDClient } from "@launchdarkly/node-server-sdk";
import type { TestData } from "@launchdarkly/node-server-sdk/integrations";
import { DEFAULT_FLAGS, resolveFlags } from "../src/flags/feature-flags";
import { LaunchDarklyFeatureFlags } from "../src/flags/launchdarkly-feature-flags";
import { StaticFeatureFlags } from "../src/flags/static-feature-flags";
import { RecordingLogger } from "../src/testing/recording-logger";
import { serviceOn, uniqueUser } from "./support/service-fixture";
import { offlineLaunchDarkly } from "./support/offline-launchdarkly";

describe("feature flags", () => {
  describe("resolveFlags (validation)", () => {
    const rows: Array<[string, Record<string, unknown>, Partial<typeof DEFAULT_FLAGS>, number]> = [
      ["nothing set → defaults", {}, DEFAULT_FLAGS, 0],
      ["valid values pass", { opportunisticRefresh: true, workspaceStartLifetimeMinutes: 30, horizonMinutes: 45, drain: false }, { opportunisticRefresh: true, workspaceStartLifetimeMinutes: 30, horizonMinutes: 45, drain: false }, 0],
      ["lifetime 0 → default", { workspaceStartLifetimeMinutes: 0 }, { workspaceStartLifetimeMinutes: 10 }, 1],
      ["negative lifetime → default", { workspaceStartLifetimeMinutes: -3 }, { workspaceStartLifetimeMinutes: 10 }, 1],
      ["non-numeric lifetime → default", { workspaceStartLifetimeMinutes: "15" }, { workspaceStartLifetimeMinutes: 10 }, 1],
      ["lifetime over 24 h → default", { workspaceStartLifetimeMinutes: 1441 }, { workspaceStartLifetimeMinutes: 10 }, 1],
      ["lifetime under one second (what a hand-out refuses) → default", { workspaceStartLifetimeMinutes: 0.5 / 60 }, { workspaceStartLifetimeMinutes: 10 }, 1],
      ["fractional lifetime is fine", { workspaceStartLifetimeMinutes: 2.5 }, { workspaceStartLifetimeMinutes: 2.5 }, 0],
      ["horizon 0 → no horizon (Gitpod's rule)", { horizonMinutes: 0 }, { horizonMinutes: undefined }, 0],
      ["negative horizon → default", { horizonMinutes: -1 }, { horizonMinutes: 20 }, 1],
      ["horizon margin: a number of minutes", { horizonMarginMinutes: 6.5 }, { horizonMarginMinutes: 6.5 }, 0],
      ["horizon margin 0 → off (one horizon for every hand-out)", { horizonMarginMinutes: 0 }, { horizonMarginMinutes: undefined }, 0],
      ["horizon margin unset (null, as LaunchDarkly answers) → default 8, quietly", { horizonMarginMinutes: null }, { horizonMarginMinutes: 8 }, 0],
      ["negative horizon margin → default", { horizonMarginMinutes: -2 }, { horizonMarginMinutes: 8 }, 1],
      ["horizon margin over 24 h → default", { horizonMarginMinutes: 1441 }, { horizonMarginMinutes: 8 }, 1],
      ["non-numeric horizon margin → default", { horizonMarginMinutes: "8" }, { horizonMarginMinutes: 8 }, 1],
      ["NaN horizon margin → default", { horizonMarginMinutes: Number.NaN }, { horizonMarginMinutes: 8 }, 1],
      ["string boolean → default with warning", { opportunisticRefresh: "false" }, { opportunisticRefresh: true }, 1],
    ];
    for (const [name, raw, expected, warnings] of rows) {
      it(name, () => {
        const logger = new RecordingLogger();
        expect(resolveFlags(raw, logger)).to.include(expected);
        expect(logger.filter("Invalid feature flag value; using the default")).to.have.length(warnings);
      });
    }
  });

  describe("StaticFeatureFlags", () => {
    it("applies per-user values over global ones", async () => {
      const flags = new StaticFeatureFlags({ opportunisticRefresh: true });
      flags.set({ opportunisticRefresh: false, workspaceStartLifetimeMinutes: 12 }, "u2");
      expect((await flags.getFlags("u1")).opportunisticRefresh).to.equal(true);
      expect(await flags.getFlags("u2")).to.include({ opportunisticRefresh: false, workspaceStartLifetimeMinutes: 12 });
    });

    it("a set() after flags were read takes effect on the next read, for everyone and for one user", async () => {
      const flags = new StaticFeatureFlags({ opportunisticRefresh: true });
      flags.set({ horizonMinutes: 30 }, "u2");
      expect((await flags.getFlags("u1")).opportunisticRefresh).to.equal(true);
      expect((await flags.getFlags("u2")).horizonMinutes).to.equal(30);
      flags.set({ opportunisticRefresh: false });
      expect((await flags.getFlags("u1")).opportunisticRefresh, "everyone's change, after a read").to.equal(false);
      expect(await flags.getFlags("u2"), "everyone's change reaches a user with flags of their own").to.include({ opportunisticRefresh: false, horizonMinutes: 30 });
      flags.set({ horizonMinutes: 45 }, "u2");
      expect((await flags.getFlags("u2")).horizonMinutes, "the user's own change, after a read").to.equal(45);
      flags.set({ drain: false }, "u3");
      expect((await flags.getFlags("u3")).drain, "a user's first own flag, after reads as everyone").to.equal(false);
      expect((await flags.getFlags("u1")).drain).to.equal(true);
    });

    it("the flags it answers cannot be changed by the caller: one caller's change would reach every hand-out", async () => {
      const flags = new StaticFeatureFlags({ opportunisticRefresh: true });
      const read = await flags.getFlags("u1");
      expect(() => Object.assign(read, { opportunisticRefresh: false })).to.throw(TypeError);
      expect((await flags.getFlags("u9")).opportunisticRefresh).to.equal(true);
    });
  });

  describe("LaunchDarkly adapter (offline, with LaunchDarkly's TestData)", () => {
    let client: LDClient;
    let td: TestData;
    beforeEach(async () => {
      ({ client, td } = await offlineLaunchDarkly());
    });
    afterEach(() => client.close());

    it("evaluates each flag in a context keyed by the user id", async () => {
      td.update(td.flag("opportunistic_token_refresh").booleanFlag().variationForAll(false).variationForUser("alice", true));
      td.update(td.flag("workspace_start_scm_access_token_lifetime").valueForAll(25));
      td.update(td.flag("opportunistic_token_refresh_horizon_minutes").valueForAll(30));
      td.update(td.flag("token_refresh_drain").booleanFlag().variationForAll(false));
      td.update(td.flag("opportunistic_token_refresh_horizon_margin_minutes").variations(0, 3).variationForAll(0).variationForUser("alice", 1));
      const flags = new LaunchDarklyFeatureFlags(client);
      expect(await flags.getFlags("alice")).to.deep.equal({ opportunisticRefresh: true, workspaceStartLifetimeMinutes: 25, horizonMinutes: 30, drain: false, horizonMarginMinutes: 3 });
      expect((await flags.getFlags("bob")).horizonMarginMinutes, "0 = one horizon for every hand-out").to.equal(undefined);
      expect((await flags.getFlags("bob")).opportunisticRefresh).to.equal(false);
    });

    it("uses the defaults for unset flags, and falls back with a warning for invalid values", async () => {
      td.update(td.flag("workspace_start_scm_access_token_lifetime").valueForAll("ten minutes"));
      const logger = new RecordingLogger();
      const flags = new LaunchDarklyFeatureFlags(client, logger);
      expect(await flags.getFlags("carol")).to.deep.equal(DEFAULT_FLAGS);
      expect(logger.find("Invalid feature flag value; using the default")?.fields).to.deep.include({ flag: "workspace_start_scm_access_token_lifetime", value: "ten minutes", fallback: 10 });
    });

    it("drives the service: a flag flip takes effect on the next hand-out", async () => {
      td.update(td.flag("opportunistic_token_refresh").booleanFlag().variationForAll(false));
      td.update(td.flag("opportunistic_token_refresh_horizon_minutes").valueForAll(0));
      const t = await serviceOn("sqljs");
      try {
        // Swap the static flags for LaunchDarkly ones behind the same service.
        const ld = new LaunchDarklyFeatureFlags(client);
        (t.flags as unknown as { getFlags: typeof ld.getFlags }).getFlags = (u) => ld.getFlags(u);
        const user = uniqueUser();
        const stored = await t.connectUser(user);
        expect((await t.service.getTokenForHost(user, t.host))!.value).to.equal(stored.accessToken);
        t.clock.advanceMinutes(10); // past the first hand-out's reservation (5 minutes, pinned with slack)
        td.update(td.flag("opportunistic_token_refresh").booleanFlag().variationForAll(true));
        expect((await t.service.getTokenForHost(user, t.host))!.value).to.not.equal(stored.accessToken);
      } finally {
        await t.close();
      }
    });
  });
});
