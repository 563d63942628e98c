import { expect } from "chai";
import { inspect } from "node:util";
import { DecryptionError, InvalidArgumentError } from "../../src/errors";
import { SECRET_LIMITS } from "../../src/secrets/limits";
import { SecretNotFoundError } from "../../src/secrets/secret-errors";
import { dbKinds, rawQuery } from "../support/databases";
import { takeOnceFixture, type TakeOnceFixture } from "./support/take-once-fixture";

const VALUE = "take-once-SECRET-value-5e1d";

/** Counts DELETE statements sent through query runners of the fixture's data source. */
function countDeletes(f: TakeOnceFixture): { count: number } {
  const counter = { count: 0 };
  if (f.dataSource.options.type === "postgres") return countPostgresDeletes(f, counter);
  const original = f.dataSource.createQueryRunner.bind(f.dataSource);
  f.dataSource.createQueryRunner = (...args: Parameters<typeof original>) => {
    const runner = original(...args);
    const query = runner.query.bind(runner);
    runner.query = ((sql: string, ...rest: unknown[]) => {
      if (sql.startsWith("DELETE")) counter.count++;
      return (query as (sql: string, ...rest: unknown[]) => Promise<unknown>)(sql, ...rest);
    }) as typeof runner.query;
    return runner;
  };
  return counter;
}

type PgCallback = (error: Error | undefined, client: { query: (config: { text: string }, ...rest: unknown[]) => unknown } | undefined, ...rest: unknown[]) => void;
/** On PostgreSQL the stores run on the pg pool (postgres-dialect.ts), not on query runners: count there. */
function countPostgresDeletes(f: TakeOnceFixture, counter: { count: number }): { count: number } {
  const pool = (f.dataSource.driver as unknown as { master: { connect: (callback: PgCallback) => unknown } }).master;
  const connect = pool.connect.bind(pool);
  const wrapped = new WeakSet<object>();
  pool.connect = (callback: PgCallback) =>
    connect((error, client, ...rest) => {
      if (client && !wrapped.has(client)) {
        wrapped.add(client);
        const query = client.query.bind(client);
        client.query = (config, ...args) => {
          if (typeof config === "object" && config.text.startsWith("DELETE")) counter.count++;
          return query(config, ...args);
        };
      }
      callback(error, client, ...rest);
    });
  return counter;
}
const TEN_MINUTES = 10 * 60_000;

