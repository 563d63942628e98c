import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { DataSource } from "typeorm";
import { toSqlDate } from "../../src/storage/sql-values";
import { dbKinds, type DbKind, rawQuery } from "../support/databases";
import { takeOnceFixture, type TakeOnceFixture } from "./support/take-once-fixture";

/** Expired rows the bulk test inserts; override with REAPER_ROWS (e.g. REAPER_ROWS=1000000 for a soak run). */
const BULK_ROWS: Record<DbKind, number> = {
  // 50k: far more than any batch, and the whole suite stays within its time budget on three databases.
  mariadb: Number(process.env.REAPER_ROWS ?? 50_000),
  postgres: Number(process.env.REAPER_ROWS ?? 50_000),
  sqljs: Number(process.env.REAPER_ROWS ?? 20_000), // sql.js inserts ~8k rows/s; 100k works too (≈ 18 s)
};
const INSERT_CHUNK = 1000;
const FIFTEEN_MINUTES = 15 * 60_000;

/** Multi-row INSERTs through dataSource.query: rows that expired up to an hour before `now`. */
async function insertExpired(dataSource: DataSource, count: number, now: Date): Promise<void> {
  const ciphertext = `v1:test:${randomBytes(12).toString("base64url")}:${randomBytes(16).toString("base64url")}:${randomBytes(48).toString("base64url")}`;
  const createdAt = toSqlDate(new Date(now.getTime() - 2 * 60 * 60_000));
  for (let start = 0; start < count; start += INSERT_CHUNK) {
    const n = Math.min(INSERT_CHUNK, count - start);
    const params: unknown[] = [];
    for (let i = 0; i < n; i++) {
      params.push(randomBytes(32).toString("hex"), ciphertext, toSqlDate(new Date(now.getTime() - 1 - ((start + i) % 3_600_000))), createdAt);
    }
    await rawQuery(dataSource, 
      `INSERT INTO scm_secret (id, ciphertext, purpose, state, reference, expiresAt, createdAt) VALUES ${Array.from({ length: n }, () => "(?, ?, 'bulk', 'created', NULL, ?, ?)").join(", ")}`,
      params,
    );
  }
}

async function countExpired(dataSource: DataSource, now: Date): Promise<number> {
  const [row] = (await rawQuery(dataSource, "SELECT COUNT(*) AS n FROM scm_secret WHERE expiresAt <= ?", [toSqlDate(now)])) as Array<{ n: unknown }>;
  return Number(row.n);
}

