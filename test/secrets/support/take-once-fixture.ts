import { randomBytes } from "node:crypto";
import type { DataSource } from "typeorm";
import { KeyRing } from "../../../src/crypto/key-ring";
import { TakeOnceSecrets, type TakeOnceSecretsOptions } from "../../../src/secrets/take-once/take-once-secrets";
import { FakeClock } from "../../../src/testing/fake-clock";
import { RecordingLogger } from "../../../src/testing/recording-logger";
import { closeDataSource, openTestDataSource, type DbKind } from "../../support/databases";

/** TakeOnceSecrets on a database kind, with a FakeClock and a RecordingLogger. */
export interface TakeOnceFixture {
  secrets: TakeOnceSecrets;
  dataSource: DataSource;
  keyRing: KeyRing;
  clock: FakeClock;
  logger: RecordingLogger;
  /** Another instance on the same database (another replica). */
  replica(): TakeOnceSecrets;
  close(): Promise<void>;
}

/**
 * Tests share this run's MariaDB database, so a test that counts rows must only count its own ids;
 * the clock starts at a fixed instant that a test may move forward.
 *
 * @example
 * const f = await takeOnceFixture("mariadb", { poolSize: 20 });
 */
export async function takeOnceFixture(kind: DbKind, options: { poolSize?: number } & TakeOnceSecretsOptions = {}): Promise<TakeOnceFixture> {
  const dataSource = await openTestDataSource(kind, options.poolSize ?? 10);
  const keyRing = new KeyRing([{ id: "test", key: randomBytes(32).toString("base64") }]);
  const clock = new FakeClock("2026-01-01T00:00:00.000Z");
  const logger = new RecordingLogger();
  const make = () => new TakeOnceSecrets(dataSource, keyRing, clock, { logger, maxExpiresInMs: options.maxExpiresInMs });
  return { secrets: make(), dataSource, keyRing, clock, logger, replica: make, close: () => closeDataSource(dataSource) };
}
