import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { cli, newKey } from "./cli-harness";
import { TS_CHILD_EXEC_ARGV } from "../support/child-process";
import { ensureRunDatabase, serverKinds } from "../support/databases";

const COMMANDS = [["migrate"], ["migrate", "run"], ["migrate", "revert"], ["migrate", "show"], ["reap"], ["rotate-keys"], ["inspect"], ["demo"], ["simulate"]];

describe("scm-token-service (command line): help and usage errors", () => {
  describe("--help", () => {
    it("the top level lists every command, the environment variables and the exit codes, and exits 0", async () => {
      const run = await cli(["--help"]);
      expect(run.code).to.equal(0);
      for (const command of ["migrate", "reap", "rotate-keys", "inspect", "demo", "simulate"]) expect(run.stdout).to.match(new RegExp(`^  ${command}\\b`, "m"));
      expect(run.stdout).to.include("DATABASE_URL").and.include("SCM_TOKEN_KEYS");
      expect(run.stdout).to.include("Exit codes:").and.include("0  success").and.include("1  operational failure").and.include("2  usage error");
      expect(run.stderr).to.equal("");
    });

    for (const command of COMMANDS) {
      it(`${command.join(" ")} --help shows examples and the exit codes`, async () => {
        const run = await cli([...command, "--help"]);
        expect(run.code).to.equal(0);
        expect(run.stdout).to.include(`Usage: scm-token-service ${command.join(" ")}`);
        expect(run.stdout).to.include("Examples:").and.include("Exit codes:").and.include(`scm-token-service ${command[0]}`);
      });
    }

    it("every database command documents --database-url and DATABASE_URL", async () => {
      for (const command of [["migrate", "run"], ["migrate", "revert"], ["migrate", "show"], ["reap"], ["rotate-keys"], ["inspect"]]) {
        const run = await cli([...command, "--help"]);
        expect(run.stdout, command.join(" ")).to.include("--database-url <url>").and.include("$DATABASE_URL");
      }
    });

    it("--version prints the package version", async () => {
      const run = await cli(["--version"]);
      expect(run.code).to.equal(0);
      expect(run.stdout.trim()).to.match(/^\d+\.\d+\.\d+/);
    });
  });

  describe("usage errors exit 2 with a message that says what to do", () => {
    it("no command: the help goes to stderr", async () => {
      const run = await cli([]);
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include("Usage: scm-token-service");
    });

    it("an unknown command", async () => {
      const run = await cli(["rotate-key"]);
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include("unknown command 'rotate-key'").and.include("(Did you mean rotate-keys?)");
    });

    it("an unknown option", async () => {
      const run = await cli(["reap", "--batchsize", "5"]);
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include("unknown option '--batchsize'").and.include("--help");
    });

    it("a bad number", async () => {
      const run = await cli(["reap", "--database-url", "sqljs:/tmp/x.sqlite", "--batch-size", "0"]);
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include("--batch-size").and.include("must be an integer from 1 to 100000");
    });

    it("a missing argument", async () => {
      const run = await cli(["inspect", "user-1"]);
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include("missing required argument 'host'");
    });

    it("no --database-url and no DATABASE_URL", async () => {
      for (const command of [["migrate", "run"], ["migrate", "show"], ["reap"], ["inspect", "u", "h"]]) {
        const run = await cli(command);
        expect(run.code, command.join(" ")).to.equal(2);
        expect(run.stderr).to.include("no database given: pass --database-url").and.include("or set DATABASE_URL");
      }
    });

    it("an unsupported URL scheme", async () => {
      const run = await cli(["reap"], { env: { DATABASE_URL: "mssql://db/tokens" } });
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include('scheme "mssql:" is not supported; use mysql:, mariadb:, postgres:, postgresql: or sqljs:');
    });

    it("a URL query parameter the command line cannot apply: names it (never its value) and says to remove it", async () => {
      for (const url of ["mysql://app@127.0.0.1:1/tokens?charset=hunter2-value", "mariadb://app@127.0.0.1:1/tokens?ssl=hunter2-value", "postgres://app@127.0.0.1:1/tokens?sslmode=require&connect_timeout=hunter2-value"]) {
        const run = await cli(["reap"], { env: { DATABASE_URL: url } });
        const scheme = url.slice(0, url.indexOf(":") + 1);
        const name = /[?&]([a-z_]+)=hunter2/.exec(url)![1];
        expect(run.code, url).to.equal(2);
        expect(run.stderr).to.include(`--database-url: the query parameter "${name}" is not supported on ${scheme}// URLs`).and.include("the only one is sslmode=").and.include("remove the parameter");
        expect(run.stderr, "the library's advice has no command-line form").to.not.include("dataSource");
        expect(run.stderr).to.not.include("hunter2");
      }
    });

    it("the in-memory embedded database (gone when the command exits)", async () => {
      const run = await cli(["migrate", "run", "--database-url", "sqljs::memory:"]);
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include("sqljs:/path/file.sqlite");
    });

    it("migrate revert without --yes", async () => {
      const run = await cli(["migrate", "revert", "--database-url", "sqljs:/tmp/never-opened.sqlite"]);
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include("pass --yes to confirm");
    });
  });

  describe("operational failures exit 1", () => {
    it("an unreachable database: names it without the password and says what to check", async () => {
      const run = await cli(["reap"], { env: { DATABASE_URL: "mysql://app:hunter2-secret@127.0.0.1:1/tokens" } });
      expect(run.code).to.equal(1);
      expect(run.stderr).to.include("cannot open the database at mysql://app:***@127.0.0.1:1/tokens").and.include("ECONNREFUSED").and.include("check that the server is running");
      expect(run.stderr).to.not.include("hunter2");
    });

    for (const kind of serverKinds()) {
      it(`sslmode=require against a server without TLS (the test server on ${kind}): says so, and what to change in --database-url`, async () => {
        const url = `${await ensureRunDatabase(kind)}?sslmode=require`;
        const run = await cli(["inspect", "u", "h"], { env: { DATABASE_URL: url } });
        expect(run.code).to.equal(1);
        expect(run.stderr).to.include(`cannot open the database at ${url}: the database server at 127.0.0.1:`);
        expect(run.stderr).to.include("does not accept TLS, and --database-url (or DATABASE_URL) asks for it").and.include("sslmode=disable");
        expect(run.stderr).to.not.include("check that the server is running");
      });
    }

    it("an embedded database file that does not exist (only migrate run creates one)", async () => {
      const run = await cli(["inspect", "u", "h", "--database-url", "sqljs:/nonexistent/dir/tokens.sqlite"]);
      expect(run.code).to.equal(1);
      expect(run.stderr).to.include("no embedded database file at /nonexistent/dir/tokens.sqlite").and.include("migrate run");
    });
  });

  describe("rotate-keys: bad key configuration is a usage error that never quotes key material", () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "scm-token-keys-"));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const rotate = (env: Record<string, string>, extra: string[] = []) => cli(["rotate-keys", "--database-url", "sqljs:/tmp/never-opened.sqlite", ...extra], { env });

    it("no SCM_TOKEN_KEYS and no --keys-file", async () => {
      const run = await rotate({});
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include("no encryption keys given: set SCM_TOKEN_KEYS=").and.include("--keys-file");
    });

    it("SCM_TOKEN_KEYS that is not JSON: the message does not echo it", async () => {
      const key = newKey("k1").key;
      const run = await rotate({ SCM_TOKEN_KEYS: `[{"id":"k1","key":"${key}",}]` });
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include("SCM_TOKEN_KEYS is not valid JSON; expected an array like");
      expect(run.stderr).to.not.include(key.slice(0, 12));
    });

    it("a key that is not 32 bytes: names the key id, not the key", async () => {
      const run = await rotate({ SCM_TOKEN_KEYS: JSON.stringify([newKey("new", true), { id: "old", key: "c2hvcnQta2V5LW1hdGVyaWFs" }]) });
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include('SCM_TOKEN_KEYS: encryption key "old" must be base64 of exactly 32 bytes (got 18)');
      expect(run.stderr).to.not.include("c2hvcnQta2V5LW1hdGVyaWFs");
    });

    it("entries of the wrong shape, and ids that differ only in case", async () => {
      expect((await rotate({ SCM_TOKEN_KEYS: "{}" })).stderr).to.include("must be a non-empty JSON array");
      expect((await rotate({ SCM_TOKEN_KEYS: '["k"]' })).stderr).to.include("SCM_TOKEN_KEYS[0] must be an object");
      expect((await rotate({ SCM_TOKEN_KEYS: JSON.stringify([{ id: "k", key: 5 }]) })).stderr).to.include('SCM_TOKEN_KEYS[0] ("k"): "key" must be a string');
      const clash = await rotate({ SCM_TOKEN_KEYS: JSON.stringify([newKey("k1"), newKey("K1")]) });
      expect(clash.code).to.equal(2);
      expect(clash.stderr).to.include('key ids "k1" and "K1" differ only in case');
    });

    it("two primaries", async () => {
      const run = await rotate({ SCM_TOKEN_KEYS: JSON.stringify([newKey("a", true), newKey("b", true)]) });
      expect(run.code).to.equal(2);
      expect(run.stderr).to.include("more than one encryption key is marked primary (a, b)");
    });

    it("--keys-file that cannot be read, or holds bad JSON", async () => {
      const missing = await rotate({}, ["--keys-file", join(dir, "missing.json")]);
      expect(missing.code).to.equal(2);
      expect(missing.stderr).to.include("cannot read --keys-file").and.include("ENOENT");
      const file = join(dir, "keys.json");
      writeFileSync(file, "not json");
      const bad = await rotate({}, ["--keys-file", file]);
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.include(`--keys-file ${file} is not valid JSON`);
    });
  });

  describe("as a real process", () => {
    const main = resolve(__dirname, "../../src/cli/main.ts");
    const node = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      promisify(execFile)(process.execPath, [...TS_CHILD_EXEC_ARGV, main, ...args], { cwd: resolve(__dirname, "../.."), env: { ...process.env, DATABASE_URL: "", ...env } }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );

    it("--help prints the help and exits 0; a usage error exits 2", async function () {
      this.timeout(30_000);
      const [help, usage] = await Promise.all([node(["--help"]), node(["reap"])]);
      expect(help.code, help.stderr).to.equal(0);
      expect(help.stdout).to.include("Usage: scm-token-service").and.include("rotate-keys").and.include("Exit codes:");
      expect(usage.code).to.equal(2);
      expect(usage.stderr).to.include("no database given");
    });
  });
});
