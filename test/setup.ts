import "reflect-metadata";
import { cleanUpDatabases } from "./support/databases";

/** mocha root hooks: every run drops the database it created. */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    await cleanUpDatabases();
  },
};
