import { expect } from "chai";
import type { DataSource } from "typeorm";
import { StorageError } from "../../src/errors";
import { SqlRunner } from "../../src/storage/sql-runner";
import { eventually, settle } from "../concurrency/harness";
import { openRawConnection, openTestDataSource, rawQuery, serverKinds, type RawConnection } from "../support/databases";

/**
 * A statement the server rolls back as a deadlock's victim is sent again by the library (every
 * statement runs on its own, so a victim applied nothing). Found by the take-once reaper test: a
 * take's DELETE lost a deadlock against the reaper's batch DELETE on MariaDB and failed for nothing.
 */

const FILLER_ROWS = 100;

/**
 * True once row 1 of `table` is locked by someone else (the library's UPDATE, which then waits for
 * row 2): a locking read that refuses to wait fails. Not the servers' lock-wait views: MariaDB fills
 * INNODB_TRX from a cache that a reader polling more often than every 100 ms never sees refreshed.
 */
async function rowOneLocked(observer: RawConnection, table: string): Promise<boolean> {
  try {
    await observer.query(`SELECT id FROM ${table} WHERE id = 1 FOR UPDATE NOWAIT`);
    return false;
  } catch {
    return true;
  }
}

describe("trust: a statement that loses a deadlock is sent again", function () {
  this.timeout(30_000);

  for (const kind of serverKinds()) {
    describe(kind, () => {
      let dataSource: DataSource;
      let other: RawConnection;
      let observer: RawConnection;
      let table: string;

      beforeEach(async () => {
        dataSource = await openTestDataSource(kind, 2);
        other = await openRawConnection(kind);
        observer = await openRawConnection(kind);
        table = `deadlock_probe_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
        await rawQuery(dataSource, `CREATE TABLE ${table} (id INT PRIMARY KEY, v INT NOT NULL)`);
        const ids = Array.from({ length: FILLER_ROWS + 2 }, (_, i) => i + 1);
        await rawQuery(dataSource, `INSERT INTO ${table} (id, v) VALUES ${ids.map((id) => `(${id}, 0)`).join(", ")}`);
      });

      afterEach(async () => {
        await other?.query("ROLLBACK").catch(() => undefined);
        await other?.close();
        await observer?.close();
        await rawQuery(dataSource, `DROP TABLE ${table}`);
      });

      it("the library's UPDATE, chosen as the victim, is applied once the other transaction commits; the caller sees no error", async () => {
        // The other transaction: heavy (it changed 100 rows, so InnoDB picks the library's one-row
        // statement as the victim; on PostgreSQL the victim is the one that waited first, the library's)
        // and holding row 2.
        await other.query("BEGIN");
        await other.query(`UPDATE ${table} SET v = v + 1 WHERE id > 2`);
        await other.query(`UPDATE ${table} SET v = v + 1 WHERE id = 2`);
        // The library locks row 1, then waits for row 2.
        const runner = new SqlRunner(dataSource, { direct: true });
        const libraryUpdate = runner.affected("probe a deadlock", `UPDATE ${table} SET v = v + 10 WHERE id IN (1, 2)`, []);
        const settled = settle(libraryUpdate);
        await eventually("the library's UPDATE holds row 1 (and waits for row 2)", async () => (await rowOneLocked(observer, table)) || undefined, 10_000);
        // The other transaction now wants row 1: a deadlock. Its statement goes through once the victim rolled back.
        await other.query(`UPDATE ${table} SET v = v + 1 WHERE id = 1`);
        await other.query("COMMIT");

        const outcome = await settled;
        expect(outcome, "the caller gets the affected rows, not the deadlock").to.deep.equal({ ok: true, value: 2 });
        const rows = (await rawQuery<Array<{ id: unknown; v: unknown }>>(dataSource, `SELECT id, v FROM ${table} WHERE id <= 3 ORDER BY id`)).map((r) => [Number(r.id), Number(r.v)]);
        expect(rows, "both transactions applied, each once").to.deep.equal([
          [1, 11],
          [2, 11],
          [3, 1],
        ]);
      });
    });
  }
});

describe("trust: deadlock resends are bounded, and only deadlocks are resent", () => {
  /** A DataSource whose mysql2 pool answers every statement with `code`, counting the statements sent. */
  function failingMysql(code: string): { dataSource: DataSource; sent: () => number } {
    let sent = 0;
    const connection = {
      query: (_sql: string, _params: unknown[], callback: (error: Error) => void) => {
        sent++;
        setImmediate(() => callback(Object.assign(new Error(code), { code, errno: 1213 })));
      },
      release: () => undefined,
      destroy: () => undefined,
    };
    const pool = { getConnection: (callback: (error: null, c: typeof connection) => void) => setImmediate(() => callback(null, connection)) };
    return { dataSource: { options: { type: "mariadb" }, driver: { pool } } as unknown as DataSource, sent: () => sent };
  }

  it("a statement that keeps losing deadlocks is sent three times, then its StorageError reaches the caller", async () => {
    const { dataSource, sent } = failingMysql("ER_LOCK_DEADLOCK");
    const error = await new SqlRunner(dataSource, { direct: true }).affected("write a token entry", "UPDATE t SET v = 1", []).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(StorageError).and.to.include({ driverCode: "ER_LOCK_DEADLOCK", transient: true });
    expect(sent()).to.equal(3);
  });

  it("reads are resent too; a lock-wait timeout (it already waited its full time) and a lost connection are not", async () => {
    const read = failingMysql("ER_LOCK_DEADLOCK");
    await new SqlRunner(read.dataSource, { direct: true }).rows("read a token entry", "SELECT 1", []).catch(() => undefined);
    expect(read.sent(), "deadlock on a read").to.equal(3);
    for (const code of ["ER_LOCK_WAIT_TIMEOUT", "PROTOCOL_CONNECTION_LOST", "ER_DUP_ENTRY"]) {
      const { dataSource, sent } = failingMysql(code);
      const error = await new SqlRunner(dataSource, { direct: true }).affected("write a token entry", "UPDATE t SET v = 1", []).then(() => undefined, (e: unknown) => e);
      expect(error, code).to.be.instanceOf(StorageError).and.to.include({ driverCode: code });
      expect(sent(), code).to.equal(1);
    }
  });
});
