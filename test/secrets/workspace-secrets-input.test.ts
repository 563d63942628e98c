import { expect } from "chai";
import { inspect } from "node:util";
import { InvalidArgumentError } from "../../src/errors";
import { NamedSecret } from "../../src/secrets/named-secret";
import { NamedSecretsBundle } from "../../src/secrets/named-secrets-bundle";
import { SECRET_LIMITS } from "../../src/secrets/limits";
import { scmTokenSecretName } from "../../src/secrets/secret-names";
import { WorkspaceSecrets, type BuildBundleInput, type WorkspaceTokenSource } from "../../src/secrets/workspace-secrets";

const SECRET_VALUE = "env-value-SECRET-91d0";

/** A token source that hands out a fixed token per host and records every call. */
function fakeTokens(): WorkspaceTokenSource & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async getTokenForWorkspaceStart(_userId: string, host: string) {
      calls.push(host);
      return { value: `token-for-${host}`, expiryDate: new Date("2026-01-01T01:00:00Z"), reservedUntilDate: new Date("2026-01-01T00:10:00Z"), username: undefined };
    },
  };
}

async function refusal(input: BuildBundleInput): Promise<InvalidArgumentError> {
  const tokens = fakeTokens();
  const error = await new WorkspaceSecrets(tokens).buildBundle(input).then(() => undefined, (e: unknown) => e);
  expect(error, JSON.stringify(input).slice(0, 200)).to.be.instanceOf(InvalidArgumentError);
  expect((error as Error).message).to.match(/^scm-token-service: /);
  expect(tokens.calls, "no token handed out for bad input").to.deep.equal([]);
  return error as InvalidArgumentError;
}

describe("WorkspaceSecrets input checks (no database)", () => {
  it("derives stable names: non-alphanumerics of the host become '-'", async () => {
    const bundle = await new WorkspaceSecrets(fakeTokens()).buildBundle({ userId: "u", hosts: ["GitHub.com", "bitbucket.example.com:8443"] });
    expect(bundle.names).to.deep.equal(["scm-token-github-com", "scm-token-bitbucket-example-com-8443"]);
    expect(bundle.get("scm-token-github-com")!.host).to.equal("github.com");
    expect(scmTokenSecretName("git_lab.example.com")).to.equal("scm-token-git-lab-example-com");
  });

  it("accepts POSIX variable names and empty values, as a map or a list", async () => {
    const bundle = await new WorkspaceSecrets(fakeTokens()).buildBundle({ userId: "u", hosts: [], extras: { environment: [{ name: "_x", value: "" }, { name: "A1", value: "v" }] } });
    expect(bundle.names).to.deep.equal(["env-_x", "env-A1"]);
  });

  for (const name of ["", "1ABC", "A-B", "A B", "ÄPFEL", "A=B", "x".repeat(SECRET_LIMITS.maxEnvNameLength + 1)]) {
    it(`refuses the variable name ${JSON.stringify(name.slice(0, 20))}`, async () => {
      const error = await refusal({ userId: "u", hosts: ["github.com"], extras: { environment: { [name]: SECRET_VALUE } } });
      expect(error.message).to.contain("[A-Za-z_][A-Za-z0-9_]*");
      expect(error.message).to.not.contain(SECRET_VALUE);
    });
  }

  it("refuses a variable given twice (list form)", async () => {
    const error = await refusal({ userId: "u", hosts: [], extras: { environment: [{ name: "A", value: "1" }, { name: "A", value: SECRET_VALUE }] } });
    expect(error.message).to.contain("environment variable A is given twice").and.not.contain(SECRET_VALUE);
  });

  it("refuses a host listed twice and hosts whose names collide", async () => {
    expect((await refusal({ userId: "u", hosts: ["github.com", "GitHub.com"] })).message).to.contain("lists github.com twice");
    const collision = await refusal({ userId: "u", hosts: ["git.example.com", "git-example.com"] });
    expect(collision.message).to.contain("git.example.com and git-example.com would both be named \"scm-token-git-example-com\"");
  });

  it("refuses oversize values, too many variables and bundles over 1 MiB, without echoing values", async () => {
    const max = SECRET_LIMITS.maxEnvValueBytes;
    const ok = await new WorkspaceSecrets(fakeTokens()).buildBundle({ userId: "u", hosts: [], extras: { environment: { BIG: "x".repeat(max) } } });
    expect(ok.totalBytes).to.equal(max);
    const cases: BuildBundleInput[] = [
      { userId: "u", hosts: [], extras: { environment: { BIG: SECRET_VALUE + "x".repeat(max) } } },
      { userId: "u", hosts: [], extras: { environment: { BIG: SECRET_VALUE + "é".repeat(max / 2) } } }, // bytes, not characters
      { userId: "u", hosts: [], extras: { environment: { NUL: `${SECRET_VALUE}\u0000` } } },
      { userId: "u", hosts: [], extras: { environment: Object.fromEntries(Array.from({ length: SECRET_LIMITS.maxEnvVariables + 1 }, (_, i) => [`V${i}`, SECRET_VALUE])) } },
      { userId: "u", hosts: [], extras: { environment: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`V${i}`, SECRET_VALUE + "x".repeat(max - SECRET_VALUE.length)])) } },
      { userId: "u", hosts: [], extras: { platformToken: "" } },
      { userId: "u", hosts: [], extras: { platformToken: `${SECRET_VALUE}\n` } },
      { userId: "u", hosts: [], extras: { platformToken: SECRET_VALUE + "x".repeat(SECRET_LIMITS.maxPlatformTokenChars) } },
    ];
    for (const input of cases) expect((await refusal(input)).message).to.not.contain(SECRET_VALUE);
  });

  it("refuses bad user ids, host lists and shapes", async () => {
    const bad: unknown[] = [
      { userId: "", hosts: [] },
      { userId: "u", hosts: "github.com" },
      { userId: "u", hosts: [""] },
      { userId: "u", hosts: ["has space.com"] },
      { userId: "u", hosts: Array.from({ length: SECRET_LIMITS.maxHosts + 1 }, (_, i) => `h${i}.example.com`) },
      { userId: "u", hosts: [], extras: "nope" },
      { userId: "u", hosts: [], extras: { environment: "A=1" } },
      null,
    ];
    for (const input of bad) await refusal(input as BuildBundleInput);
  });

  it("a bundle refuses duplicate and invalid names, and redacts values in JSON, inspect and spreads", () => {
    const a = new NamedSecret({ name: "env-A", value: SECRET_VALUE, kind: "env", envName: "A" });
    expect(() => new NamedSecretsBundle([a, a])).to.throw(InvalidArgumentError, 'two entries are named "env-A"');
    for (const name of ["bad/key", "..", ".", "..x", "x".repeat(254), ""]) {
      expect(() => new NamedSecretsBundle([new NamedSecret({ name, value: "v", kind: "env" })]), name).to.throw(InvalidArgumentError, "not a valid Kubernetes Secret data key");
    }
    const bundle = new NamedSecretsBundle([a]);
    for (const view of [JSON.stringify(bundle), inspect(bundle), JSON.stringify(a), inspect(a), JSON.stringify({ ...a }), String(Object.values(a))]) {
      expect(view).to.not.contain(SECRET_VALUE);
    }
    expect(JSON.parse(JSON.stringify(bundle))).to.deep.equal({ entries: [{ name: "env-A", kind: "env", envName: "A", value: "[redacted]" }] });
    expect(a.value).to.equal(SECRET_VALUE);
  });
});
