import { expect } from "chai";
import { Client } from "pg";
import type { DataSource } from "typeorm";
import { StorageError } from "../../src/errors";
import { postgresPoolOf } from "../../src/storage/postgres-dialect";
import { NAMED_LIMIT, lostPreparedStatement, postgresStatement, statementName, toPostgresSql } from "../../src/storage/postgres-statements";
import { SqlRunner } from "../../src/storage/sql-runner";
import { TokenStore } from "../../src/storage/token-store";
import { RecordingLogger } from "../../src/testing/recording-logger";
import { closeDataSource, dbKinds, openTestDataSource, runDatabaseUrl } from "../support/databases";
import { uniqueUser } from "../support/service-fixture";

const FIND = "SELECT id, userId FROM scm_token_entry WHERE userId = ? AND host = ?";

describe("PostgreSQL named prepared statements: which texts get a name (no server needed)", () => {
  it("one text, one name, the same every time; another text, another name; the text in PostgreSQL's spelling", () => {
    const find = postgresStatement(FIND);
    expect(find.text).to.equal(toPostgresSql(FIND));
    expect(find.name).to.match(/^scm_[0-9a-f]{16}$/);
    expect(postgresStatement(`${FIND}`).name).to.equal(find.name);
    expect(postgresStatement("SELECT id FROM scm_token_entry WHERE id = ?").name).to.match(/^scm_/).and.not.equal(find.name);
  });

  it("texts with an IN (?, …) list, whose length varies, are sent unnamed", () => {
    for (const n of [1, 2, 7]) {
      const sql = `DELETE FROM scm_token_hold WHERE id IN (${Array(n).fill("?").join(", ")})`;
      expect(postgresStatement(sql).name, sql).to.equal(undefined);
      expect(postgresStatement(sql).text).to.equal(toPostgresSql(sql));
    }
    expect(postgresStatement("DELETE FROM t WHERE id in ( ?, ?) AND expiresAt <= ?").name).to.equal(undefined);
  });

  it("a pool's connections prepare at most NAMED_LIMIT (100) texts: past that, new texts go unnamed and named ones keep their name", () => {
    const pool = { namedStatements: true, names: new Set<string>() };
    const find = statementName(pool, postgresStatement(FIND));
    expect(find).to.equal(postgresStatement(FIND).name);
    const names = Array.from({ length: 120 }, (_, i) => statementName(pool, postgresStatement(`SELECT ${i} AS n WHERE 1 = ?`)));
    expect(NAMED_LIMIT).to.equal(100);
    expect(names.filter((n) => n !== undefined).length).to.equal(NAMED_LIMIT - 1);
    expect(names.at(-1)).to.equal(undefined);
    expect(statementName(pool, postgresStatement(FIND))).to.equal(find);
    expect(statementName({ namedStatements: true, names: new Set() }, postgresStatement("SELECT 119 AS n WHERE 1 = ?")), "another pool has its own budget").to.match(/^scm_/);
    expect(statementName({ namedStatements: false, names: new Set() }, postgresStatement(FIND)), "named statements switched off").to.equal(undefined);
  });

  it("recognises a connection that lost or never had a statement (26000, 42P05) and a plan whose result type changed (0A000)", () => {
    const pgError = (code: string, message = "x") => Object.assign(new Error(message), { code });
    expect(lostPreparedStatement(pgError("26000", 'prepared statement "scm_1" does not exist'))).to.equal("gone");
    expect(lostPreparedStatement(pgError("42P05", 'prepared statement "scm_1" already exists'))).to.equal("gone");
    expect(lostPreparedStatement(pgError("0A000", "cached plan must not change result type"))).to.equal("stale");
    for (const code of ["0A000", "23505", "40001", "57014"]) expect(lostPreparedStatement(pgError(code)), code).to.equal(undefined);
  });
});

