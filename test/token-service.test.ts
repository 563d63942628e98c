import { expect } from "chai";
import { inspect } from "node:util";
import { InvalidArgumentError, ReauthorizationRequiredError, ScmResponseError, ScmUnavailableError } from "../src/errors";
import type { Token } from "../src/token";
import { dbKinds } from "./support/databases";
import { serviceOn, uniqueUser } from "./support/service-fixture";

type Fixture = Awaited<ReturnType<typeof serviceOn>>;

async function counterValues(t: Fixture): Promise<Record<string, number>> {
  const metric = t.registry.getSingleMetric("scm_token_refresh_requests_total");
  const values = (await metric!.get()).values;
  return Object.fromEntries(values.map((v) => [`${v.labels.result}/${v.labels.opportunisticRefresh}`, v.value]));
}

for (const kind of dbKinds()) {
  describe(`TokenService on ${kind}`, function () {
    let t: Fixture;
    afterEach(async () => t?.close());

    describe("hand-outs (the decision table through the public API)", () => {
      it("returns undefined and counts no_token when nothing is stored", async () => {
        t = await serviceOn(kind);
        expect(await t.service.getTokenForHost(uniqueUser(), t.host)).to.equal(undefined);
        expect(await counterValues(t)).to.deep.equal({ "no_token/false": 1 });
      });

      it("reuses a token that never expires, and reserves it", async () => {
        t = await serviceOn(kind, { flags: { opportunisticRefresh: true } });
        const user = uniqueUser();
        await t.service.storeToken(user, t.host, { value: "never-expiring-token", scopes: ["repo"] });
        const token = await t.service.getTokenForHost(user, t.host);
        expect(token?.value).to.equal("never-expiring-token");
        expect(token?.reservedUntilDate?.getTime()).to.equal(t.clock.now().getTime() + 5 * 60_000);
        expect(await counterValues(t)).to.deep.equal({ "still_valid/false": 1 });
        expect(t.scm.counters.tokenRequests).to.equal(0);
      });

      it("with the flag off, reuses the token until it cannot cover the lifetime, then refreshes once (label false)", async () => {
        t = await serviceOn(kind, { flags: { opportunisticRefresh: false } });
        const user = uniqueUser();
        const issued = await t.connectUser(user);
        for (let minute = 0; minute < 55; minute += 5) {
          const token = await t.service.getTokenForHost(user, t.host);
          expect(token!.value, `minute ${minute}`).to.equal(issued.accessToken);
          t.clock.advanceMinutes(5);
        }
        // 55 minutes in: 5 minutes left, a 5-minute request is still covered; at 56 it is not.
        t.clock.advanceMinutes(1);
        const refreshed = await t.service.getTokenForHost(user, t.host);
        expect(refreshed!.value).to.not.equal(issued.accessToken);
        expect(t.scm.counters.refreshSuccesses).to.equal(1);
        expect(await counterValues(t)).to.deep.equal({ "still_valid/false": 11, "success/false": 1 });
        expect(t.logger.find("Token refreshed")?.fields).to.include({ mode: "forced", host: t.host });
      });

      it("a 10-minute workspace-start token is not refreshed by a 5-minute request 2 minutes later, then refreshed opportunistically once the reservation lapses (Gitpod rule)", async () => {
        t = await serviceOn(kind, { flags: { opportunisticRefresh: true, horizonMinutes: 0 } });
        const user = uniqueUser();
        const stored = await t.connectUser(user);
        // A freshly stored token is unreserved: Gitpod's rule refreshes it on the first hand-out.
        const clone = await t.service.getTokenForWorkspaceStart(user, t.host);
        expect(clone!.value).to.not.equal(stored.accessToken);
        expect(clone!.reservedUntilDate!.getTime()).to.equal(t.clock.now().getTime() + 10 * 60_000);

        t.clock.advanceMinutes(2);
        const api = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 });
        expect(api!.value).to.equal(clone!.value);
        expect(t.scm.isAccessTokenLive(clone!.value)).to.equal(true);

        t.clock.advanceMinutes(9); // 11 minutes: the clone's reservation (10) has lapsed
        const later = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 5 });
        expect(later!.value).to.not.equal(clone!.value);
        expect(t.scm.isAccessTokenLive(clone!.value), "old token revoked at the SCM").to.equal(false);
        expect(t.scm.isAccessTokenLive(later!.value)).to.equal(true);
        expect(await counterValues(t)).to.deep.equal({ "success/true": 2, "still_valid/reserved": 1 });
        expect(t.logger.filter("Token refreshed").map((r) => r.fields.mode)).to.deep.equal(["opportunistic", "opportunistic"]);
      });

      it("with one 20-minute horizon for every hand-out (margin 0), an unreserved token is refreshed only when less than 20 minutes are left", async () => {
        t = await serviceOn(kind, { flags: { opportunisticRefresh: true, horizonMarginMinutes: 0 } });
        const user = uniqueUser();
        const stored = await t.connectUser(user);
        const first = await t.service.getTokenForWorkspaceStart(user, t.host);
        expect(first!.value).to.equal(stored.accessToken);
        t.clock.advanceMinutes(39); // 21 minutes left, unreserved
        expect((await t.service.getTokenForHost(user, t.host))!.value).to.equal(stored.accessToken);
        t.clock.advanceMinutes(6); // 15 minutes left, the 5-minute reservation lapsed at 44
        const refreshed = await t.service.getTokenForHost(user, t.host);
        expect(refreshed!.value).to.not.equal(stored.accessToken);
        expect(await counterValues(t)).to.deep.equal({ "still_valid/false": 2, "success/true": 1 });
      });

      it("honours the workspace_start_scm_access_token_lifetime flag per user", async () => {
        t = await serviceOn(kind);
        const user = uniqueUser();
        await t.connectUser(user);
        t.flags.set({ workspaceStartLifetimeMinutes: 25 }, user);
        const token = await t.service.getTokenForWorkspaceStart(user, t.host);
        expect(token!.reservedUntilDate!.getTime()).to.equal(t.clock.now().getTime() + 25 * 60_000);
        const other = uniqueUser();
        await t.connectUser(other);
        const otherToken = await t.service.getTokenForWorkspaceStart(other, t.host);
        expect(otherToken!.reservedUntilDate!.getTime()).to.equal(t.clock.now().getTime() + 10 * 60_000);
      });

      it("falls back to 10 minutes with a warning when the lifetime flag is invalid", async () => {
        for (const bad of [0, -5, "ten", Number.NaN, 24 * 60 + 1]) {
          t?.close();
          t = await serviceOn(kind, { flags: { workspaceStartLifetimeMinutes: bad } });
          const user = uniqueUser();
          await t.connectUser(user);
          const token = await t.service.getTokenForWorkspaceStart(user, t.host);
          expect(token!.reservedUntilDate!.getTime(), String(bad)).to.equal(t.clock.now().getTime() + 10 * 60_000);
          expect(t.logger.find("Invalid feature flag value; using the default")?.fields.flag).to.equal("workspace_start_scm_access_token_lifetime");
        }
      });
    });

    describe("reservations", () => {
      it("50 concurrent hand-outs with different lifetimes never lower reservedUntilDate", async () => {
        t = await serviceOn(kind);
        const user = uniqueUser();
        await t.connectUser(user);
        const lifetimes = Array.from({ length: 50 }, (_, i) => ((i * 37) % 50) + 1);
        const tokens = await Promise.all(lifetimes.map((m) => t.service.getTokenForHost(user, t.host, { lifetimeMinutes: m })));
        expect(new Set(tokens.map((x) => x!.value)).size).to.equal(1);
        const [row] = await t.rawRows(user);
        const reserved = new Date(row.reservedUntilDate instanceof Date ? row.reservedUntilDate : `${String(row.reservedUntilDate).replace(" ", "T")}Z`);
        expect(reserved.getTime()).to.equal(t.clock.now().getTime() + 50 * 60_000);
        // A later, shorter request does not lower it either.
        await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 1 });
        const [after] = await t.rawRows(user);
        expect(String(after.reservedUntilDate)).to.equal(String(row.reservedUntilDate));
      });
    });

    describe("SCM failures", () => {
      it("invalid_grant → ReauthorizationRequiredError; later calls fail fast without calling the SCM; storeToken clears it", async () => {
        t = await serviceOn(kind);
        const user = uniqueUser();
        const issued = await t.connectUser(user);
        t.scm.revokeFamilyOf(issued.accessToken);
        t.clock.advanceMinutes(58);
        const error = await t.service.getTokenForHost(user, t.host).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(ReauthorizationRequiredError);
        expect((error as ReauthorizationRequiredError).reason).to.equal("invalid_grant");
        const requestsBefore = t.scm.counters.tokenRequests;
        const again = await t.service.getTokenForHost(user, t.host).catch((e: unknown) => e);
        expect(again).to.be.instanceOf(ReauthorizationRequiredError);
        expect((again as ReauthorizationRequiredError).reason).to.equal("marked");
        expect(t.scm.counters.tokenRequests).to.equal(requestsBefore);
        expect(await counterValues(t)).to.deep.equal({ "reauthorization_required/false": 2 });
        // The refresh token was not erased by the failure: the row still has both tokens.
        const [row] = await t.rawRows(user);
        expect(row.refreshToken).to.be.a("string").and.not.equal("");
        await t.connectUser(user);
        expect(await t.service.getTokenForHost(user, t.host)).to.not.equal(undefined);
      });

      it("5xx → bounded retries, then ScmUnavailableError; the stored token is untouched and works afterwards", async () => {
        t = await serviceOn(kind);
        const user = uniqueUser();
        const issued = await t.connectUser(user);
        t.clock.advanceMinutes(58);
        t.scm.failNext({ kind: "fail_before_commit", status: 503 }, 3);
        const error = await t.service.getTokenForHost(user, t.host).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(ScmUnavailableError);
        expect((error as ScmUnavailableError).attempts).to.equal(3);
        expect(t.scm.counters.tokenRequests).to.equal(3);
        expect(t.scm.isAccessTokenLive(issued.accessToken)).to.equal(true);
        const token = await t.service.getTokenForHost(user, t.host);
        expect(token!.value).to.not.equal(issued.accessToken);
        expect(await counterValues(t)).to.deep.equal({ "scm_unavailable/false": 1, "success/false": 1 });
      });

      for (const failure of ["malformed_json", "empty_body"] as const) {
        it(`a ${failure} response → ScmResponseError, nothing stored, the old token still served while it covers`, async () => {
          // Opportunistic refresh off: otherwise the 1-minute hand-out below (token unreserved, inside the horizon) refreshes.
          t = await serviceOn(kind, { flags: { opportunisticRefresh: false } });
          const user = uniqueUser();
          const issued = await t.connectUser(user);
          const [before] = await t.rawRows(user);
          t.clock.advanceMinutes(58);
          t.scm.failNext({ kind: failure });
          const error = await t.service.getTokenForHost(user, t.host).catch((e: unknown) => e);
          expect(error).to.be.instanceOf(ScmResponseError);
          const [after] = await t.rawRows(user);
          expect(after.accessToken).to.equal(before.accessToken);
          expect(after.version).to.equal(before.version);
          const short = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 1 });
          expect(short!.value).to.equal(issued.accessToken);
        });
      }
    });

    describe("bad input (invariant 7)", () => {
      const badLifetimes: unknown[] = [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e-12, 24 * 60 + 0.5, 1e308, "5"];
      it("rejects bad user ids, hosts, lifetimes, scopes and tokens with InvalidArgumentError and leaves the stored token working", async () => {
        t = await serviceOn(kind);
        const user = uniqueUser();
        const issued = await t.connectUser(user);
        const [before] = await t.rawRows(user);
        const attempts: Array<() => Promise<unknown>> = [
          () => t.service.getTokenForHost("", t.host),
          () => t.service.getTokenForHost("x".repeat(129), t.host),
          () => t.service.getTokenForHost(" padded", t.host),
          () => t.service.getTokenForHost(user, "unknown.example.com"),
          () => t.service.getTokenForHost(user, ""),
          ...badLifetimes.map((l) => () => t.service.getTokenForHost(user, t.host, { lifetimeMinutes: l as number })),
          () => t.service.getTokenForHost(user, t.host, { scopes: ["has space"] }),
          () => t.service.getTokenForHost(user, t.host, { maxWaitMs: -1 }),
          () => t.service.storeToken(user, t.host, { value: "" }),
          () => t.service.storeToken(user, t.host, { value: "x".repeat(20_000) }),
          () => t.service.storeToken(user, t.host, { value: "ok", expiryDate: "not a date" }),
          () => t.service.storeToken(user, t.host, { value: "ok", reuse: "sometimes" as never }),
          () => t.service.storeToken(user, "unknown.example.com", { value: "ok" }),
          () => t.service.deleteTokens("", t.host),
        ];
        for (const [i, attempt] of attempts.entries()) {
          const error = await attempt().then(() => undefined, (e: unknown) => e);
          expect(error, `attempt ${i}`).to.be.instanceOf(InvalidArgumentError);
          expect((error as Error).message, `attempt ${i}`).to.match(/^scm-token-service: /);
        }
        const [after] = await t.rawRows(user);
        expect(after).to.deep.equal(before);
        expect((await t.service.getTokenForHost(user, t.host))!.value).to.equal(issued.accessToken);
      });

      it("asks for missing scopes by name", async () => {
        t = await serviceOn(kind);
        const user = uniqueUser();
        await t.connectUser(user, ["REPO_READ"]);
        const error = await t.service.getTokenForHost(user, t.host, { scopes: ["REPO_READ", "REPO_WRITE"] }).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(InvalidArgumentError);
        expect((error as Error).message).to.contain("REPO_WRITE").and.not.contain("REPO_READ,");
      });
    });

    describe("secrets stay secret (invariant 6)", () => {
      it("stores neither token in clear, and no token reaches logs, metrics or JSON of a hand-out", async () => {
        t = await serviceOn(kind, { flags: { opportunisticRefresh: true, horizonMinutes: 0 } });
        const user = uniqueUser();
        const issued = await t.connectUser(user);
        const handedOut: Token[] = [];
        handedOut.push((await t.service.getTokenForWorkspaceStart(user, t.host))!); // refreshes (unreserved)
        t.clock.advanceMinutes(61);
        handedOut.push((await t.service.getTokenForHost(user, t.host))!); // forced refresh
        const [row] = await t.rawRows(user);
        const secrets = [issued.accessToken, issued.refreshToken!, ...handedOut.map((x) => x.value), "test-secret"];
        const rowText = JSON.stringify(row);
        const haystacks = [rowText, t.logger.text(), await t.metricsText(), JSON.stringify(handedOut), JSON.stringify(t.service), inspect(t.service, { depth: 4 })];
        for (const secret of secrets) for (const hay of haystacks) expect(hay).to.not.contain(secret);
        expect(rowText).to.match(/v1:test:/);
        expect(t.logger.filter("Token refreshed")).to.have.length(2);
      });
    });

    it("deleteTokens removes the user's entries", async () => {
      t = await serviceOn(kind);
      const user = uniqueUser();
      await t.connectUser(user);
      expect(await t.service.deleteTokens(user)).to.equal(1);
      expect(await t.service.getTokenForHost(user, t.host)).to.equal(undefined);
      expect(await t.service.deleteTokens(user, t.host)).to.equal(0);
    });
  });
}

