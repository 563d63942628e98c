import { expect } from "chai";
import { ConfigurationError } from "../../src/errors";
import { dataSourceOptionsFromUrl, openDataSource } from "../../src/storage/data-source";

/**
 * Checks of what a database URL gives, shared by the PostgreSQL and MySQL/MariaDB URL tests. Each
 * takes the password the test's URLs carry, which no error message may show.
 */
export function urlChecks(password: string) {
  return {
    /** The `ssl` option a URL gives ("absent": the driver's default). */
    sslOf(url: string): unknown {
      const options = dataSourceOptionsFromUrl(url) as { ssl?: unknown };
      return "ssl" in options ? options.ssl : "absent";
    },

    /** The ConfigurationError (option "databaseUrl") a refused URL gives; fails the test when the URL is accepted. */
    refusal(url: string): ConfigurationError {
      try {
        dataSourceOptionsFromUrl(url);
      } catch (e) {
        expect(e).to.be.instanceOf(ConfigurationError);
        expect((e as ConfigurationError).option).to.equal("databaseUrl");
        expect((e as Error).message).to.not.include(password);
        return e as ConfigurationError;
      }
      throw new Error(`${url} was accepted`);
    },

    /** The error opening a database at `url` fails with (the test fails if it opens). */
    async startFailure(url: string): Promise<Error> {
      const error = await openDataSource(url, { poolSize: 1, migrationLockTimeoutMs: 5_000 }).then(
        async (ds) => {
          await ds.destroy();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(error, "openDataSource failed").to.be.instanceOf(Error);
      expect((error as Error).message).to.not.include(password);
      return error as Error;
    },
  };
}
