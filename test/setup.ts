import "reflect-metadata";
import { closeOpenDataSources, dropRunDatabases } from "./support/databases";

/** mocha root hooks: data sources a file left open are closed after it (parallel mode: after each file). */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    await closeOpenDataSources();
  },
};

/** mocha global teardown (main process, once): every run drops the databases it created. */
export async function mochaGlobalTeardown(): Promise<void> {
  await dropRunDatabases();
}
