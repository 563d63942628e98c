import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { expect } from "chai";
import { createTokenService } from "../../src/create-token-service";
import { ConfigurationError, StorageError, TokenServiceError } from "../../src/errors";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { openDataSource } from "../../src/storage/data-source";
import { DatabaseConfigurationError } from "../../src/storage/startup-errors";
import { RUN_DATABASE, SERVER_URL, dbKinds } from "../support/databases";

/**
 * Start-up failures are TokenServiceErrors that say what to do, keep the driver's code, and never
 * show the password: not in the message, not in util.inspect of the error, not in its JSON.
 */
const PASSWORD = "Zq9-start-up-Pa55word";

async function startFailure(databaseUrl: string): Promise<TokenServiceError> {
  try {
    const service = await createTokenService({
      databaseUrl,
      providers: [new BitbucketServerProvider({ host: "bitbucket.example.com", baseUrl: "http://127.0.0.1:9", clientId: "c", clientSecret: "s" })],
      encryptionKeys: [{ id: "k", key: Buffer.alloc(32, 1).toString("base64") }],
      poolSize: 1,
    });
    await service.close();
  } catch (e) {
    expect(e, inspect(e)).to.be.instanceOf(TokenServiceError);
    expectNoPassword(e as Error);
    return e as TokenServiceError;
  }
  throw new Error(`createTokenService(${databaseUrl.replace(PASSWORD, "***")}) started`);
}

function expectNoPassword(e: Error): void {
  for (const [what, text] of [
    ["message", e.message],
    ["inspect", inspect(e, { depth: 10 })],
    ["JSON", JSON.stringify(e)],
    ["stack", e.stack ?? ""],
  ] as const) {
    expect(text.includes(PASSWORD), `${what} contains the password`).to.equal(false);
    expect(text.includes(encodeURIComponent(PASSWORD)), `${what} contains the encoded password`).to.equal(false);
  }
}

/** A TCP port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function serverUrlWithPassword(password: string, database: string): string {
  const url = new URL(SERVER_URL);
  url.password = encodeURIComponent(password);
  url.pathname = `/${database}`;
  return url.toString();
}

describe("start-up failures are typed, say what to do, and never show the password", () => {
  it("a port nothing listens on: transient StorageError ECONNREFUSED, 'start the database server'", async () => {
    const port = await closedPort();
    const e = await startFailure(`mariadb://app:${PASSWORD}@127.0.0.1:${port}/tokens`);
    expect(e).to.be.instanceOf(StorageError);
    const err = e as StorageError;
    expect(err.code).to.equal("STORAGE");
    expect(err.driverCode).to.equal("ECONNREFUSED");
    expect(err.transient).to.equal(true);
    expect(err.message).to.include("start the database server").and.include(`127.0.0.1:${port}`).and.include("app:***@");
  });

  it("a malformed URL (bad %-escape in the password, or no URL at all): ConfigurationError naming the part, not its value", async () => {
    const e = await startFailure(`mysql://app:${PASSWORD}%zz@127.0.0.1:3306/tokens`);
    expect(e).to.be.instanceOf(ConfigurationError);
    expect(e.message).to.include("password holds a malformed %-escape");
    const notUrl = await startFailure(`mysql://app:${PASSWORD}@db host:3306/tokens`);
    expect(notUrl).to.be.instanceOf(ConfigurationError);
    expect(notUrl.message).to.include("databaseUrl is not a URL");
    const noScheme = await startFailure(`app:${PASSWORD}@db-host/tokens`);
    expect(noScheme).to.be.instanceOf(ConfigurationError);
    expect(noScheme.message).to.include("use mysql:, mariadb:, postgres:, postgresql: or sqljs:");
  });

  it("a migration lock wait that is not a duration: ConfigurationError", async () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const e = await openDataSource("sqljs::memory:", { migrationLockTimeoutMs: bad }).then(
        async (ds) => {
          await ds.destroy();
          return undefined;
        },
        (err: unknown) => err,
      );
      expect(e, String(bad)).to.be.instanceOf(ConfigurationError);
      expect((e as Error).message).to.include("migrationLockTimeoutMs");
    }
  });

  describe("an embedded database file that cannot be written", () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "scm-token-startup-"));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("a path under a regular file: ConfigurationError ENOTDIR, 'check the file path'", async () => {
      const file = join(dir, "plain-file");
      writeFileSync(file, "x");
      const e = await startFailure(`sqljs:${join(file, "tokens.sqlite")}`);
      expect(e).to.be.instanceOf(DatabaseConfigurationError);
      expect((e as DatabaseConfigurationError).driverCode).to.equal("ENOTDIR");
      expect(e.code).to.equal("CONFIGURATION");
      expect(e.message).to.include("check the file path").and.include(join(file, "tokens.sqlite"));
    });

    it("a directory that does not exist (/proc/…): ConfigurationError ENOENT", async () => {
      const e = await startFailure("sqljs:/proc/scm-token-service-test/tokens.sqlite");
      expect(e).to.be.instanceOf(DatabaseConfigurationError);
      expect((e as DatabaseConfigurationError).driverCode).to.equal("ENOENT");
      expect(e.message).to.include("its directory must exist and be writable");
    });

    it("a path that is a directory: ConfigurationError EISDIR", async () => {
      const e = await startFailure(`sqljs:${dir}`);
      expect(e).to.be.instanceOf(DatabaseConfigurationError);
      expect((e as DatabaseConfigurationError).driverCode).to.equal("EISDIR");
    });
  });

  (dbKinds().includes("mariadb") ? describe : describe.skip)("on MariaDB", () => {
    it("a wrong password: ConfigurationError ER_ACCESS_DENIED_ERROR, 'check the user name and password'", async () => {
      const e = await startFailure(serverUrlWithPassword(PASSWORD, RUN_DATABASE));
      expect(e).to.be.instanceOf(DatabaseConfigurationError);
      const err = e as DatabaseConfigurationError;
      expect(err.code).to.equal("CONFIGURATION");
      expect(err.driverCode).to.equal("ER_ACCESS_DENIED_ERROR");
      expect(err.errno).to.equal(1045);
      expect(err.message).to.include("check the user name and password in databaseUrl");
    });

    it("a database that does not exist: ConfigurationError ER_BAD_DB_ERROR, 'create it'", async () => {
      const missing = `${RUN_DATABASE}_missing`;
      const e = await startFailure(`${SERVER_URL}/${missing}`);
      expect(e).to.be.instanceOf(DatabaseConfigurationError);
      expect((e as DatabaseConfigurationError).driverCode).to.equal("ER_BAD_DB_ERROR");
      expect(e.message).to.include(`CREATE DATABASE \`${missing}\``);
    });
  });
});
