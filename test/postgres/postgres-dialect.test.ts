import { expect } from "chai";
import { Client } from "pg";
import type { DataSource } from "typeorm";
import { StorageError } from "../../src/errors";
import { runScmTokenServiceMigrations } from "../../src/storage/data-source";
import { MigrationLockTimeoutError } from "../../src/storage/migration-lock";
import { postgresStorageError, toPostgresSql } from "../../src/storage/postgres-dialect";
import { redactPostgresMessage } from "../../src/storage/postgres-errors";
import { SqlRunner } from "../../src/storage/sql-runner";
import { fromSqlDate, toSqlDate } from "../../src/storage/sql-values";
import { TokenStore } from "../../src/storage/token-store";
import { closeDataSource, dbKinds, openTestDataSource, runDatabaseUrl } from "../support/databases";
import { uniqueUser } from "../support/service-fixture";

describe("PostgreSQL dialect: the stores' SQL in PostgreSQL's spelling", () => {
  it("numbers placeholders and quotes mixed-case names, leaving keywords, functions, literals and quoted names alone", () => {
    expect(toPostgresSql("SELECT id, userId FROM scm_token_entry WHERE userId = ? AND host = ?")).to.equal('SELECT id, "userId" FROM scm_token_entry WHERE "userId" = $1 AND host = $2');
    expect(toPostgresSql("UPDATE t SET reservedUntilDate = CASE WHEN reservedUntilDate IS NULL OR reservedUntilDate < ? THEN ? ELSE reservedUntilDate END WHERE id = ?")).to.equal(
      'UPDATE t SET "reservedUntilDate" = CASE WHEN "reservedUntilDate" IS NULL OR "reservedUntilDate" < $1 THEN $2 ELSE "reservedUntilDate" END WHERE id = $3',
    );
    expect(toPostgresSql("SELECT COUNT(*) AS n, MAX(heldUntil) AS heldUntil FROM h WHERE SUBSTR(accessToken, 1, ?) <> ?")).to.equal(
      'SELECT COUNT(*) AS n, MAX("heldUntil") AS "heldUntil" FROM h WHERE SUBSTR("accessToken", 1, $1) <> $2',
    );
    expect(toPostgresSql("UPDATE s SET state = 'referenced?', reference = ? WHERE \"userId\" = ?")).to.equal("UPDATE s SET state = 'referenced?', reference = $1 WHERE \"userId\" = $2");
    expect(toPostgresSql("SELECT 'it''s userId?' AS x WHERE a = ?")).to.equal("SELECT 'it''s userId?' AS x WHERE a = $1");
  });

  it("classifies PostgreSQL's failures: transient for serialization, deadlock, lock and statement timeouts, terminated sessions and lost connections", () => {
    const pgError = (code: string, message = "x") => Object.assign(new Error(message), { code });
    for (const code of ["40001", "40P01", "55P03", "57014", "57P01", "57P03", "53300", "08006", "08003", "ECONNRESET", "ECONNREFUSED"]) {
      const e = postgresStorageError("write a token entry", pgError(code));
      expect(e, code).to.be.instanceOf(StorageError);
      expect(e.transient, code).to.equal(true);
      expect(e.driverCode).to.equal(code);
    }
    for (const code of ["23505", "42P01", "42703", "22021", "28P01"]) expect(postgresStorageError("w", pgError(code)).transient, code).to.equal(false);
    expect(postgresStorageError("w", pgError("40001")).sqlState).to.equal("40001");
    const terminated = postgresStorageError("w", new Error("Connection terminated unexpectedly"));
    expect([terminated.driverCode, terminated.transient]).to.deep.equal(["PG_CONNECTION_TERMINATED", true]);
    const closed = postgresStorageError("w", new Error("Cannot use a pool after calling end on the pool"));
    expect([closed.driverCode, closed.transient]).to.deep.equal(["PG_POOL_ENDED", false]);
  });

  it("keeps quoted names and drops quoted values from server messages", () => {
    expect(redactPostgresMessage('duplicate key value violates unique constraint "IDX_scm_token_entry_user_host"')).to.equal('duplicate key value violates unique constraint "IDX_scm_token_entry_user_host"');
    expect(redactPostgresMessage('invalid input syntax for type integer: "alice-secret"')).to.equal('invalid input syntax for type integer: "?"');
    expect(redactPostgresMessage('column "userid" does not exist')).to.equal('column "userid" does not exist');
    expect(redactPostgresMessage("value v1:k:QWxhZGRpbjpvcGVuIHNlc2FtZQQWxhZGRpbjpvcGVuIHNlc2FtZQ is bad")).to.equal("value v1:k:[redacted] is bad");
  });
});

