import { expect } from "chai";
import { TokenStore } from "../../src/storage/token-store";
import { dbKinds, rawQuery } from "../support/databases";
import { serviceOn, uniqueUser } from "../support/service-fixture";

/**
 * reapExpired walks the expiry index with a cursor: entries that are expired but kept (they have a
 * refresh token) are passed once per reap, not once per batch, and every dead entry is deleted.
 */

type Fixture = Awaited<ReturnType<typeof serviceOn>>;
const MIN = 60_000;

function sqlDate(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}

for (const kind of dbKinds()) {
  describe(`reaping on ${kind}`, () => {
    let t: Fixture;
    afterEach(async () => t?.close());

    async function seed(prefix: string, rows: { expiresAtMs: number; refreshable: boolean }[]): Promise<void> {
      for (const [i, r] of rows.entries()) {
        await t.service.storeToken(`${prefix}-${String(i).padStart(3, "0")}`, t.host, { value: `v-${i}`, refreshToken: r.refreshable ? `r-${i}` : undefined, expiryDate: new Date(r.expiresAtMs) });
      }
    }

    it("deletes every dead entry in batches, keeps expired refreshable and live ones, and each batch starts where the last stopped", async () => {
      t = await serviceOn(kind, {}, "private"); // the reaper's totals are judged: no other file's rows
      const prefix = uniqueUser("reap");
      const now = t.clock.now().getTime();
      // Interleaved in expiry order: kept (refreshable) and dead entries; plus live ones.
      const rows = Array.from({ length: 30 }, (_, i) => ({ expiresAtMs: now - (60 - i) * MIN, refreshable: i % 3 === 0 }));
      rows.push({ expiresAtMs: now + 60 * MIN, refreshable: false }, { expiresAtMs: now + 60 * MIN, refreshable: true });
      await seed(prefix, rows);
      const store = (t.service as unknown as { store: TokenStore }).store;
      const selects: string[] = [];
      const sql = (store as unknown as { sql: { rows: (op: string, q: string, p: unknown[]) => Promise<Record<string, unknown>[]> } }).sql;
      const rowsOf = sql.rows.bind(sql);
      sql.rows = (op, q, p) => {
        if (op === "find dead entries") selects.push(q);
        return rowsOf(op, q, p);
      };
      const deleted = await t.service.reapExpired({ batchSize: 4 });
      expect(deleted).to.equal(20);
      const left = (await rawQuery(t.dataSource, `SELECT userId FROM scm_token_entry WHERE userId LIKE ?`, [`${prefix}-%`])) as { userId: string }[];
      expect(left.map((r) => Number(r.userId.slice(-3))).sort((a, b) => a - b)).to.deep.equal([0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31]);
      expect(selects.length).to.equal(6); // 5 full batches of 4, then an empty one
      expect(selects.slice(1).every((q) => q.includes("expiryDate > ?")), "batches after the first continue from the cursor").to.equal(true);
    });

    it("a row that became dead behind the cursor is left for the next reap, which deletes it", async () => {
      t = await serviceOn(kind, {}, "private"); // the reaper's totals are judged: no other file's rows
      const prefix = uniqueUser("reap2");
      const now = t.clock.now().getTime();
      await seed(prefix, [
        { expiresAtMs: now - 50 * MIN, refreshable: true },
        { expiresAtMs: now - 40 * MIN, refreshable: false },
      ]);
      expect(await t.service.reapExpired({ batchSize: 1 })).to.equal(1);
      await rawQuery(t.dataSource, "UPDATE scm_token_entry SET reauthorizationReason = 'invalid_grant' WHERE userId = ?", [`${prefix}-000`]);
      expect(await t.service.reapExpired({ batchSize: 1 })).to.equal(1);
      expect(await rawQuery(t.dataSource, `SELECT userId FROM scm_token_entry WHERE userId LIKE ? AND expiryDate < ?`, [`${prefix}-%`, sqlDate(now)])).to.deep.equal([]);
    });
  });
}