for (const kind of dbKinds()) {
  describe(`TakeOnceSecrets reaper on ${kind}`, function () {
    let f: TakeOnceFixture;
    afterEach(async () => f?.close());

    it(`deletes ${BULK_ROWS[kind]} expired rows in bounded batches, two replicas at once, while creates and takes go on; live secrets are untouched`, async function () {
      this.timeout(120_000);
      f = await takeOnceFixture(kind, { poolSize: 10 });
      const now = f.clock.now();
      const live = await Promise.all(Array.from({ length: 200 }, async (_, i) => ({ value: `live-${i}`, ...(await f.secrets.create(`live-${i}`, { expiresInMs: 60 * 60_000 })) })));

      const insertStart = performance.now();
      await insertExpired(f.dataSource, BULK_ROWS[kind], now);
      const insertMs = performance.now() - insertStart;
      expect(await countExpired(f.dataSource, now)).to.equal(BULK_ROWS[kind]);

      let reaping = true;
      const traffic = (async () => {
        let operations = 0;
        while (reaping) {
          const value = `traffic-${operations}`;
          const { id } = await f.secrets.create(value, { expiresInMs: 60_000 });
          expect(await f.secrets.take(id)).to.equal(value);
          operations++;
        }
        return operations;
      })();
      const reapStart = performance.now();
      const deleted = await Promise.all([f.secrets.reapExpired({ batchSize: 1000 }), f.replica().reapExpired({ batchSize: 1000 })]).finally(() => (reaping = false));
      const reapMs = performance.now() - reapStart;
      const operations = await traffic;

      expect(deleted[0] + deleted[1], "each expired row deleted exactly once across both replicas").to.equal(BULK_ROWS[kind]);
      expect(await countExpired(f.dataSource, now)).to.equal(0);
      expect(operations, "create/take pairs completed during the reap").to.be.greaterThan(0);
      for (const secret of live) expect(await f.secrets.take(secret.id), secret.value).to.equal(secret.value);
      console.log(
        `      ${kind}: inserted ${BULK_ROWS[kind]} rows in ${Math.round(insertMs)} ms (${Math.round(BULK_ROWS[kind] / (insertMs / 1000))} rows/s); ` +
          `reaped in ${Math.round(reapMs)} ms (${Math.round(BULK_ROWS[kind] / (reapMs / 1000))} rows/s, replicas ${deleted.join("+")}) with ${operations} create+take pairs alongside`,
      );
    });

    it("maxBatches bounds one run; the next run finishes the job", async () => {
      f = await takeOnceFixture(kind);
      const now = f.clock.now();
      await insertExpired(f.dataSource, 25, now);
      expect(await f.secrets.reapExpired({ batchSize: 10, maxBatches: 2 })).to.equal(20);
      expect(await countExpired(f.dataSource, now)).to.equal(5);
      expect(await f.secrets.reapExpired({ batchSize: 10 })).to.equal(5);
      expect(await countExpired(f.dataSource, now)).to.equal(0);
    });

    describe("crash-safe ordering: create → act → update", () => {
      class Crash extends Error {}
      type Step = "create" | "act" | "update" | "never";

      /** A workspace start that crashes right after `crashAfter`; the "workspace" is a record of what it was given. */
      async function startWorkspace(crashAfter: Step, workspaces: Map<string, string>, workspaceId: string): Promise<string> {
        const { id } = await f.secrets.create(`git-token-for-${workspaceId}`, { expiresInMs: FIFTEEN_MINUTES, purpose: "workspace-start" });
        if (crashAfter === "create") throw new Crash();
        workspaces.set(workspaceId, id); // act: the workspace now knows the id
        if (crashAfter === "act") throw new Crash();
        await f.secrets.attachReference(id, workspaceId);
        if (crashAfter === "update") throw new Crash();
        return id;
      }

      for (const crashAfter of ["create", "act", "update"] as const) {
        it(`a crash after ${crashAfter} leaves a row that the reaper deletes once it expires, and no orphan past expiry`, async () => {
          f = await takeOnceFixture(kind);
          const workspaces = new Map<string, string>();
          const before = new Set(((await rawQuery(f.dataSource, "SELECT id FROM scm_secret")) as Array<{ id: string }>).map((r) => r.id));
          const error = await startWorkspace(crashAfter, workspaces, `ws-${crashAfter}`).catch((e: unknown) => e);
          expect(error).to.be.instanceOf(Crash);
          const rows = ((await rawQuery(f.dataSource, "SELECT id, state, reference FROM scm_secret")) as Array<{ id: string; state: string; reference: string | null }>).filter((r) => !before.has(r.id));
          expect(rows).to.have.length(1);
          expect(rows[0]).to.include(crashAfter === "update" ? { state: "referenced", reference: `ws-${crashAfter}` } : { state: "created", reference: null });

          // The run's database is shared with other files of this worker: judge this row, not the reaper's totals.
          await f.secrets.reapExpired();
          expect(await f.secrets.describe(rows[0].id), "nothing is reaped before expiry").to.not.equal(undefined);
          f.clock.advance(FIFTEEN_MINUTES);
          expect(await f.secrets.reapExpired()).to.be.at.least(1);
          expect(await f.secrets.describe(rows[0].id)).to.equal(undefined);
          expect(await countExpired(f.dataSource, f.clock.now())).to.equal(0);
          // A workspace that got the id before the crash cannot take the secret after expiry.
          const id = workspaces.get(`ws-${crashAfter}`);
          if (id) expect(await f.secrets.take(id, { purpose: "workspace-start" })).to.equal(undefined);
        });
      }

      it("without a crash: the workspace takes the secret and nothing is left to reap; if it takes it before the update, attachReference reports false", async () => {
        f = await takeOnceFixture(kind);
        const workspaces = new Map<string, string>();
        const id = await startWorkspace("never", workspaces, "ws-ok");
        expect(await f.secrets.take(id, { purpose: "workspace-start" })).to.equal("git-token-for-ws-ok");
        const fast = await f.secrets.create("fast", { expiresInMs: FIFTEEN_MINUTES });
        expect(await f.secrets.take(fast.id)).to.equal("fast"); // the consumer was faster than step 3
        expect(await f.secrets.attachReference(fast.id, "ws-fast")).to.equal(false);
        // Nothing of this workspace start is left for the reaper (the database is shared with other files: judge these rows).
        const left = (await rawQuery(f.dataSource, "SELECT id FROM scm_secret WHERE id IN (?, ?)", [id, fast.id])) as unknown[];
        expect(left).to.have.length(0);
      });
    });
  });
}