for (const kind of dbKinds()) {
  describe(`TakeOnceSecrets on ${kind}`, function () {
    let f: TakeOnceFixture;
    afterEach(async () => f?.close());

    it("the table matches the entity exactly (the schema builder has nothing to change)", async () => {
      f = await takeOnceFixture(kind);
      const sql = await f.dataSource.driver.createSchemaBuilder().log();
      expect(sql.upQueries.map((q) => q.query).filter((q) => q.includes("scm_secret"))).to.deep.equal([]);
    });

    it("create → take returns the value once; the row holds only ciphertext; the id is 64 unguessable hex characters", async () => {
      f = await takeOnceFixture(kind);
      const { id, expiresAt } = await f.secrets.create(VALUE, { expiresInMs: TEN_MINUTES, purpose: "workspace-start" });
      expect(id).to.match(/^[0-9a-f]{64}$/);
      expect(expiresAt.getTime()).to.equal(f.clock.now().getTime() + TEN_MINUTES);
      const [row] = (await rawQuery(f.dataSource, "SELECT * FROM scm_secret WHERE id = ?", [id])) as Record<string, unknown>[];
      expect(JSON.stringify(row)).to.not.contain(VALUE);
      expect(row.state).to.equal("created");
      expect(await f.secrets.take(id)).to.equal(VALUE);
      expect(await f.secrets.take(id)).to.equal(undefined);
      expect(await f.secrets.describe(id)).to.equal(undefined);
    });

    it("round-trips the largest value (32 KiB) through the text column", async () => {
      f = await takeOnceFixture(kind);
      const big = "é".repeat(SECRET_LIMITS.maxTakeOnceValueBytes / 2);
      const { id } = await f.secrets.create(big, { expiresInMs: TEN_MINUTES });
      expect(await f.secrets.take(id)).to.equal(big);
    });

    it("20 concurrent takers: exactly one gets the value (10 rounds)", async () => {
      f = await takeOnceFixture(kind, { poolSize: 20 });
      const replicas = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? f.secrets : f.replica()));
      const deletes = countDeletes(f);
      let contended = 0;
      for (let round = 0; round < 10; round++) {
        const value = `${VALUE}-${round}`;
        const { id } = await f.secrets.create(value, { expiresInMs: TEN_MINUTES });
        const before = deletes.count;
        const results = await Promise.all(replicas.map((r) => r.take(id)));
        expect(results.filter((r) => r !== undefined), `round ${round}`).to.deep.equal([value]);
        expect(await f.secrets.describe(id)).to.equal(undefined);
        if (deletes.count - before > 1) contended++;
      }
      // The race is real: in some rounds several takers read the row and raced on the DELETE.
      expect(contended, "rounds in which more than one taker reached the DELETE").to.be.greaterThan(0);
    });

    it("never returns an expired secret: at expiresAt it is no longer takeable, and it stays for the reaper", async () => {
      f = await takeOnceFixture(kind);
      const { id } = await f.secrets.create(VALUE, { expiresInMs: 60_000 });
      f.clock.advance(59_999);
      const { id: other } = await f.secrets.create(VALUE, { expiresInMs: 60_000 });
      f.clock.advance(1); // exactly at expiresAt of the first
      expect(await f.secrets.take(id)).to.equal(undefined);
      expect(await f.secrets.describe(id)).to.not.equal(undefined);
      expect(await f.secrets.reapExpired()).to.be.at.least(1);
      expect(await f.secrets.describe(id)).to.equal(undefined);
      expect(await f.secrets.take(other)).to.equal(VALUE);
    });

    it("take with a purpose only takes a secret made for that purpose; a mismatch leaves it", async () => {
      f = await takeOnceFixture(kind);
      const { id } = await f.secrets.create(VALUE, { expiresInMs: TEN_MINUTES, purpose: "workspace-start" });
      expect(await f.secrets.take(id, { purpose: "prebuild" })).to.equal(undefined);
      expect(await f.secrets.take(id, { purpose: "workspace-start" })).to.equal(VALUE);
    });

    it("deletes loudly: a second delete, or a delete after take, throws SecretNotFoundError (unless mustExist: false)", async () => {
      f = await takeOnceFixture(kind);
      const { id } = await f.secrets.create(VALUE, { expiresInMs: TEN_MINUTES });
      expect(await f.secrets.delete(id, { mustExist: true })).to.equal(true);
      const error = await f.secrets.delete(id, { mustExist: true }).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(SecretNotFoundError);
      expect((error as Error).message).to.match(/^scm-token-service: delete: no secret with this id exists/).and.not.contain(id);
      expect(await f.secrets.delete(id).catch((e: unknown) => e), "loud by default").to.be.instanceOf(SecretNotFoundError);
      expect(await f.secrets.delete(id, { mustExist: false })).to.equal(false);
      const taken = await f.secrets.create(VALUE, { expiresInMs: TEN_MINUTES });
      await f.secrets.take(taken.id);
      expect(await f.secrets.delete(taken.id, { mustExist: true }).catch((e: unknown) => e)).to.be.instanceOf(SecretNotFoundError);
      const expired = await f.secrets.create(VALUE, { expiresInMs: 1000 });
      f.clock.advance(2000);
      expect(await f.secrets.delete(expired.id), "an expired but unreaped secret is deleted").to.equal(true);
    });

    it("attachReference records the consumer, is idempotent, refuses a second consumer, and reports a secret already taken", async () => {
      f = await takeOnceFixture(kind);
      const { id } = await f.secrets.create(VALUE, { expiresInMs: TEN_MINUTES, purpose: "workspace-start" });
      expect(await f.secrets.attachReference(id, "ws-1234")).to.equal(true);
      expect(await f.secrets.attachReference(id, "ws-1234")).to.equal(true);
      expect(await f.secrets.describe(id)).to.deep.include({ state: "referenced", reference: "ws-1234", purpose: "workspace-start" });
      expect(await f.secrets.attachReference(id, "ws-9999").catch((e: unknown) => e)).to.be.instanceOf(InvalidArgumentError);
      expect(await f.secrets.take(id)).to.equal(VALUE);
      expect(await f.secrets.attachReference(id, "ws-1234")).to.equal(false);
      expect(await f.secrets.attachReference(id, "ws-1234", { mustExist: true }).catch((e: unknown) => e)).to.be.instanceOf(SecretNotFoundError);
    });

    it("a ciphertext moved to another id does not decrypt; the row is kept", async () => {
      f = await takeOnceFixture(kind);
      const a = await f.secrets.create(VALUE, { expiresInMs: TEN_MINUTES });
      const b = await f.secrets.create("other", { expiresInMs: TEN_MINUTES });
      const [row] = (await rawQuery(f.dataSource, "SELECT ciphertext FROM scm_secret WHERE id = ?", [a.id])) as Array<{ ciphertext: string }>;
      await rawQuery(f.dataSource, "UPDATE scm_secret SET ciphertext = ? WHERE id = ?", [row.ciphertext, b.id]);
      expect(await f.secrets.take(b.id).catch((e: unknown) => e)).to.be.instanceOf(DecryptionError);
      expect(await f.secrets.describe(b.id)).to.not.equal(undefined);
    });

    it("refuses bad ids, expiries, values, purposes, references and reaper options with InvalidArgumentError, changing nothing", async () => {
      f = await takeOnceFixture(kind);
      const { id } = await f.secrets.create(VALUE, { expiresInMs: TEN_MINUTES });
      const badIds = ["", "abc", "00000000-0000-0000-0000-000000000000", `${id}0`, id.slice(1), id.toUpperCase(), `${id.slice(0, 63)}g`, Buffer.from(id, "hex").toString("base64url")];
      const attempts: Array<() => Promise<unknown>> = [
        ...badIds.flatMap((bad) => [() => f.secrets.take(bad), () => f.secrets.delete(bad), () => f.secrets.attachReference(bad, "ws"), () => f.secrets.describe(bad)]),
        ...[0, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e-12, 999, SECRET_LIMITS.maxTakeOnceExpiresInMs + 1, 1e308, "60000"].map(
          (ms) => () => f.secrets.create(VALUE, { expiresInMs: ms as number }),
        ),
        () => f.secrets.create("", { expiresInMs: TEN_MINUTES }),
        () => f.secrets.create(VALUE + "x".repeat(SECRET_LIMITS.maxTakeOnceValueBytes), { expiresInMs: TEN_MINUTES }),
        () => f.secrets.create(VALUE + "é".repeat(SECRET_LIMITS.maxTakeOnceValueBytes / 2), { expiresInMs: TEN_MINUTES }),
        () => f.secrets.create(VALUE, { expiresInMs: TEN_MINUTES, purpose: "has space" }),
        () => f.secrets.create(VALUE, { expiresInMs: TEN_MINUTES, purpose: "p".repeat(65) }),
        () => f.secrets.take(id, { purpose: "" }),
        () => f.secrets.attachReference(id, ""),
        () => f.secrets.attachReference(id, "ws\n1"),
        () => f.secrets.attachReference(id, "r".repeat(256)),
        () => f.secrets.reapExpired({ batchSize: 0 }),
        () => f.secrets.reapExpired({ batchSize: 10_001 }),
        () => f.secrets.reapExpired({ batchSize: 1.5 }),
        () => f.secrets.reapExpired({ maxBatches: 0 }),
      ];
      for (const [i, attempt] of attempts.entries()) {
        const error = await attempt().then(() => undefined, (e: unknown) => e);
        expect(error, `attempt ${i}`).to.be.instanceOf(InvalidArgumentError);
        expect((error as Error).message, `attempt ${i}`).to.match(/^scm-token-service: /).and.not.contain(VALUE);
        expect((error as Error).message, `attempt ${i}`).to.not.contain(id);
      }
      expect(await f.secrets.describe(id)).to.deep.include({ state: "created", reference: undefined });
      expect(await f.secrets.take(id)).to.equal(VALUE);
    });

    it("no id or value reaches the logs, the service's JSON or inspect output", async () => {
      f = await takeOnceFixture(kind);
      const created = await f.secrets.create(VALUE, { expiresInMs: 1000, purpose: "p" });
      await f.secrets.take((await f.secrets.create(VALUE, { expiresInMs: TEN_MINUTES })).id);
      f.clock.advance(2000);
      await f.secrets.reapExpired();
      for (const view of [f.logger.text(), JSON.stringify(f.secrets), inspect(f.secrets)]) {
        expect(view).to.not.contain(VALUE);
        expect(view).to.not.contain(created.id);
      }
      expect(f.logger.find("Expired take-once secrets deleted")?.fields).to.include({ batches: 1 });
    });
  });
}