for (const kind of dbKinds()) {
  describe(`reuse modes on ${kind}`, () => {
    let t: Fixture;
    afterEach(async () => t?.close());

    it("whenPossible serves a request whose scopes are a subset", async () => {
      t = await serviceOn(kind);
      const user = uniqueUser();
      await t.connectUser(user, ["REPO_READ", "REPO_WRITE"]);
      expect(await t.service.getTokenForHost(user, t.host, { scopes: ["REPO_READ"] })).to.not.equal(undefined);
    });

    it("exactly refuses a subset and serves the equal set", async () => {
      t = await serviceOn(kind);
      const user = uniqueUser();
      await t.service.storeToken(user, t.host, { value: "exact-token", scopes: ["REPO_READ", "REPO_WRITE"], reuse: "exactly" });
      const error = await t.service.getTokenForHost(user, t.host, { scopes: ["REPO_READ"] }).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(InvalidArgumentError);
      expect((error as Error).message).to.contain("exactly");
      expect((await t.service.getTokenForHost(user, t.host, { scopes: ["REPO_WRITE", "REPO_READ"] }))!.value).to.equal("exact-token");
    });

    it("never: 50 concurrent requests, exactly one gets the one-shot token, then it is gone", async () => {
      t = await serviceOn(kind);
      const user = uniqueUser();
      await t.service.storeToken(user, t.host, { value: "one-shot-token", scopes: ["REPO_READ"], reuse: "never", expiryDate: new Date(t.clock.now().getTime() + 3_600_000) });
      const results = await Promise.all(Array.from({ length: 50 }, () => t.service.getTokenForHost(user, t.host)));
      expect(results.filter((r) => r?.value === "one-shot-token")).to.have.length(1);
      expect(results.filter((r) => r === undefined)).to.have.length(49);
      expect(await t.rawRows(user)).to.have.length(0);
    });
  });
}

