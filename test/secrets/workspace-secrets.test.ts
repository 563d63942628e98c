import { expect } from "chai";
import { inspect } from "node:util";
import { InvalidArgumentError } from "../../src/errors";
import { ScmTokenMissingError } from "../../src/secrets/secret-errors";
import { WorkspaceSecrets } from "../../src/secrets/workspace-secrets";
import { dbKinds } from "../support/databases";
import { uniqueUser } from "../support/service-fixture";
import { multiHostService, type MultiHostService } from "./support/multi-host-service";

const ALPHA = "git.alpha.example.com";
const BETA = "git.beta.example.com";
const GAMMA = "git.gamma.example.com";
const PLATFORM_TOKEN = "platform-token-SECRET-3f9a1c";
const NPM_TOKEN = "npm-token-SECRET-77b2e0";

for (const kind of dbKinds()) {
  describe(`WorkspaceSecrets on ${kind}`, function () {
    let t: MultiHostService;
    afterEach(async () => t?.close());

    it("bundles a reserved, long-enough token per host plus the extras under stable names; a 5-minute request 2 minutes into the clone does not refresh it", async () => {
      t = await multiHostService(kind, [ALPHA, BETA]);
      const user = uniqueUser();
      const stored = [await t.connect(user, ALPHA, "x-token-auth"), await t.connect(user, BETA)];
      const lifetimeMs = (await t.flags.getFlags(user)).workspaceStartLifetimeMinutes * 60_000;
      const start = t.clock.now().getTime();

      const bundle = await new WorkspaceSecrets(t.service, { logger: t.logger }).buildBundle({
        userId: user,
        hosts: [ALPHA, BETA],
        extras: { platformToken: PLATFORM_TOKEN, environment: { NPM_TOKEN, MULTI_LINE: "line 1\nline 2" } },
      });

      expect(bundle.names).to.deep.equal([
        "scm-token-git-alpha-example-com",
        "scm-username-git-alpha-example-com",
        "scm-token-git-beta-example-com",
        "platform-token",
        "env-NPM_TOKEN",
        "env-MULTI_LINE",
      ]);
      expect(bundle.get("scm-username-git-alpha-example-com")!.value).to.equal("x-token-auth");
      expect(bundle.get("platform-token")).to.include({ kind: "platform-token", value: PLATFORM_TOKEN });
      expect(bundle.get("env-MULTI_LINE")).to.include({ kind: "env", envName: "MULTI_LINE", value: "line 1\nline 2" });

      const clone = new Map<string, string>();
      for (const [i, host] of [ALPHA, BETA].entries()) {
        const entry = bundle.get(`scm-token-${host.replace(/\./g, "-")}`)!;
        const scm = t.scms.get(host)!;
        clone.set(host, entry.value);
        expect(entry).to.include({ kind: "scm-token", host });
        // Gitpod's rule refreshed the unreserved token once; the new one is what the clone gets.
        expect(entry.value, host).to.not.equal(stored[i].accessToken);
        expect(scm.counters.refreshSuccesses, host).to.equal(1);
        expect(scm.isAccessTokenLive(entry.value), host).to.equal(true);
        expect(entry.expiresAt!.getTime(), `${host} valid for the lifetime`).to.be.at.least(start + lifetimeMs);
        expect(entry.reservedUntil!.getTime(), `${host} reserved`).to.be.at.least(start + lifetimeMs);
        expect((await t.reservedUntil(user, host))!.getTime(), `${host} reservation stored`).to.be.at.least(start + lifetimeMs);
      }

      t.clock.advanceMinutes(2);
      for (const host of [ALPHA, BETA]) {
        const scm = t.scms.get(host)!;
        const before = { ...scm.counters };
        const api = await t.service.getTokenForHost(user, host, { lifetimeMinutes: 5 });
        expect(api!.value, host).to.equal(clone.get(host));
        expect(scm.isAccessTokenLive(clone.get(host)!), `${host} clone token still live`).to.equal(true);
        expect(scm.counters.refreshSuccesses, host).to.equal(before.refreshSuccesses);
        expect(scm.counters.tokenRequests, host).to.equal(before.tokenRequests);
      }

      // Values never reach logs or the public objects' JSON / inspect output.
      const secrets = [...clone.values(), PLATFORM_TOKEN, NPM_TOKEN, "line 1\nline 2"];
      const views = [JSON.stringify(bundle), inspect(bundle, { depth: 10 }), JSON.stringify(bundle.entries), inspect(bundle.entries), JSON.stringify(bundle.entries.map((e) => ({ ...e }))), t.logger.text()];
      for (const view of views) for (const secret of secrets) expect(view).to.not.contain(secret);
      expect(t.logger.find("Built workspace secrets bundle")?.fields.names).to.deep.equal(bundle.names);
    });

    it("names every host without a stored token in a typed error; the caller decides", async () => {
      t = await multiHostService(kind, [ALPHA, BETA, GAMMA]);
      const user = uniqueUser();
      await t.connect(user, ALPHA);
      const error = await new WorkspaceSecrets(t.service).buildBundle({ userId: user, hosts: [ALPHA, BETA, GAMMA] }).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(ScmTokenMissingError);
      expect((error as ScmTokenMissingError).hosts).to.deep.equal([BETA, GAMMA]);
      expect((error as ScmTokenMissingError).host).to.equal(BETA);
      expect((error as Error).message).to.match(/^scm-token-service: no token is stored for git\.beta\.example\.com, git\.gamma\.example\.com; ask the user to connect/);
      // Without the unconnected hosts, it works.
      const bundle = await new WorkspaceSecrets(t.service).buildBundle({ userId: user, hosts: [ALPHA] });
      expect(bundle.names).to.deep.equal(["scm-token-git-alpha-example-com"]);
    });

    it("an unknown host is the token service's InvalidArgumentError", async () => {
      t = await multiHostService(kind, [ALPHA]);
      const user = uniqueUser();
      await t.connect(user, ALPHA);
      const error = await new WorkspaceSecrets(t.service).buildBundle({ userId: user, hosts: [ALPHA, "unknown.example.com"] }).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(InvalidArgumentError);
      expect((error as Error).message).to.contain("unknown.example.com");
    });

    it("bad input is refused before any token is handed out (nothing reserved, nothing refreshed)", async () => {
      t = await multiHostService(kind, [ALPHA]);
      const user = uniqueUser();
      await t.connect(user, ALPHA);
      const error = await new WorkspaceSecrets(t.service).buildBundle({ userId: user, hosts: [ALPHA], extras: { environment: { "1BAD": "x" } } }).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(InvalidArgumentError);
      expect(await t.reservedUntil(user, ALPHA)).to.equal(undefined);
      expect(t.scms.get(ALPHA)!.counters.tokenRequests).to.equal(0);
    });

    describe("releasable: true (issue #9)", () => {
      it("releases the tokens already obtained when one host has no token, so they can be refreshed again", async () => {
        t = await multiHostService(kind, [ALPHA, BETA]);
        const user = uniqueUser();
        await t.connect(user, ALPHA);
        const secrets = new WorkspaceSecrets(t.service, { releasable: true });
        const error = await secrets.buildBundle({ userId: user, hosts: [ALPHA, BETA] }).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(ScmTokenMissingError);
        // ALPHA's hold was released: nothing keeps its (refreshed) token reserved any more.
        expect(await t.reservedUntil(user, ALPHA)).to.equal(undefined);
      });

      it("keeps the tokens reserved until releaseBundle, then gives them back", async () => {
        t = await multiHostService(kind, [ALPHA, BETA]);
        const user = uniqueUser();
        await t.connect(user, ALPHA);
        await t.connect(user, BETA);
        const secrets = new WorkspaceSecrets(t.service, { releasable: true });
        const bundle = await secrets.buildBundle({ userId: user, hosts: [ALPHA, BETA] });
        const reserved = (await t.reservedUntil(user, ALPHA))!.getTime();
        expect(reserved).to.equal(t.clock.now().getTime() + 10 * 60_000);
        expect(await secrets.releaseBundle(bundle)).to.equal(2);
        expect(await t.reservedUntil(user, ALPHA)).to.equal(undefined);
        expect(await t.reservedUntil(user, BETA)).to.equal(undefined);
        expect(await secrets.releaseBundle(bundle), "idempotent").to.equal(0);
      });
    });
  });
}
