import { expect } from "chai";
import { createConnection, type Connection } from "mysql2/promise";
import { scmTokenServiceMigrations } from "../../migrations";
import { StorageError } from "../../src/errors";
import { openDataSource } from "../../src/storage/data-source";
import { MIGRATION_LOCK_NAME, MigrationLockTimeoutError } from "../../src/storage/migration-lock";
import { RecordingLogger } from "../../src/testing/recording-logger";
import { RUN_DATABASE, SERVER_URL, dbKinds } from "../support/databases";

/**
 * openDataSource runs the migrations under a named database lock, on the one connection holding it;
 * the wait for another process's lock is bounded and ends in a typed, transient error.
 */
function serverConnection(): Promise<Connection> {
  const url = new URL(SERVER_URL);
  return createConnection({ host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) });
}

async function tablesOf(connection: Connection, database: string): Promise<string[]> {
  const [rows] = await connection.query("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name", [database]);
  return (rows as { t: string }[]).map((r) => r.t);
}

(dbKinds().includes("mariadb") ? describe : describe.skip)("start-up: the migration lock (MariaDB)", () => {
  const database = `${RUN_DATABASE}_lock`;
  let admin: Connection;

  before(async () => {
    admin = await serverConnection();
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
  });

  after(async () => {
    await admin.query("SELECT RELEASE_LOCK(?)", [MIGRATION_LOCK_NAME]);
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin.end();
  });

  it("while another session holds the lock: a MigrationLockTimeoutError (transient StorageError) after the bounded wait, and nothing migrated", async () => {
    const [held] = await admin.query("SELECT GET_LOCK(?, 0) AS taken", [MIGRATION_LOCK_NAME]);
    expect((held as { taken: number }[])[0]!.taken).to.equal(1);
    const started = Date.now();
    let error: unknown;
    try {
      const ds = await openDataSource(`${SERVER_URL}/${database}`, { migrationLockTimeoutMs: 1_000, poolSize: 1 });
      await ds.destroy();
    } catch (e) {
      error = e;
    }
    const waited = Date.now() - started;
    expect(error).to.be.instanceOf(MigrationLockTimeoutError);
    const e = error as MigrationLockTimeoutError;
    expect(e).to.be.instanceOf(StorageError);
    expect(e.transient).to.equal(true);
    expect(e.driverCode).to.equal("MIGRATION_LOCK_TIMEOUT");
    expect(e.message).to.include(MIGRATION_LOCK_NAME).and.include("IS_USED_LOCK");
    expect(waited).to.be.within(900, 15_000);
    expect(await tablesOf(admin, database)).to.deep.equal([]);
  });

  it("once the lock is free: migrates with a pool of ONE connection (the migrations run on the connection holding the lock), logs it once", async () => {
    await admin.query("SELECT RELEASE_LOCK(?)", [MIGRATION_LOCK_NAME]);
    const logger = new RecordingLogger();
    const first = await openDataSource(`${SERVER_URL}/${database}`, { poolSize: 1, logger, migrationLockTimeoutMs: 20_000 });
    await first.destroy();
    const second = await openDataSource(`${SERVER_URL}/${database}`, { poolSize: 1, logger, migrationLockTimeoutMs: 20_000 });
    await second.destroy();
    const migratedLines = logger.filter("scm-token-service migrated the database");
    expect(migratedLines).to.have.length(1);
    expect(migratedLines[0]!.fields.migrations).to.deep.equal(scmTokenServiceMigrations.map((m) => m.name));
    expect(await tablesOf(admin, database)).to.include.members(["migrations", "scm_token_entry", "scm_token_hold", "scm_secret"]);
    // The lock is free again: nobody holds it after openDataSource returned.
    const [used] = await admin.query("SELECT IS_USED_LOCK(?) AS holder", [MIGRATION_LOCK_NAME]);
    expect((used as { holder: unknown }[])[0]!.holder).to.equal(null);
  });
});
