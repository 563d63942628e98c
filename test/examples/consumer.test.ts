// What a user of scm-token-service writes in their own project: production code that depends on
// TokenService, and a unit test of it with the testing kit only (no MySQL, no network, no sleeps).
import { expect } from "chai";
// In your project: import { ReauthorizationRequiredError, type TokenService } from "scm-token-service";
import { ReauthorizationRequiredError, type TokenService } from "../../src/index";
// In your project: import { createTestTokenService, type TestTokenService } from "scm-token-service/testing";
import { createTestTokenService, type TestTokenService } from "../../src/testing/create-test-token-service";

// ---------------------------------------------------------------------------------------------
// Your production code (normally in src/): a workspace starter that clones with the user's token.
// ---------------------------------------------------------------------------------------------

interface Git {
  clone(repoUrl: string, credentials: { username: string; password: string }): Promise<void>;
}

type StartResult = { status: "started" } | { status: "reconnect"; host: string } | { status: "connect"; host: string };

class WorkspaceStarter {
  constructor(
    private readonly tokens: TokenService,
    private readonly git: Git,
  ) {}

  async start(userId: string, host: string, repoUrl: string): Promise<StartResult> {
    let token;
    try {
      // Valid (and reserved: never refreshed away) for the flag's workspace-start lifetime, 10 minutes by default.
      token = await this.tokens.getTokenForWorkspaceStart(userId, host);
    } catch (e) {
      if (e instanceof ReauthorizationRequiredError) return { status: "reconnect", host: e.host };
      throw e; // ScmUnavailableError etc.: let the caller retry later
    }
    if (!token) return { status: "connect", host };
    await this.git.clone(repoUrl, { username: token.username ?? "oauth2", password: token.value });
    return { status: "started" };
  }
}

// ---------------------------------------------------------------------------------------------
// Your test.
// ---------------------------------------------------------------------------------------------

/** A git that "clones" for `minutes` of fake time, talking to the fake SCM at the start and at the end. */
class FakeGit implements Git {
  readonly statuses: number[] = [];
  meanwhile: () => Promise<void> = async () => undefined;

  constructor(
    private readonly t: TestTokenService,
    private readonly minutes: number,
  ) {}

  async clone(_repoUrl: string, credentials: { username: string; password: string }): Promise<void> {
    this.statuses.push(await this.callScm(credentials.password));
    this.t.clock.advanceMinutes(this.minutes / 2);
    await this.meanwhile(); // the rest of the app keeps working while the clone runs
    this.t.clock.advanceMinutes(this.minutes / 2);
    this.statuses.push(await this.callScm(credentials.password));
  }

  private async callScm(accessToken: string): Promise<number> {
    const res = await fetch(this.t.scm.baseUrl + this.t.scm.profile.resourcePath, { headers: { Authorization: `Bearer ${accessToken}` } });
    return res.status;
  }
}

describe("my workspace starter (example consumer test)", () => {
  let t: TestTokenService;
  afterEach(async () => t?.close());

  it("gets a token that stays valid for the whole clone, even when the app asks for the same token meanwhile", async () => {
    // GitLab revokes the old access token on every refresh: the case that breaks clones.
    t = await createTestTokenService({ profile: "gitlab", flags: { opportunisticRefresh: true } });
    await t.connectUser("alice");
    const git = new FakeGit(t, 8);
    const starter = new WorkspaceStarter(t.service, git);

    t.clock.advanceMinutes(100); // 20 of GitLab's 120 minutes left: outside a workspace start's 18-minute refresh horizon
    git.meanwhile = async () => {
      // 16 minutes left: another workspace of alice's starts, inside its 18-minute refresh horizon. Unreserved, this would refresh (and revoke) the token.
      await t.service.getTokenForWorkspaceStart("alice", t.host);
    };

    expect(await starter.start("alice", t.host, "https://gitlab.example.com/alice/app.git")).to.deep.equal({ status: "started" });
    expect(git.statuses).to.deep.equal([200, 200]); // the clone's token was never revoked
    expect(t.scm.counters.resourceRejectedRevokedByRefresh).to.equal(0);
  });

  it("shows a reconnect prompt to a user who revoked the app at the SCM", async () => {
    t = await createTestTokenService({ profile: "gitlab" });
    const issued = await t.connectUser("bob");
    t.scm.revokeFamilyOf(issued.accessToken); // the user clicked "Revoke" in GitLab's settings
    t.clock.advanceMinutes(120); // the stored token expired: it must be refreshed, and that fails
    const git = new FakeGit(t, 8);

    const result = await new WorkspaceStarter(t.service, git).start("bob", t.host, "https://gitlab.example.com/bob/app.git");

    expect(result).to.deep.equal({ status: "reconnect", host: "gitlab.example.com" });
    expect(git.statuses).to.deep.equal([]); // no clone with a dead token
  });

  it("asks a user who never connected to connect", async () => {
    t = await createTestTokenService({ profile: "github_app_user" });
    const result = await new WorkspaceStarter(t.service, new FakeGit(t, 1)).start("carol", t.host, "https://github.com/carol/app.git");
    expect(result).to.deep.equal({ status: "connect", host: "github.com" });
  });
});
