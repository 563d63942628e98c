import { expect } from "chai";
import { createServer } from "node:net";
import { scmTokenServiceMigrations } from "../../migrations";
import { StorageError } from "../../src/errors";
import { openDataSource } from "../../src/storage/data-source";
import { MIGRATION_LOCK_NAME, MigrationLockTimeoutError } from "../../src/storage/migration-lock";
import { DatabaseConfigurationError, startupError } from "../../src/storage/startup-errors";
import { RecordingLogger } from "../../src/testing/recording-logger";
import { Client } from "pg";
import { POSTGRES_SERVER_URL, RUN_DATABASE, adminQuery, createDatabaseSql, dbKinds, dropDatabaseSql, queryDatabase } from "../support/databases";
import { urlChecks } from "../support/url-checks";

const PASSWORD = "pg-Secret-pw-1";

/** The test server's URL with a password and another database. */
function urlWith(database: string, password?: string): string {
  const url = new URL(`${POSTGRES_SERVER_URL}/${database}`);
  if (password) url.password = password;
  return url.toString();
}

const { startFailure } = urlChecks(PASSWORD);

describe("start-up on PostgreSQL: what the driver says, typed (no server needed)", () => {
  const target = { kind: "server" as const, redactedUrl: "postgres://app:***@db:5432/tokens", host: "db", port: 5432, database: "tokens", password: PASSWORD };
  const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

  it("a refused login (28P01, 28000) is a DatabaseConfigurationError that says to check the user and password", () => {
    for (const code of ["28P01", "28000"]) {
      const e = startupError(pgError(code, `password authentication failed for user "app" (${PASSWORD})`), target, "connect");
      expect(e, code).to.be.instanceOf(DatabaseConfigurationError);
      expect((e as DatabaseConfigurationError).driverCode).to.equal(code);
      expect((e as DatabaseConfigurationError).sqlState).to.equal(code);
      expect(e.message).to.include("check the user name and password").and.not.include(PASSWORD);
    }
  });

  it("a server starting up or shutting down, or out of connections, is a transient StorageError", () => {
    for (const code of ["57P03", "57P01", "53300"]) {
      const e = startupError(pgError(code, "the database system is starting up"), target, "connect");
      expect(e, code).to.be.instanceOf(StorageError);
      expect((e as StorageError).transient, code).to.equal(true);
    }
  });

  it("pg's own connection failures without a code are transient StorageErrors with a PG_* code", () => {
    const e = startupError(new Error("Connection terminated unexpectedly"), target, "connect") as StorageError;
    expect(e).to.be.instanceOf(StorageError);
    expect([e.driverCode, e.transient]).to.deep.equal(["PG_CONNECTION_TERMINATED", true]);
    expect(e.message).to.include("db:5432");
  });
});

for (const kind of dbKinds().filter((k) => k === "postgres")) {
  describe(`start-up on ${kind}`, () => {
    it("a database that does not exist: DatabaseConfigurationError 3D000 that says CREATE DATABASE, without the password", async () => {
      const missing = `${RUN_DATABASE}_missing`;
      const e = await startFailure(urlWith(missing, PASSWORD));
      expect(e).to.be.instanceOf(DatabaseConfigurationError);
      expect((e as DatabaseConfigurationError).driverCode).to.equal("3D000");
      expect(e.message).to.include(`CREATE DATABASE "${missing}"`).and.not.include(PASSWORD);
    });

    it("nothing listening: a transient StorageError ECONNREFUSED", async () => {
      const probe = createServer();
      await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
      const port = (probe.address() as { port: number }).port;
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      const e = await startFailure(`postgres://app:${PASSWORD}@127.0.0.1:${port}/tokens`);
      expect(e).to.be.instanceOf(StorageError);
      expect([(e as StorageError).driverCode, (e as StorageError).transient]).to.deep.equal(["ECONNREFUSED", true]);
      expect(e.message).to.not.include(PASSWORD);
    });

    describe("the migration lock (an advisory lock)", () => {
      const database = `${RUN_DATABASE}_lock`;
      let admin: Client;
      const tables = async () =>
        (await queryDatabase<{ t: string }>(kind, database, "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name")).map((r) => r.t);

      before(async () => {
        await adminQuery(kind, [dropDatabaseSql(kind, database), createDatabaseSql(kind, database)]);
        admin = new Client({ connectionString: urlWith(database) });
        await admin.connect();
      });

      after(async () => {
        await admin.end();
        await adminQuery(kind, [dropDatabaseSql(kind, database)]);
      });

      it("while another session holds it: MigrationLockTimeoutError (transient) after the bounded wait, nothing migrated", async () => {
        await admin.query("SELECT pg_advisory_lock(hashtext($1))", [MIGRATION_LOCK_NAME]);
        const started = Date.now();
        const error = await openDataSource(urlWith(database), { migrationLockTimeoutMs: 1_000, poolSize: 1 }).then(
          async (ds) => ds.destroy(),
          (e: unknown) => e,
        );
        const waited = Date.now() - started;
        expect(error).to.be.instanceOf(MigrationLockTimeoutError);
        expect((error as StorageError).transient).to.equal(true);
        expect((error as Error).message).to.include(MIGRATION_LOCK_NAME).and.include("pg_locks");
        expect(waited).to.be.within(900, 15_000);
        expect(await tables()).to.deep.equal([]);
      });

      it("once it is free: migrates with a pool of ONE connection, once; the lock is free afterwards", async () => {
        await admin.query("SELECT pg_advisory_unlock(hashtext($1))", [MIGRATION_LOCK_NAME]);
        const logger = new RecordingLogger();
        const first = await openDataSource(urlWith(database), { poolSize: 1, logger, migrationLockTimeoutMs: 20_000 });
        await first.destroy();
        const second = await openDataSource(urlWith(database), { poolSize: 1, logger, migrationLockTimeoutMs: 20_000 });
        await second.destroy();
        const migrated = logger.filter("scm-token-service migrated the database");
        expect(migrated).to.have.length(1);
        expect(migrated[0]!.fields.migrations).to.deep.equal(scmTokenServiceMigrations.map((m) => m.name));
        expect(await tables()).to.include.members(["migrations", "scm_token_entry", "scm_token_hold", "scm_secret"]);
        const held = await admin.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'");
        expect(held.rows[0].n).to.equal(0);
        // The date columns are timestamp(3) without time zone; the ids compare byte for byte (no collation migration needed).
        const columns = await queryDatabase<{ c: string; type: string; p: number }>(
          kind,
          database,
          "SELECT column_name AS c, data_type AS type, datetime_precision AS p FROM information_schema.columns WHERE table_name = 'scm_token_entry' AND column_name IN ('expiryDate', 'reservedUntilDate') ORDER BY column_name",
        );
        expect(columns).to.deep.equal([
          { c: "expiryDate", type: "timestamp without time zone", p: 3 },
          { c: "reservedUntilDate", type: "timestamp without time zone", p: 3 },
        ]);
      });
    });
  });
}
