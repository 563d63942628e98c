import { expect } from "chai";
import { TokenStore } from "../../src/storage/token-store";
import { dbKinds, rawQuery } from "../support/databases";
import { Collector, HOST, cli, dropCliDatabases, migratedDatabaseUrl, newKey, serviceWithKeys, withDataSource } from "./cli-harness";

const HOUR = 3_600_000;

/** Stores entries straight through the store (ciphertexts are placeholders: reap never decrypts). */
async function seed(url: string, rows: { userId: string; expiresInMs?: number; refreshable: boolean; reauthorize?: boolean }[]): Promise<void> {
  await withDataSource(url, async (ds) => {
    const store = new TokenStore(ds);
    const now = new Date();
    for (const row of rows) {
      await store.upsert(
        row.userId,
        HOST,
        {
          accessTokenCiphertext: "v1:k:placeholder:placeholder:placeholder",
          refreshTokenCiphertext: row.refreshable ? "v1:k:placeholder:placeholder:placeholder" : undefined,
          scopes: ["repo"],
          reuse: "whenPossible",
          expiryDate: row.expiresInMs === undefined ? undefined : new Date(now.getTime() + row.expiresInMs),
        },
        now,
      );
      if (row.reauthorize) {
        const entry = (await store.find(row.userId, HOST))!;
        await store.markReauthorizationRequired(entry.id, entry.version, "invalid_grant");
      }
    }
  });
}

async function remainingUsers(url: string): Promise<string[]> {
  return withDataSource(url, async (ds) => ((await rawQuery(ds, "SELECT userId FROM scm_token_entry ORDER BY userId")) as { userId: string }[]).map((r) => r.userId));
}

for (const kind of dbKinds()) {
  describe(`scm-token-service reap on ${kind}`, () => {
    after(dropCliDatabases);

    it("deletes exactly the entries that can never be handed out again, in batches, and prints a summary line", async () => {
      const url = await migratedDatabaseUrl(kind);
      await seed(url, [
        ...["dead-1", "dead-2", "dead-3", "dead-4", "dead-5"].map((userId) => ({ userId, expiresInMs: -HOUR, refreshable: false })),
        { userId: "dead-marked", expiresInMs: -HOUR, refreshable: true, reauthorize: true },
        { userId: "keep-expired-refreshable", expiresInMs: -HOUR, refreshable: true },
        { userId: "keep-marked-not-expired", expiresInMs: HOUR, refreshable: true, reauthorize: true },
        { userId: "keep-live", expiresInMs: HOUR, refreshable: false },
        { userId: "keep-never-expires", refreshable: false },
      ]);
      const run = await cli(["reap", "--database-url", url, "--batch-size", "2"]);
      expect(run.code, run.stderr).to.equal(0);
      // 6 dead rows in batches of 2: three full batches and a fourth that finds nothing.
      expect(run.stdout).to.match(/^Reaped 6 dead token entries in 4 batch\(es\), \d+\.\d\d s; removed 0 ended hold\(s\)\.\n$/);
      expect(run.stderr, "no progress bar when stderr is not a terminal").to.equal("");
      expect(await remainingUsers(url)).to.deep.equal(["keep-expired-refreshable", "keep-live", "keep-marked-not-expired", "keep-never-expires"]);

      const again = await cli(["reap"], { env: { DATABASE_URL: url } });
      expect(again.stdout).to.include("Reaped 0 dead token entries in 1 batch(es)");
    });

    it("--max-batches stops early and says that more may remain; a rerun continues", async () => {
      const url = await migratedDatabaseUrl(kind);
      await seed(url, ["a", "b", "c", "d", "e"].map((userId) => ({ userId, expiresInMs: -HOUR, refreshable: false })));
      const first = await cli(["reap", "--database-url", url, "--batch-size", "2", "--max-batches", "1"]);
      expect(first.code).to.equal(0);
      expect(first.stdout).to.include("Reaped 2 dead token entries in 1 batch(es)").and.include("Stopped at --max-batches 1; more dead entries may remain: run again.");
      expect(await remainingUsers(url)).to.have.length(3);
      const second = await cli(["reap", "--database-url", url, "--batch-size", "2"]);
      expect(second.stdout).to.include("Reaped 3 dead token entries in 2 batch(es)").and.not.include("Stopped");
      expect(await remainingUsers(url)).to.deep.equal([]);
    });

    it("deletes 250 entries per batch unless told otherwise, as reapExpired() does (the shared, paced reaper)", async () => {
      const url = await migratedDatabaseUrl(kind);
      await seed(url, Array.from({ length: 510 }, (_, k) => ({ userId: `dead-${String(k).padStart(3, "0")}`, expiresInMs: -HOUR, refreshable: false })));
      const run = await cli(["reap", "--database-url", url, "--max-batches", "1"]);
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.include("Reaped 250 dead token entries in 1 batch(es)").and.include("Stopped at --max-batches 1");
      const service = await serviceWithKeys(url, [newKey("k1")]);
      try {
        expect(await service.reapExpired({ maxBatches: 1 })).to.equal(250);
      } finally {
        await service.close();
      }
      expect(await remainingUsers(url)).to.have.length(10);
    });

    it("removes hand-out holds that ended more than an hour ago", async () => {
      const url = await migratedDatabaseUrl(kind);
      await seed(url, [{ userId: "holder", expiresInMs: HOUR, refreshable: true }]);
      await withDataSource(url, async (ds) => {
        const store = new TokenStore(ds);
        const entry = (await store.find("holder", HOST))!;
        const now = new Date();
        for (const heldUntil of [new Date(Date.now() - 2 * HOUR), new Date(Date.now() - 2 * HOUR), new Date(Date.now() + HOUR)]) {
          expect(await store.insertHold(entry.id, entry.version, heldUntil, now, { duringDrain: false })).to.be.a("string");
        }
      });
      const run = await cli(["reap", "--database-url", url]);
      expect(run.stdout).to.include("Reaped 0 dead token entries").and.include("removed 2 ended hold(s)");
      expect(await withDataSource(url, (ds) => rawQuery(ds, "SELECT id FROM scm_token_hold"))).to.have.length(1);
    });

    it("draws its progress on stderr when stderr is a terminal, and keeps stdout to the summary", async () => {
      const url = await migratedDatabaseUrl(kind);
      await seed(url, ["a", "b", "c"].map((userId) => ({ userId, expiresInMs: -HOUR, refreshable: false })));
      const stderr = new Collector(true);
      const run = await cli(["reap", "--database-url", url, "--batch-size", "1"], { stderr });
      expect(run.code).to.equal(0);
      expect(stderr.text).to.include("reap | 3 dead entries deleted in 4 batch(es)");
      expect(run.stdout).to.match(/^Reaped 3 dead token entries in 4 batch\(es\)/).and.not.match(/\x1b/);
    });
  });
}