describe("an SCM that issues tokens shorter than the requested lifetime (invariant 1's exception)", () => {
  it("hands the short token out once refreshed, logs and counts it, and does not loop", async () => {
    const t = await serviceOn("sqljs", { flags: { opportunisticRefresh: true }, scmOverrides: { accessTokenTtlSeconds: 300 } });
    try {
      const user = uniqueUser();
      await t.connectUser(user);
      const first = await t.service.getTokenForWorkspaceStart(user, t.host); // needs 10 min, tokens live 5
      expect(first!.expiryDate!.getTime()).to.equal(t.clock.now().getTime() + 300_000);
      expect(t.scm.counters.refreshSuccesses).to.equal(1);
      expect(await t.registry.getSingleMetric("scm_token_short_lived_total")!.get().then((m) => m.values[0]?.value)).to.equal(1);
      expect(t.logger.find("The SCM issued a token shorter than the requested lifetime")).to.not.equal(undefined);
      t.clock.advanceMinutes(6); // the short token has expired; its holder cannot be broken any more
      const second = await t.service.getTokenForWorkspaceStart(user, t.host);
      expect(second!.value === first!.value).to.equal(false);
      expect(t.scm.counters.refreshSuccesses).to.equal(2);
    } finally {
      await t.close();
    }
  });
});
