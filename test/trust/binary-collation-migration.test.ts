import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { createConnection } from "mysql2/promise";
import { DataSource, type DataSourceOptions } from "typeorm";
import type { SqljsDriver } from "typeorm/driver/sqljs/SqljsDriver";
import { scmTokenServiceMigrations } from "../../migrations";
import { CreateScmTokenEntry1764000000000 } from "../../migrations/1764000000000-CreateScmTokenEntry";
import { CreateScmSecret1764100000000 } from "../../migrations/1764100000000-CreateScmSecret";
import { KeyRing } from "../../src/crypto/key-ring";
import { ConfigurationError, DecryptionError, InvalidArgumentError } from "../../src/errors";
import { TakeOnceSecrets } from "../../src/secrets/take-once/take-once-secrets";
import { dataSourceOptionsFromUrl } from "../../src/storage/data-source";
import { FakeClock } from "../../src/testing/fake-clock";
import { RUN_DATABASE, SERVER_URL, dbKinds, type DbKind } from "../support/databases";
import { HOST, trustFixture } from "./trust-fixture";

const OLD_MIGRATIONS = [CreateScmTokenEntry1764000000000, CreateScmSecret1764100000000];
const NEW_MIGRATION = "BinaryIdentifierCollation1764200000000";

/** A database of its own (MariaDB: a fresh database on the run's server, dropped by `drop`; sql.js: in memory). */
async function freshDatabase(kind: DbKind): Promise<{ url: string; drop(): Promise<void> }> {
  if (kind === "sqljs") return { url: "sqljs::memory:", drop: async () => undefined };
  const server = new URL(SERVER_URL);
  const connect = () =>
    createConnection({ host: server.hostname, port: Number(server.port || 3306), user: decodeURIComponent(server.username), password: decodeURIComponent(server.password) });
  const name = `${RUN_DATABASE}_mig_${randomBytes(3).toString("hex")}`;
  const connection = await connect();
  // Like a server whose default collation is case- and accent-insensitive (MariaDB's and MySQL 5.7's default).
  await connection.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
  await connection.end();
  return {
    url: `${SERVER_URL}/${name}`,
    async drop() {
      const c = await connect();
      await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await c.end();
    },
  };
}

/** Closes `ds` and opens the same database with another migration list (sql.js: a copy of its bytes). */
async function reopen(ds: DataSource, url: string, migrations: DataSourceOptions["migrations"]): Promise<DataSource> {
  const options = dataSourceOptionsFromUrl(url);
  const bytes = options.type === "sqljs" ? (ds.driver as SqljsDriver).export() : undefined;
  await ds.destroy();
  const next = new DataSource(options.type === "sqljs" ? { ...options, database: bytes, migrations } : { ...options, migrations });
  await next.initialize();
  return next;
}

async function varcharCollations(ds: DataSource): Promise<Set<string>> {
  const rows = (await ds.query(
    "SELECT COLLATION_NAME AS collation FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('scm_token_entry', 'scm_token_hold', 'scm_secret') AND DATA_TYPE = 'varchar'",
  )) as Array<{ collation: string }>;
  return new Set(rows.map((r) => r.collation));
}

async function pendingSchemaDiff(ds: DataSource): Promise<string[]> {
  return (await ds.driver.createSchemaBuilder().log()).upQueries.map((q) => q.query);
}

const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

