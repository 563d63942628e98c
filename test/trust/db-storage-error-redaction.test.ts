import { expect } from "chai";
import { randomBytes, randomUUID } from "node:crypto";
import { inspect } from "node:util";
import { DataSource } from "typeorm";
import { StorageError } from "../../src/errors";
import { SecretStore } from "../../src/secrets/take-once/secret-store";
import { dataSourceOptionsFromUrl } from "../../src/storage/data-source";
import { KeyRotationStore } from "../../src/storage/key-rotation-store";
import { SqlRunner } from "../../src/storage/sql-runner";
import { TokenStore } from "../../src/storage/token-store";
import { RUN_DATABASE, adminQuery, closeDataSource, createDatabaseSql, dbKinds, dropDatabaseSql, openTestDataSource, rawQuery, serverUrl, type ServerKind } from "../support/databases";
import { uniqueUser } from "../support/service-fixture";

/**
 * A failing statement's StorageError must not carry the statement's parameters — the id of a
 * take-once secret is a bearer capability, and user ids and ciphertexts are private — neither in its
 * message nor anywhere an error reporter looks (util.inspect with depth, JSON.stringify, the cause
 * chain), while keeping what an operator needs: driver code, errno, SQL state.
 */

function everythingVisible(error: unknown): string {
  return [inspect(error, { depth: 10, showHidden: true }), JSON.stringify(error), (error as Error).stack ?? "", String(error)].join("\n");
}

async function caught(promise: Promise<unknown>): Promise<StorageError> {
  try {
    await promise;
  } catch (e) {
    expect(e).to.be.instanceOf(StorageError);
    return e as StorageError;
  }
  throw new Error("the statement did not fail");
}

for (const db of dbKinds()) {
  describe(`trust: StorageError carries no SQL parameters (${db})`, function () {
    let dataSource: DataSource;
    before(async () => {
      dataSource = await openTestDataSource(db, 2);
    });
    after(async () => {
      await closeDataSource(dataSource);
    });

    it("a duplicate take-once secret id: neither the id nor the ciphertext is visible", async () => {
      const store = new SecretStore(dataSource);
      const id = `secret-${randomBytes(18).toString("base64url")}`;
      const ciphertext = `v1:${randomBytes(24).toString("base64url")}`;
      const row = { id, ciphertext, purpose: "clone", expiresAt: new Date("2030-01-01T00:00:00Z"), createdAt: new Date("2026-01-01T00:00:00Z") };
      await store.insert(row);
      const error = await caught(store.insert(row));
      const visible = everythingVisible(error);
      expect(visible).not.to.include(id);
      expect(visible).not.to.include(id.slice(7, 20)); // no fragment either
      expect(visible).not.to.include(ciphertext);
      expect(visible).not.to.match(/INSERT INTO/i);
      expect(error.transient).to.equal(false);
      if (db === "mariadb") {
        expect(error.driverCode).to.equal("ER_DUP_ENTRY");
        expect(error.errno).to.equal(1062);
        expect(error.sqlState).to.equal("23000");
      }
      if (db === "postgres") expect([error.driverCode, error.sqlState]).to.deep.equal(["23505", "23505"]); // unique_violation
      expect(error.message).to.match(/insert the scm_secret table/);
    });

    it("a short user id in a failing token-table statement is not visible (no 24-character rule to hide behind)", async () => {
      const userId = uniqueUser("u").slice(0, 14);
      const runner = new SqlRunner(dataSource, { direct: true });
      // A statement the database rejects after binding the parameters: an unknown column.
      const error = await caught(runner.rows("read the token table", "SELECT noSuchColumn FROM scm_token_entry WHERE userId = ? AND host = ?", [userId, "gitlab.example.com"]));
      const visible = everythingVisible(error);
      expect(visible).not.to.include(userId);
      expect(visible).not.to.include("gitlab.example.com");
      expect(visible).not.to.match(/WHERE userId/);
      if (db === "mariadb") {
        expect(error.driverCode).to.equal("ER_BAD_FIELD_ERROR");
        expect(error.errno).to.equal(1054);
      } else if (db === "postgres") {
        expect(error.driverCode).to.equal("42703"); // undefined_column
        expect(error.message).to.match(/column "noSuchColumn" does not exist/);
      } else {
        expect(error.message).to.match(/no such column: noSuchColumn/); // sql.js reports no code; the message says enough
      }
    });

    it("a value quoted in the driver's message is replaced, schema names are kept", async function () {
      if (db === "sqljs") this.skip(); // SQLite's messages name columns, not values
      const store = new TokenStore(dataSource);
      const userId = `u-${randomUUID().slice(0, 8)}`;
      await store.upsert(userId, "h.example", { accessTokenCiphertext: "a", scopes: [], reuse: "whenPossible" }, new Date());
      const [row] = (await rawQuery(dataSource, "SELECT id FROM scm_token_entry WHERE userId = ?", [userId])) as Array<{ id: string }>;
      // Insert a second row with the same (userId, host): the unique index quotes both values.
      const runner = new SqlRunner(dataSource, { direct: true });
      const error = await caught(
        runner.affected("insert into the token table", "INSERT INTO scm_token_entry (id, userId, host, accessToken, scopes, reuse, updatedAt, createdAt, version) VALUES (?, ?, ?, 'x', '', 'whenPossible', NOW(), NOW(), 1)", [randomUUID(), userId, "h.example"]),
      );
      const visible = everythingVisible(error);
      expect(visible).not.to.include(userId);
      expect(visible).not.to.include(row!.id);
      // PostgreSQL puts the values in the error's detail ("Key (…)=(…) already exists"), which is not kept.
      expect(error.message).to.match(db === "postgres" ? /duplicate key value violates unique constraint "IDX_scm_token_entry_user_host"/ : /Duplicate entry '\?' for key '[^?']+'/);
    });

    it("key rotation (rotate-keys) on a database without the tables: a StorageError without the ciphertexts it was writing", async () => {
      // An empty database: every statement fails after its parameters were bound.
      let empty: DataSource;
      let dropEmpty = async () => undefined as void;
      if (db === "sqljs") {
        empty = new DataSource(dataSourceOptionsFromUrl("sqljs::memory:"));
      } else {
        const name = `${RUN_DATABASE}_empty`;
        await adminQuery(db, [createDatabaseSql(db, name)]);
        dropEmpty = () => adminQuery(db as ServerKind, [dropDatabaseSql(db as ServerKind, name)]);
        empty = new DataSource(dataSourceOptionsFromUrl(`${serverUrl(db)}/${name}`, { poolSize: 1 }));
      }
      await empty.initialize();
      try {
        const store = new KeyRotationStore(empty);
        const row = { id: randomUUID(), userId: uniqueUser("kr"), host: "gitlab.example.com", accessTokenCiphertext: `v1:old:${randomBytes(20).toString("base64url")}`, refreshTokenCiphertext: `v1:old:${randomBytes(20).toString("base64url")}`, version: 3 };
        const fresh = `v1:new:${randomBytes(20).toString("base64url")}`;
        const error = await caught(store.replaceCiphertexts(row, fresh, fresh));
        const visible = everythingVisible(error);
        for (const value of [row.id, row.userId, row.accessTokenCiphertext, row.refreshTokenCiphertext, fresh]) expect(visible).not.to.include(value);
        expect(error.message).to.include("write re-encrypted tokens");
        if (db === "mariadb") expect(error.driverCode).to.equal("ER_NO_SUCH_TABLE");
        if (db === "postgres") expect(error.driverCode).to.equal("42P01"); // undefined_table
      } finally {
        await empty.destroy();
        await dropEmpty();
      }
    });
  });
}
