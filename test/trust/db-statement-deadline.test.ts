import { expect } from "chai";
import { DataSource } from "typeorm";
import { ConfigurationError, StorageError } from "../../src/errors";
import { dataSourceOptionsFromUrl } from "../../src/storage/data-source";
import { createTestTokenService, type TestTokenService } from "../../src/testing/create-test-token-service";
import { DbFaultProxy } from "../../src/testing/db-fault-proxy";
import { closeDataSource, openTestDataSource, runDatabaseUrl, serverKinds } from "../support/databases";
import { uniqueUser } from "../support/service-fixture";

/**
 * Every statement has a deadline: with the database connection open but silent (a network partition,
 * here a black-holed proxy), a hand-out fails with a transient StorageError (STATEMENT_TIMEOUT) within
 * statementTimeoutMs instead of hanging, and the service works again once the network heals.
 */

const DEADLINE_MS = 300;

/** Settles within `boundMs` (real time), or says it hung. */
async function within<T>(promise: Promise<T>, boundMs: number): Promise<{ value?: T; error?: unknown; hung?: true; ms: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<{ hung: true; ms: number }>((resolve) => {
    timer = setTimeout(() => resolve({ hung: true, ms: Date.now() - started }), boundMs);
  });
  const settled = promise.then(
    (value) => ({ value, ms: Date.now() - started }),
    (error: unknown) => ({ error, ms: Date.now() - started }),
  );
  try {
    return await Promise.race([settled, hung]);
  } finally {
    clearTimeout(timer);
  }
}

describe("trust: statement deadline (statementTimeoutMs)", function () {
  this.timeout(20_000);

  it("refuses a statementTimeoutMs that is not a positive number at start-up", async () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      let error: unknown;
      try {
        await createTestTokenService({ serviceOptions: { statementTimeoutMs: bad } }).then((t) => t.close());
      } catch (e) {
        error = e;
      }
      expect(error, String(bad)).to.be.instanceOf(ConfigurationError);
      expect((error as Error).message).to.include("statementTimeoutMs");
    }
  });

  for (const server of serverKinds()) describe(`behind a fault proxy (${server})`, () => {
  let proxy: DbFaultProxy;
  let dataSource: DataSource;
  let t: TestTokenService;

  beforeEach(async () => {
    await closeDataSource(await openTestDataSource(server, 1)); // makes sure the run's database exists
    proxy = await DbFaultProxy.start({ target: runDatabaseUrl(server) });
    dataSource = new DataSource(dataSourceOptionsFromUrl(proxy.url, { poolSize: 2 }));
    await dataSource.initialize();
    t = await createTestTokenService({ dataSource, serviceOptions: { statementTimeoutMs: DEADLINE_MS } });
  });
  afterEach(async () => {
    proxy.pass();
    await t.close();
    await dataSource.destroy().catch(() => undefined);
    await proxy.close();
  });

  it("a black-holed connection: the hand-out fails with a transient STATEMENT_TIMEOUT within the deadline, then works again", async () => {
    const userId = uniqueUser("deadline");
    await t.connectUser(userId);
    proxy.blackHole();
    const result = await within(t.service.getTokenForHost(userId, t.host), 5_000);
    expect(result.hung, "the hand-out still waited after 5 s").to.equal(undefined);
    expect(result.error).to.be.instanceOf(StorageError);
    const error = result.error as StorageError;
    expect(error.driverCode).to.equal("STATEMENT_TIMEOUT");
    expect(error.transient).to.equal(true);
    expect(result.ms).to.be.within(DEADLINE_MS - 20, DEADLINE_MS + 1_500);
    proxy.pass();
    const again = await within(t.service.getTokenForHost(userId, t.host), 5_000);
    expect(again.error).to.equal(undefined);
    expect(again.value?.value).to.be.a("string");
  });

  it("no connection to be had (the pool must open one into the black hole): fails within the deadline too", async () => {
    const userId = uniqueUser("deadline");
    await t.connectUser(userId);
    proxy.cut(100); // resets the pooled connections (the pool drops them): the next statement needs a new one
    await proxy.passing();
    proxy.blackHole(); // … whose handshake never gets an answer
    const result = await within(t.service.getTokenForHost(userId, t.host), 5_000);
    expect(result.hung, "the hand-out still waited after 5 s").to.equal(undefined);
    expect((result.error as StorageError).driverCode).to.equal("STATEMENT_TIMEOUT");
    expect((result.error as StorageError).message).to.include("a connection");
  });
});
  });
