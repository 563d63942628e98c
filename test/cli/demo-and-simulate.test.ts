import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { cli } from "./cli-harness";

describe("scm-token-service demo", () => {
  it("replays the morning with the default flags: nobody's token is broken", async function () {
    this.timeout(20_000);
    const run = await cli(["demo", "--quiet"]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include("flags: opportunistic_token_refresh=true  horizon=20 min, per hand-out kind at most its lifetime + 8 min  drain=true");
    expect(run.stdout).to.include("Summary").and.include("broken holders");
    expect(run.stdout).to.match(/^bob +\d+ +\d+ +0 +/m);
    expect(run.stdout, "--quiet leaves out the hand-out table").to.not.include("reserved until");
    expect(run.stdout).to.not.match(/tok_|bbdc_|[A-Za-z0-9_-]{40,}/); // tokens appear only as tok#<hash>
  });

  it("passes its flags through: Gitpod's rule breaks holders", async function () {
    this.timeout(20_000);
    const run = await cli(["demo", "--horizon", "0", "--no-drain"]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include("horizon=none (Gitpod's rule)  drain=false");
    expect(run.stdout).to.include("reserved until").and.include("BROKE");
  });

  it("--release: callers give tokens back early, so the busy user neither waits nor breaks", async function () {
    this.timeout(20_000);
    const waiting = await cli(["demo", "--quiet"]);
    expect(waiting.stdout, "without release the busy user waits for holders").to.match(/^bob +\d+ +\d+ +0 +[1-9]\d*\.\d$/m);
    const run = await cli(["demo", "--quiet", "--release"]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include("early release=true");
    expect(run.stdout).to.match(/^bob +\d+ +\d+ +0 +0\.0$/m);
  });

  it("rejects a bad --horizon with exit code 2", async () => {
    const run = await cli(["demo", "--horizon", "soon"]);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.include("--horizon").and.include("must be a number ≥ 0");
  });
});

describe("scm-token-service simulate", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "scm-token-sim-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("prints the report for the given population and policies, and writes the JSON with --out", async () => {
    const out = join(dir, "nested", "simulation.json");
    const run = await cli(["simulate", "--users", "20", "--days", "1", "--seed", "7", "--policies", "gitpod,h20-drain", "--out", out]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include("Refresh-policy simulation").and.include("seed=7 users=20 days=1").and.include("gitpod").and.include("h20-drain");
    expect(run.stdout).to.include(`wrote ${out}`);
    expect(existsSync(out)).to.equal(true);
    const results = JSON.parse(readFileSync(out, "utf8")) as { params: { users: number }; policies: { id: string }[] };
    expect(results.params.users).to.equal(20);
    expect(results.policies.map((p) => p.id)).to.deep.equal(["gitpod", "h20-drain"]);
  });

  it("is deterministic: the same arguments print the same report", async () => {
    const args = ["simulate", "--users", "10", "--days", "1", "--policies", "cover-only"];
    expect((await cli(args)).stdout).to.equal((await cli(args)).stdout);
  });

  it("rejects an unknown policy and a bad number with exit code 2", async () => {
    const policy = await cli(["simulate", "--policies", "gitpod,fastest"]);
    expect(policy.code).to.equal(2);
    expect(policy.stderr).to.include('unknown policy "fastest"; known: every-request, cover-only, gitpod');
    const users = await cli(["simulate", "--users", "-3"]);
    expect(users.code).to.equal(2);
    expect(users.stderr).to.include("--users").and.include("must be an integer from 1 to 1000000");
  });
});
