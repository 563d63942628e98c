import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import { BrokerClient, type HandOutResponseBody } from "../../src/broker";
import { startTestTokenBroker, type TestTokenBroker } from "../../src/testing";
import { GIT_HTTP_BACKEND, GitHttpServer, type GitRequestInfo } from "./support/git-http-server";
import { RealGit } from "./support/real-git";

/** The value of one Prometheus sample line (0 when absent). */
function sample(text: string, metric: string, labels: string[]): number {
  const line = text.split("\n").find((l) => l.startsWith(`${metric}{`) && labels.every((label) => l.includes(label)));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

/*
 * git 2.39+ and git-http-backend on this machine, nothing else: git clones and pushes over smart
 * HTTP from a local server that accepts only live access tokens of the fake SCM, and gets its
 * credentials from `scm-token-service git-credential`, which asks the token broker.
 */
describe("real git: clone, push and failures through the credential helper and the token broker", function () {
  this.timeout(60_000);
  let b: TestTokenBroker;
  let git: RealGit;
  let server: GitHttpServer;
  let issued: { accessToken: string };
  let workspace: string;
  let ide: string;
  let helper: string;
  let clone: string;
  let beforeRequest: ((info: GitRequestInfo) => Promise<void>) | undefined;

  const gitWith = (args: string[], options: { cwd?: string; credential?: string } = {}) =>
    git.run(["-c", "credential.helper=", "-c", `credential.helper=${helper}`, ...args], {
      cwd: options.cwd,
      env: { SCM_TOKEN_BROKER_TOKEN: options.credential ?? workspace },
    });

  before(async function () {
    if (!GIT_HTTP_BACKEND) this.skip();
    b = await startTestTokenBroker({ flags: { opportunisticRefresh: true } }); // Bitbucket DC: a refresh revokes the old access token
    issued = await b.t.connectUser("alice");
    workspace = b.addCaller({ userId: "alice", callerId: "workspace-1", hosts: [b.t.host] });
    ide = b.addCaller({ userId: "alice", callerId: "ide-1", hosts: [b.t.host] });
    git = new RealGit();
    const root = join(git.dir, "repos");
    mkdirSync(root);
    await git.createBareRepository(root, "repo.git");
    const scm = b.t.scm;
    server = await GitHttpServer.start({
      projectRoot: root,
      // The git server asks the SCM whether the password is a live access token, as Bitbucket does.
      isLive: async (password) => (await fetch(scm.baseUrl + scm.profile.resourcePath, { headers: { Authorization: `Bearer ${password}` } })).status === 200,
      beforeRequest: async (info) => beforeRequest?.(info),
    });
    helper = git.helper(["--broker", b.url, "--host", b.t.host]);
    clone = join(git.dir, "clone");
  });

  after(async () => {
    await server?.close();
    await b?.close();
    git?.cleanUp();
  });

  afterEach(() => {
    beforeRequest = undefined;
  });

  it("real git: a clone inside the refresh horizon keeps its token while another hand-out would refresh it", async () => {
    b.t.clock.advanceMinutes(40); // 20 of the token's 60 minutes left: outside the clone's 18-minute horizon (10-minute hand-out + 8), nothing to refresh yet
    let ideHandOut: HandOutResponseBody | undefined;
    beforeRequest = async (info) => {
      // Mid-clone (the pack request, after git's `store`): time passes into the horizon and an IDE asks for the same token.
      if (info.method === "POST" && info.service === "git-upload-pack" && !ideHandOut) {
        b.t.clock.advanceMinutes(8); // 12 minutes left: inside the IDE's 13-minute horizon (5-minute hand-out + 8)
        ideHandOut = await new BrokerClient({ url: b.url, credential: ide }).handOut({ host: b.t.host, lifetimeMinutes: 5 });
      }
    };
    const run = await gitWith(["clone", `${server.baseUrl}/repo.git`, clone]);

    expect(run.code, run.stderr).to.equal(0);
    expect(existsSync(join(clone, "README.md"))).to.equal(true);
    expect(git.takeActions()).to.deep.equal(["get", "store"]);
    expect(ideHandOut, "the IDE's hand-out ran during the clone").to.not.equal(undefined);
    // The opportunistic refresh was skipped because the clone holds the token: nobody's token was revoked.
    expect(ideHandOut!.token).to.equal(issued.accessToken);
    expect(server.accepted.every((r) => r.password === issued.accessToken)).to.equal(true);
    expect(server.accepted.some((r) => r.info.method === "POST")).to.equal(true);
    expect(b.t.scm.counters.refreshSuccesses).to.equal(0);
    expect(b.t.scm.isAccessTokenLive(issued.accessToken)).to.equal(true);
    const metrics = await b.t.metricsText();
    expect(sample(metrics, "scm_token_refresh_requests_total", ['opportunisticRefresh="reserved"'])).to.be.greaterThan(0);
    expect(sample(metrics, "scm_token_broker_handouts_total", ['outcome="handed_out"'])).to.equal(2);
    expect(sample(metrics, "scm_token_broker_releases_total", ['result="deferred"'])).to.equal(1);
    await new BrokerClient({ url: b.url, credential: ide }).release({ releaseHandle: ideHandOut!.releaseHandle });
  });

  it("real git: a push that starts near the token's expiry gets a refreshed token valid for the whole push", async () => {
    b.t.clock.advanceMinutes(7); // 5 minutes left, less than the hand-out's 10-minute lifetime: the broker must refresh first
    writeFileSync(join(clone, "change.txt"), "a change\n");
    await git.must(["add", "change.txt"], clone);
    await git.must(["commit", "-q", "-m", "change"], clone);
    const before = server.accepted.length;

    const run = await gitWith(["push", "origin", "HEAD:main"], { cwd: clone });

    expect(run.code, run.stderr).to.equal(0);
    expect(git.takeActions()).to.deep.equal(["get", "store"]);
    const used = server.accepted.slice(before);
    expect(used.some((r) => r.info.service === "git-receive-pack" && r.info.method === "POST")).to.equal(true);
    const fresh = used[0].password;
    expect(fresh).to.not.equal(issued.accessToken);
    expect(used.every((r) => r.password === fresh)).to.equal(true);
    expect(b.t.scm.counters.refreshSuccesses).to.equal(1);
    expect(b.t.scm.isAccessTokenLive(fresh)).to.equal(true);
    const log = await git.must(["--git-dir", join(git.dir, "repos", "repo.git"), "log", "--format=%s", "main"]);
    expect(log.split("\n")[0]).to.equal("change");
  });

  it("real git: a revoked token makes git fail cleanly, and the helper's erase releases the hand-out", async () => {
    const live = server.accepted[server.accepted.length - 1].password;
    b.t.scm.revokeFamilyOf(live); // the user revoked the app at the SCM; the service does not know yet
    const metricsBefore = await b.t.metricsText();

    const run = await gitWith(["fetch", "origin"], { cwd: clone });

    expect(run.code).to.equal(128);
    expect(run.stderr).to.match(/Authentication failed/);
    expect(git.takeActions()).to.deep.equal(["get", "erase"]);
    const metrics = await b.t.metricsText();
    // erase releases at once (not deferred like store): the service counts one more release.
    expect(sample(metrics, "scm_token_broker_releases_total", ['result="released"'])).to.equal(sample(metricsBefore, "scm_token_broker_releases_total", ['result="released"']) + 1);
    expect(sample(metrics, "scm_token_reservations_released_total", [])).to.equal(sample(metricsBefore, "scm_token_reservations_released_total", []) + 1);
    expect(run.stderr.includes(live)).to.equal(false);
  });

  it("real git: a broker that refuses the caller makes git fail with the broker's message", async () => {
    const accepted = server.accepted.length;

    const run = await gitWith(["ls-remote", `${server.baseUrl}/repo.git`], { credential: "not-a-workspace-credential" });

    expect(run.code).to.equal(128);
    expect(run.stderr).to.include("scm-token-service git-credential: no token for bitbucket.example.com: unknown broker credential (broker: HTTP 401 UNAUTHENTICATED)");
    expect(run.stderr).to.match(/told us to quit/);
    expect(git.takeActions()).to.deep.equal(["get"]);
    expect(server.accepted.length).to.equal(accepted);
    expect(sample(await b.t.metricsText(), "scm_token_broker_handouts_total", ['outcome="unauthenticated"'])).to.equal(1);
  });
});