for (const kind of dbKinds()) {
  describe(`migration BinaryIdentifierCollation on ${kind}`, function () {
    this.timeout(60_000);
    let db: Awaited<ReturnType<typeof freshDatabase>>;
    let ds: DataSource;
    afterEach(async () => {
      if (ds?.isInitialized) await ds.destroy();
      await db?.drop();
    });

    it("keeps the rows written under the old schema readable, isolates look-alike ids afterwards, and down reverts (refusing while look-alikes exist)", async () => {
      db = await freshDatabase(kind);
      // 1. The schema as the earlier migrations left it.
      ds = new DataSource({ ...dataSourceOptionsFromUrl(db.url), migrations: OLD_MIGRATIONS });
      await ds.initialize();
      await ds.runMigrations();
      if (kind === "mariadb") expect(await varcharCollations(ds)).to.deep.equal(new Set(["utf8mb4_general_ci"]));

      const t = await trustFixture(kind, ds);
      const keyRing = new KeyRing(t.keys);
      const secrets = new TakeOnceSecrets(ds, keyRing, new FakeClock("2026-01-01T00:00:00.000Z"));
      await t.service.storeToken("alice", HOST, { value: "token-of-alice" });
      await t.service.storeToken("bob", HOST, { value: "token-of-bob", reuse: "never", expiryDate: new Date(t.clock.now().getTime() + 3_600_000) });
      const { id: secretId } = await secrets.create("secret-value", { expiresInMs: 3_600_000, purpose: "workspace-start" });
      await secrets.attachReference(secretId, "ws-alice");
      if (kind === "mariadb") {
        // The defect the migration removes: the look-alike lookup finds alice's row (the hand-out refuses it).
        expect(await ds.query("SELECT id FROM scm_token_entry WHERE userId = 'ALICE'")).to.have.length(1);
        expect(await failure(t.service.getTokenForHost("ALICE", HOST))).to.be.instanceOf(DecryptionError);
      }

      // 2. Upgrade: the full list, as an application would run it; only the new migration is pending.
      ds = await reopen(ds, db.url, scmTokenServiceMigrations);
      const ran = await ds.runMigrations();
      expect(ran.map((m) => m.name)).to.deep.equal([NEW_MIGRATION]);
      expect(await pendingSchemaDiff(ds)).to.deep.equal([]);
      if (kind === "mariadb") {
        expect(await varcharCollations(ds)).to.deep.equal(new Set(["utf8mb4_nopad_bin"]));
        const index = await ds.query("SHOW INDEX FROM scm_token_entry WHERE Key_name = 'IDX_scm_token_entry_user_host'");
        expect(index.map((r: Record<string, unknown>) => [r.Column_name, Number(r.Non_unique)])).to.deep.equal([
          ["userId", 0],
          ["host", 0],
        ]);
      }

      const after = await trustFixture(kind, ds);
      const upgraded = after.serviceWith(t.keys);
      const upgradedSecrets = new TakeOnceSecrets(ds, keyRing, new FakeClock("2026-01-01T00:00:00.000Z"));
      expect((await upgraded.getTokenForHost("alice", HOST))?.value).to.equal("token-of-alice");
      expect((await upgradedSecrets.describe(secretId))?.reference).to.equal("ws-alice");
      for (const lookAlike of ["ALICE", "Alice", "alic\u00e9", "\u00e5lice", "al\u200bice"]) {
        expect(await upgraded.getTokenForHost(lookAlike, HOST), lookAlike).to.equal(undefined);
      }
      await upgraded.storeToken("ALICE", HOST, { value: "token-of-ALICE" });
      expect((await upgraded.getTokenForHost("alice", HOST))?.value).to.equal("token-of-alice");
      expect((await upgraded.getTokenForHost("ALICE", HOST))?.value).to.equal("token-of-ALICE");
      expect(await failure(upgradedSecrets.attachReference(secretId, "WS-ALICE"))).to.be.instanceOf(InvalidArgumentError);

      // 3. down: refused while "alice" and "ALICE" both exist (they would collide under general_ci)…
      if (kind === "mariadb") {
        const refused = await failure(ds.undoLastMigration());
        expect(refused).to.be.instanceOf(ConfigurationError);
        expect((refused as Error).message).to.match(/scm_token_entry .*userId, host.* would collide/);
        expect((refused as Error).message).to.not.contain("alice");
        expect(await varcharCollations(ds)).to.deep.equal(new Set(["utf8mb4_nopad_bin"]));
      }
      // … and reverts to the database default once they are gone.
      expect(await upgraded.deleteTokens("ALICE")).to.equal(1);
      await ds.undoLastMigration();
      expect((await ds.query("SELECT name FROM migrations")).map((r: { name: string }) => r.name)).to.not.include(NEW_MIGRATION);
      expect(await pendingSchemaDiff(ds)).to.deep.equal([]);
      if (kind === "mariadb") expect(await varcharCollations(ds)).to.deep.equal(new Set(["utf8mb4_general_ci"]));
      expect((await upgraded.getTokenForHost("alice", HOST))?.value).to.equal("token-of-alice");
      expect((await upgraded.getTokenForHost("bob", HOST))?.value).to.equal("token-of-bob");
      expect(await upgradedSecrets.take(secretId, { purpose: "workspace-start" })).to.equal("secret-value");
    });

    if (kind === "mariadb") {
      it("picks the collation by what the server is, not by the driver: a mysql:// URL to MariaDB gets utf8mb4_nopad_bin", async () => {
        db = await freshDatabase(kind);
        ds = new DataSource({ ...dataSourceOptionsFromUrl(db.url.replace(/^mariadb:/, "mysql:")), migrations: scmTokenServiceMigrations });
        await ds.initialize();
        expect(ds.options.type).to.equal("mysql");
        await ds.runMigrations();
        expect(await varcharCollations(ds)).to.deep.equal(new Set(["utf8mb4_nopad_bin"]));
      });

      it("stops with instructions when the unique (userId, host) index is missing, and completes once it is back", async () => {
        db = await freshDatabase(kind);
        ds = new DataSource({ ...dataSourceOptionsFromUrl(db.url), migrations: OLD_MIGRATIONS });
        await ds.initialize();
        await ds.runMigrations();
        await ds.query("DROP INDEX IDX_scm_token_entry_user_host ON scm_token_entry");
        ds = await reopen(ds, db.url, scmTokenServiceMigrations);
        const error = await failure(ds.runMigrations());
        expect(error).to.be.instanceOf(ConfigurationError);
        expect((error as Error).message).to.contain("IDX_scm_token_entry_user_host");
        await ds.query("CREATE UNIQUE INDEX IDX_scm_token_entry_user_host ON scm_token_entry (userId, host)");
        expect((await ds.runMigrations()).map((m) => m.name)).to.deep.equal([NEW_MIGRATION]);
        expect(await varcharCollations(ds)).to.deep.equal(new Set(["utf8mb4_nopad_bin"]));
      });
    }
  });
}
