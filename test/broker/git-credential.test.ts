import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { expect } from "chai";
import { runCli } from "../../src/cli/run-cli";
import { runGitCredentialCli } from "../../src/cli/commands/git-credential";
import { parseGitCredentialInput } from "../../src/broker/git-credential-protocol";
import { startTestTokenBroker, type TestTokenBroker } from "../../src/testing";

class Collector {
  text = "";
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

/** The git-credential command in process, fed like git feeds it (no git needed; the real-git tests use git). */
describe("scm-token-service git-credential (in process)", () => {
  let b: TestTokenBroker;
  let credential: string;
  let issued: { accessToken: string };
  const dirs: string[] = [];

  async function helper(action: string, input: string, options: { env?: Record<string, string>; args?: string[]; entry?: "runCli" | "fast" } = {}) {
    const stdout = new Collector();
    const stderr = new Collector();
    const argv = ["git-credential", "--broker", b.url, ...(options.args ?? []), action];
    const io = { stdout, stderr, env: options.env ?? { SCM_TOKEN_BROKER_TOKEN: credential }, stdin: Readable.from([input]) };
    const code = options.entry === "fast" ? await runGitCredentialCli(argv, io) : await runCli(argv, io);
    return { code, stdout: stdout.text, stderr: stderr.text, out: parseGitCredentialInput(stdout.text) };
  }

  beforeEach(async () => {
    b = await startTestTokenBroker();
    issued = await b.t.connectUser("alice");
    credential = b.addCaller({ userId: "alice", hosts: [b.t.host] });
  });

  afterEach(async () => {
    await b.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("get prints username, password and expiry; with git’s state capability (git ≥ 2.46) erase releases by the handle it passes back", async () => {
    const input = `capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=${b.t.host}\n\n`;
    const got = await helper("get", input);

    expect(got.code, got.stderr).to.equal(0);
    expect(got.out.values.get("password")).to.equal(issued.accessToken);
    expect(got.out.values.get("username")).to.equal("oauth2");
    expect(Number(got.out.values.get("password_expiry_utc"))).to.equal(Math.floor(b.t.clock.now().getTime() / 1000) + 3600);
    expect(got.out.lists.get("capability")).to.deep.equal(["state"]);
    const state = got.out.lists.get("state") ?? [];
    expect(state).to.have.length(1);
    expect(state[0]).to.match(/^scm-token-service:release=h1\./);

    // git passes the attributes back; with state[] the helper never needs the password to release.
    const erased = await helper("erase", `capability[]=state\nprotocol=https\nhost=${b.t.host}\nusername=oauth2\nstate[]=${state[0]}\n\n`);
    expect(erased.code, erased.stderr).to.equal(0);
    expect(await b.t.metricsText()).to.include('scm_token_broker_releases_total{result="released"} 1');
  });

  it("without the state capability (git < 2.46) store releases by the password git passes back, deferred", async () => {
    const got = await helper("get", `protocol=https\nhost=${b.t.host}\n\n`, { entry: "fast" });
    expect(got.out.lists.has("state")).to.equal(false);
    const stored = await helper("store", `protocol=https\nhost=${b.t.host}\nusername=oauth2\npassword=${got.out.values.get("password")}\n\n`, { entry: "fast" });

    expect(stored.code, stored.stderr).to.equal(0);
    expect(stored.stdout).to.equal("");
    expect(await b.t.metricsText()).to.include('scm_token_broker_releases_total{result="deferred"} 1');
  });

  it("answers only https remotes and http on this machine; ignores unknown actions", async () => {
    for (const input of [`protocol=http\nhost=${b.t.host}\n\n`, `protocol=ssh\nhost=${b.t.host}\n\n`, "protocol=https\n\n"]) {
      const run = await helper("get", input);
      expect([run.code, run.stdout]).to.deep.equal([0, ""]);
    }
    const local = await helper("get", "protocol=http\nhost=127.0.0.1:8080\n\n", { args: ["--host", b.t.host] });
    expect(local.out.values.get("password")).to.equal(issued.accessToken);
    const unknown = await helper("capability", "");
    expect([unknown.code, unknown.stdout]).to.deep.equal([0, ""]);
    expect(await b.t.metricsText()).to.include('scm_token_broker_handouts_total{host="bitbucket.example.com",outcome="handed_out"} 1');
  });

  it("takes the broker credential from SCM_TOKEN_BROKER_TOKEN_FILE, never from the command line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "scm-git-credential-"));
    dirs.push(dir);
    writeFileSync(join(dir, "broker-token"), `${credential}\n`, { mode: 0o600 });
    const fromFile = await helper("get", `protocol=https\nhost=${b.t.host}\n\n`, { env: { SCM_TOKEN_BROKER_TOKEN_FILE: join(dir, "broker-token") } });
    expect(fromFile.out.values.get("password")).to.equal(issued.accessToken);

    const none = await helper("get", `protocol=https\nhost=${b.t.host}\n\n`, { env: {} });
    expect(none.code).to.equal(2);
    expect(none.stderr).to.include("no broker credential: set SCM_TOKEN_BROKER_TOKEN, or SCM_TOKEN_BROKER_TOKEN_FILE");
    const inUrl = await helper("get", `protocol=https\nhost=${b.t.host}\n\n`, { args: ["--broker", b.url.replace("http://", "http://user:secret@")] });
    expect(inUrl.code).to.equal(2);
    expect(inUrl.stderr).to.include("not in the URL");
    const unknownOption = await helper("get", "", { args: ["--token", "x"] });
    expect(unknownOption.code).to.equal(2);
  });

  it("a refused caller gets quit=1 and the broker's message; a host without a token lets git try other helpers", async () => {
    const refused = await helper("get", `protocol=https\nhost=${b.t.host}\n\n`, { env: { SCM_TOKEN_BROKER_TOKEN: "forged" } });
    expect(refused.code).to.equal(1);
    expect(refused.stdout).to.equal("quit=1\n");
    expect(refused.stderr).to.include("unknown broker credential (broker: HTTP 401 UNAUTHENTICATED)");

    const bob = b.addCaller({ userId: "bob", hosts: [b.t.host] });
    const noToken = await helper("get", `protocol=https\nhost=${b.t.host}\n\n`, { env: { SCM_TOKEN_BROKER_TOKEN: bob } });
    expect(noToken.stdout).to.equal("");
    expect(noToken.stderr).to.include(`no token is stored for ${b.t.host}: connect ${b.t.host} to your account first`);

    // A "broker" that answers 200 without a token (a wrong URL): git must not get password=undefined.
    const wrong = createServer((_req, res) => res.writeHead(200, { "Content-Type": "application/json" }).end("{}"));
    await new Promise<void>((resolve) => wrong.listen(0, "127.0.0.1", resolve));
    try {
      const run = await helper("get", `protocol=https\nhost=${b.t.host}\n\n`, { args: ["--broker", `http://127.0.0.1:${(wrong.address() as AddressInfo).port}/`] });
      expect(run.stdout).to.equal("quit=1\n");
      expect(run.stderr).to.include("the token broker's answer has no token; check the broker URL");
    } finally {
      await new Promise<void>((resolve) => wrong.close(() => resolve()));
    }

    const unreachable = await helper("get", `protocol=https\nhost=${b.t.host}\n\n`, { args: ["--broker", "http://127.0.0.1:9/scm-broker"] });
    expect(unreachable.stdout).to.equal("quit=1\n");
    expect(unreachable.stderr).to.match(/the token broker at http:\/\/127\.0\.0\.1:9\/scm-broker is unreachable/);
  });
});