for (const kind of dbKinds().filter((k) => k === "postgres")) {
  describe("PostgreSQL dialect on a real server", () => {
    let ds: DataSource;
    before(async () => {
      ds = await openTestDataSource(kind, 4);
    });
    after(async () => {
      await closeDataSource(ds);
    });

    it("counts matched rows: an UPDATE that writes the values already there still reports 1 (the stores' compare-and-set)", async () => {
      const store = new TokenStore(ds);
      const user = uniqueUser("pg-rows");
      const now = new Date("2026-03-01T10:00:00.000Z");
      await store.upsert(user, "h.example", { accessTokenCiphertext: "a", scopes: [], reuse: "whenPossible" }, now);
      const entry = (await store.find(user, "h.example"))!;
      expect(await store.releaseLease(entry.id, "nobody")).to.equal(undefined);
      const sql = new SqlRunner(ds);
      expect(await sql.affected("w", "UPDATE scm_token_entry SET refreshLeaseOwner = NULL WHERE id = ?", [entry.id])).to.equal(1);
      expect(await sql.affected("w", "UPDATE scm_token_entry SET refreshLeaseOwner = NULL WHERE id = ?", [entry.id])).to.equal(1);
      expect(await sql.affected("w", "UPDATE scm_token_entry SET refreshLeaseOwner = NULL WHERE id = ?", ["no-such-id"])).to.equal(0);
    });

    it("reads dates back as the UTC instants written, whatever the Node process's time zone", async () => {
      const previous = process.env.TZ;
      process.env.TZ = "America/New_York";
      try {
        expect(new Date("2026-03-01T10:00:00.000Z").getTimezoneOffset(), "the zone took effect").to.not.equal(0);
        const store = new TokenStore(ds);
        const user = uniqueUser("pg-tz");
        const expiry = new Date("2026-03-01T10:00:00.123Z");
        await store.upsert(user, "h.example", { accessTokenCiphertext: "a", scopes: [], reuse: "whenPossible", expiryDate: expiry }, new Date("2026-03-01T09:00:00.000Z"));
        const entry = (await store.find(user, "h.example"))!;
        expect(entry.expiryDate?.toISOString()).to.equal(expiry.toISOString());
        const [row] = await new SqlRunner(ds).rows("r", "SELECT MAX(expiryDate) AS latest FROM scm_token_entry WHERE userId = ?", [user]);
        expect(fromSqlDate(row.latest)?.toISOString()).to.equal(expiry.toISOString());
        expect(toSqlDate(expiry)).to.equal("2026-03-01 10:00:00.123");
      } finally {
        if (previous === undefined) delete process.env.TZ;
        else process.env.TZ = previous;
      }
    });

    it("a statement past its deadline fails as a transient STATEMENT_TIMEOUT, and the pool keeps working", async () => {
      const sql = new SqlRunner(ds, { statementTimeoutMs: 300 });
      const started = Date.now();
      const error = await sql.rows("r", "SELECT pg_sleep(5)", []).then(() => undefined, (e: unknown) => e);
      expect(Date.now() - started).to.be.lessThan(3000);
      expect(error).to.be.instanceOf(StorageError);
      expect((error as StorageError).driverCode).to.equal("STATEMENT_TIMEOUT");
      expect((error as StorageError).transient).to.equal(true);
      for (let i = 0; i < 6; i++) expect(await sql.rows("r", "SELECT 1 AS one", [])).to.deep.equal([{ one: 1 }]);
    });

    it("a session ended by pg_terminate_backend mid-statement is a transient StorageError, and the next statement gets a new connection", async () => {
      const sql = new SqlRunner(ds, { statementTimeoutMs: 10_000 });
      const running = sql.rows("r", "SELECT pg_sleep(10) AS slept, 'marker-terminate' AS m", []).then(() => undefined, (e: unknown) => e);
      const admin = new Client({ connectionString: runDatabaseUrl("postgres") });
      await admin.connect();
      try {
        let terminated = 0;
        for (let i = 0; i < 50 && terminated === 0; i++) {
          const r = await admin.query("SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE query LIKE '%marker-terminate%' AND pid <> pg_backend_pid()");
          terminated = r.rows.filter((x: { t: boolean }) => x.t).length;
          if (terminated === 0) await new Promise((r2) => setImmediate(r2));
        }
        expect(terminated).to.equal(1);
      } finally {
        await admin.end();
      }
      const error = (await running) as StorageError;
      expect(error).to.be.instanceOf(StorageError);
      expect(error.transient, `${error.driverCode}`).to.equal(true);
      expect(["57P01", "PG_CONNECTION_TERMINATED"]).to.include(error.driverCode);
      expect(await sql.rows("r", "SELECT 1 AS one", [])).to.deep.equal([{ one: 1 }]);
    });

    it("a row lock held past lock_timeout is a transient 55P03 (lock_not_available)", async () => {
      const store = new TokenStore(ds);
      const user = uniqueUser("pg-lock");
      await store.upsert(user, "h.example", { accessTokenCiphertext: "a", scopes: [], reuse: "whenPossible" }, new Date());
      const entry = (await store.find(user, "h.example"))!;
      const holder = new Client({ connectionString: runDatabaseUrl("postgres") });
      await holder.connect();
      try {
        await holder.query("BEGIN");
        await holder.query('SELECT id FROM scm_token_entry WHERE id = $1 FOR UPDATE', [entry.id]);
        await ds.query("ALTER DATABASE " + `"${(ds.options as { database: string }).database}"` + " SET lock_timeout = '200ms'");
        const shortWaits = await openTestDataSource(kind, 1);
        try {
          const error = await new TokenStore(shortWaits).markDraining(entry.id, entry.version, new Date()).then(() => undefined, (e: unknown) => e);
          expect(error).to.be.instanceOf(StorageError);
          expect([(error as StorageError).driverCode, (error as StorageError).transient]).to.deep.equal(["55P03", true]);
        } finally {
          await closeDataSource(shortWaits);
          await ds.query("ALTER DATABASE " + `"${(ds.options as { database: string }).database}"` + " RESET lock_timeout");
        }
      } finally {
        await holder.query("ROLLBACK");
        await holder.end();
      }
    });

    it("the migration lock is an advisory lock: a second migrator waits for it and gives up with MigrationLockTimeoutError", async () => {
      const holder = new Client({ connectionString: runDatabaseUrl("postgres") });
      await holder.connect();
      try {
        await holder.query("SELECT pg_advisory_lock(hashtext('scm_token_service_migrations'))");
        const started = Date.now();
        const error = await runScmTokenServiceMigrations(ds, 300).then(() => undefined, (e: unknown) => e);
        expect(error).to.be.instanceOf(MigrationLockTimeoutError);
        expect(Date.now() - started).to.be.within(250, 5000);
        expect((error as Error).message).to.include("pg_locks");
        const zero = await runScmTokenServiceMigrations(ds, 0).then(() => undefined, (e: unknown) => e);
        expect(zero).to.be.instanceOf(MigrationLockTimeoutError);
        await holder.query("SELECT pg_advisory_unlock(hashtext('scm_token_service_migrations'))");
        expect(await runScmTokenServiceMigrations(ds, 300)).to.deep.equal([]);
      } finally {
        await holder.end();
      }
    });
  });
}