for (const kind of dbKinds().filter((k) => k === "postgres")) {
  describe("PostgreSQL named prepared statements on a real server", () => {
    let ds: DataSource;
    let sql: SqlRunner;
    let store: TokenStore;
    let logger: RecordingLogger;
    let user: string;

    /** The statements prepared on the pool's only connection, and that connection's backend. */
    const prepared = async () => {
      const rows = await sql.rows("r", "SELECT name, statement, generic_plans + custom_plans AS runs, pg_backend_pid() AS pid FROM pg_prepared_statements", []);
      return { names: new Map(rows.map((r) => [String(r.name), { text: String(r.statement), runs: Number(r.runs) }])), pid: Number(rows[0]?.pid) };
    };
    const findName = () => postgresStatement(`SELECT id, userId, host, accessToken, refreshToken, scopes, username, reuse, expiryDate, reservedUntilDate, pinnedUntilDate, reservationSeq, drainingSince, refreshLeaseOwner, refreshLeaseUntil, reauthorizationReason, version FROM scm_token_entry WHERE userId = ? AND host = ?`).name!;

    beforeEach(async () => {
      // One connection: every statement of the test, TypeORM's too, runs on it.
      ds = await openTestDataSource(kind, 1);
      sql = new SqlRunner(ds);
      logger = new RecordingLogger();
      store = new TokenStore(ds, { logger });
      user = uniqueUser("pg-prepared");
      await store.upsert(user, "h.example", { accessTokenCiphertext: "a", scopes: [], reuse: "whenPossible" }, new Date("2026-03-01T10:00:00.000Z"));
    });

    afterEach(async () => {
      await closeDataSource(ds);
    });

    it("the hot-path lookup is prepared once per connection and then only executed", async () => {
      for (let i = 0; i < 3; i++) expect((await store.find(user, "h.example"))?.userId).to.equal(user);
      const { names } = await prepared();
      const find = names.get(findName());
      expect(find, [...names.keys()].join(", ")).to.not.equal(undefined);
      expect(find!.text).to.include('WHERE "userId" = $1 AND host = $2');
      expect(find!.runs).to.equal(3);
    });

    it("a connection ended by the server is replaced, and the new one prepares the statement again", async () => {
      await store.find(user, "h.example");
      const before = await prepared();
      const admin = new Client({ connectionString: runDatabaseUrl("postgres") });
      await admin.connect();
      try {
        await admin.query("SELECT pg_terminate_backend($1)", [before.pid]);
      } finally {
        await admin.end();
      }
      // The pool may not have noticed yet: the first statement can fail (transient), the next gets a new connection.
      let found = await store.find(user, "h.example").catch((e: unknown) => e);
      if (found instanceof StorageError) {
        expect(found.transient, found.driverCode).to.equal(true);
        found = await store.find(user, "h.example");
      }
      expect((found as { userId: string }).userId).to.equal(user);
      const after = await prepared();
      expect(after.pid).to.not.equal(before.pid);
      expect(after.names.get(findName())?.runs).to.equal(1);
    });

    for (const forget of ["DEALLOCATE ALL", "DISCARD ALL"]) {
      it(`${forget} behind pg's back (a pooler in transaction mode, an application on a shared connection): the statement still runs, and the pool goes unnamed`, async () => {
        await store.find(user, "h.example");
        await ds.query(forget);
        expect((await store.find(user, "h.example"))?.userId).to.equal(user);
        expect(postgresPoolOf(ds)?.namedStatements).to.equal(false);
        await store.find(user, "h.example");
        expect((await prepared()).names.size, "nothing prepared on the new connection").to.equal(0);
        const said = logger.records.filter((r) => r.level === "warn" && r.message.startsWith("PostgreSQL lost the library's prepared statements"));
        expect(said, "the switch to unnamed statements is said once, at warn").to.have.length(1);
      });
    }

    it("a plan whose result type changed under it (another replica's migration) is run again unnamed on a new connection; named statements stay on", async () => {
      const table = `scm_prepared_probe_${process.pid}`;
      await ds.query(`CREATE TABLE ${table} (a integer)`);
      try {
        await ds.query(`INSERT INTO ${table} VALUES (1)`);
        const read = () => sql.rows("r", `SELECT a FROM ${table} WHERE a = ?`, [1]);
        expect(await read()).to.deep.equal([{ a: 1 }]);
        await ds.query(`ALTER TABLE ${table} ALTER COLUMN a TYPE bigint`);
        expect(await read()).to.deep.equal([{ a: "1" }]);
        expect(postgresPoolOf(ds)?.namedStatements).to.equal(true);
        expect(await read()).to.deep.equal([{ a: "1" }]);
        expect((await prepared()).names.has(postgresStatement(`SELECT a FROM ${table} WHERE a = ?`).name!)).to.equal(true);
      } finally {
        await ds.query(`DROP TABLE ${table}`);
      }
    });

    it("a named statement's own failure is still a typed StorageError, and its connection keeps serving", async () => {
      const duplicate = "INSERT INTO scm_token_entry (id, userId, host, accessToken, scopes, reuse, updatedAt, createdAt, version) SELECT id, userId, host, accessToken, scopes, reuse, updatedAt, createdAt, 1 FROM scm_token_entry WHERE userId = ?";
      const { pid } = await prepared();
      for (let i = 0; i < 2; i++) {
        const error = await sql.affected("write", duplicate, [user]).then(() => undefined, (e: unknown) => e);
        expect(error).to.be.instanceOf(StorageError);
        expect([(error as StorageError).driverCode, (error as StorageError).transient]).to.deep.equal(["23505", false]);
      }
      const after = await prepared();
      expect(after.pid).to.equal(pid);
      expect(after.names.get(postgresStatement(duplicate).name!)?.runs).to.equal(2);
    });
  });
}
