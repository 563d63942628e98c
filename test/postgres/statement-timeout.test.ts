import { expect } from "chai";
import { Client } from "pg";
import { DataSource } from "typeorm";
import { ConfigurationError, StorageError } from "../../src/errors";
import { createTokenService } from "../../src/create-token-service";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { dataSourceOptionsFromUrl, openDataSource, scmTokenServiceEntities } from "../../src/storage/data-source";
import { MIGRATION_LOCK_NAME, MigrationLockTimeoutError, withMigrationLock } from "../../src/storage/migration-lock";
import { SqlRunner } from "../../src/storage/sql-runner";
import { dbKinds, ensureRunDatabase } from "../support/databases";

/** The `extra` of the DataSource options a URL gives (pg.Pool options on PostgreSQL). */
function extraOf(url: string, statementTimeoutMs?: number): Record<string, unknown> | undefined {
  return dataSourceOptionsFromUrl(url, { statementTimeoutMs }).extra as Record<string, unknown> | undefined;
}

describe("PostgreSQL's own statement_timeout on the library's connections (no server needed)", () => {
  it("a URL's DataSource gets statement_timeout one second above the client deadline: 11 s by default, 1.5 s for 500 ms", () => {
    expect(extraOf("postgres://app@db:5432/tokens")?.statement_timeout).to.equal(11_000);
    expect(extraOf("postgresql://app@db/tokens", 500)?.statement_timeout).to.equal(1_500);
    expect(extraOf("postgres://app@db/tokens", 250.5)?.statement_timeout).to.equal(1_251);
  });

  it("MySQL/MariaDB and sql.js options get none (their client deadline alone applies)", () => {
    expect(extraOf("mariadb://root@db:3306/tokens", 500)).to.not.have.property("statement_timeout");
    expect(extraOf("mysql://root@db:3306/tokens", 500)).to.not.have.property("statement_timeout");
    expect(extraOf("sqljs::memory:", 500)).to.equal(undefined);
  });

  it("a statementTimeoutMs that is not milliseconds > 0 is a ConfigurationError naming the option", () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, "1000" as unknown as number]) {
      expect(() => dataSourceOptionsFromUrl("postgres://app@db/tokens", { statementTimeoutMs: bad }), String(bad))
        .to.throw(ConfigurationError, "statementTimeoutMs must be a number of milliseconds > 0")
        .with.property("option", "statementTimeoutMs");
    }
  });
});

for (const kind of dbKinds().filter((k) => k === "postgres")) {
  describe(`statement_timeout on ${kind}`, () => {
    let url: string;
    const open: DataSource[] = [];
    const openWith = async (statementTimeoutMs: number) => {
      const ds = await openDataSource(url, { poolSize: 1, statementTimeoutMs });
      open.push(ds);
      return ds;
    };
    const show = async (ds: DataSource) => (await new SqlRunner(ds).rows("show statement_timeout", "SHOW statement_timeout", []))[0].statement_timeout;

    before(async () => {
      url = await ensureRunDatabase(kind);
    });

    after(async () => {
      for (const ds of open) if (ds.isInitialized) await ds.destroy();
    });

    it("a connection of the library's DataSource has it (SHOW statement_timeout through the library's runner)", async () => {
      expect(await show(await openWith(2_000))).to.equal("3s");
    });

    it("the server cancels a statement that outlives it: pg_sleep(30) fails after ~1 s with SQLSTATE 57014, a transient StorageError", async () => {
      const ds = await openWith(1); // the server's limit: 1001 ms
      const started = Date.now();
      // A client deadline far above the server's: only the server can end this statement early.
      const error = await new SqlRunner(ds, { statementTimeoutMs: 20_000 }).rows("sleep", "SELECT pg_sleep(30)", []).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(StorageError);
      expect([(error as StorageError).driverCode, (error as StorageError).transient]).to.deep.equal(["57014", true]);
      expect(Date.now() - started).to.be.below(10_000);
    });

    it("the migrations run without it on the lock's connection, which gets it back afterwards", async () => {
      const ds = await openWith(1);
      const during = await withMigrationLock(ds, 5_000, async (runner) => ((await runner!.query("SHOW statement_timeout")) as { statement_timeout: string }[])[0].statement_timeout);
      expect(during).to.equal("0");
      // A pool of one: the next statement runs on the connection the migrations used.
      expect(await show(ds)).to.equal("1001ms");
    });

    it("a lock wait that times out also gives the connection its statement_timeout back", async () => {
      const ds = await openWith(1);
      const holder = new Client({ connectionString: url });
      await holder.connect();
      try {
        await holder.query("SELECT pg_advisory_lock(hashtext($1))", [MIGRATION_LOCK_NAME]);
        const error = await withMigrationLock(ds, 0, async () => "ran").catch((e: unknown) => e);
        expect(error).to.be.instanceOf(MigrationLockTimeoutError);
      } finally {
        await holder.end();
      }
      expect(await show(ds)).to.equal("1001ms");
    });

    it("an application's own DataSource is left as the application configured it (here: no statement_timeout)", async () => {
      const base = dataSourceOptionsFromUrl(url);
      const ds = new DataSource({ ...base, extra: undefined, entities: scmTokenServiceEntities });
      await ds.initialize();
      open.push(ds);
      const service = await createTokenService({
        dataSource: ds,
        statementTimeoutMs: 1,
        providers: [new BitbucketServerProvider({ host: "bitbucket.example.com", baseUrl: "http://127.0.0.1:9", clientId: "c", clientSecret: "s" })],
        encryptionKeys: [{ id: "k1", key: Buffer.alloc(32, 7).toString("base64") }],
      });
      try {
        expect(await show(ds)).to.equal("0");
      } finally {
        await service.close();
      }
    });
  });
}
