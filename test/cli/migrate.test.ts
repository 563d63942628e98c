import { existsSync } from "node:fs";
import { expect } from "chai";
import { scmTokenServiceMigrations } from "../../migrations";
import { dbKinds } from "../support/databases";
import { cli, dropCliDatabases, freshDatabaseUrl } from "./cli-harness";

/** The library's migrations, oldest first (the class name is the migration's name). */
const ALL = scmTokenServiceMigrations.map((m) => m.name);
const FIRST = ALL[0];
const LAST = ALL[ALL.length - 1];

for (const kind of dbKinds()) {
  describe(`scm-token-service migrate on ${kind}`, () => {
    after(dropCliDatabases);

    it("run applies every migration to a new database, and then has nothing left to do", async () => {
      const url = await freshDatabaseUrl(kind);
      const first = await cli(["migrate", "run", "--database-url", url]);
      expect(first.code, first.stderr).to.equal(0);
      expect(first.stdout).to.include(`Applied ${ALL.length} migration(s) to ${url}: ${ALL.join(", ")}`);
      if (kind === "sqljs") expect(existsSync(url.slice("sqljs:".length)), "the embedded database file").to.equal(true);
      const again = await cli(["migrate", "run"], { env: { DATABASE_URL: url } });
      expect(again.code).to.equal(0);
      expect(again.stdout).to.include("Nothing to migrate").and.include("up to date");
    });

    it("show lists applied and pending migrations; --check exits 1 while one is pending", async () => {
      const url = await freshDatabaseUrl(kind);
      await cli(["migrate", "run", "--database-url", url]);
      const upToDate = await cli(["migrate", "show", "--check", "--database-url", url]);
      expect(upToDate.code).to.equal(0);
      for (const name of ALL) expect(upToDate.stdout).to.include(`[X] ${name}`);
      expect(upToDate.stdout).to.include("Up to date.");

      const reverted = await cli(["migrate", "revert", "--yes", "--database-url", url]);
      expect(reverted.code, reverted.stderr).to.equal(0);
      expect(reverted.stdout).to.include(`Reverted 1 migration(s) on ${url}: ${LAST}`);

      const pending = await cli(["migrate", "show", "--database-url", url]);
      expect(pending.code, "without --check, pending migrations are not a failure").to.equal(0);
      expect(pending.stdout).to.include(`[X] ${FIRST}`).and.include(`[ ] ${LAST}`).and.include("1 pending: run scm-token-service migrate run");
      expect((await cli(["migrate", "show", "--check", "--database-url", url])).code).to.equal(1);
    });

    it("maintenance commands refuse a database that is not migrated, and say how to fix it", async () => {
      const url = await freshDatabaseUrl(kind);
      await cli(["migrate", "run", "--database-url", url]);
      await cli(["migrate", "revert", "--yes", "--database-url", url]);
      for (const command of [["reap"], ["inspect", "user-1", "bitbucket.example.com"]]) {
        const run = await cli([...command, "--database-url", url]);
        expect(run.code, command[0]).to.equal(1);
        expect(run.stderr).to.include(`is not migrated to this version of scm-token-service (pending: ${LAST}); run: scm-token-service migrate run --database-url ${url}`);
      }
      const run = await cli(["migrate", "run", "--database-url", url]);
      expect(run.stdout).to.include(`Applied 1 migration(s) to ${url}: ${LAST}`);
      expect((await cli(["reap", "--database-url", url])).code).to.equal(0);
    });

    it("revert --steps reverts newest first and stops when nothing is left", async () => {
      const url = await freshDatabaseUrl(kind);
      await cli(["migrate", "run", "--database-url", url]);
      const run = await cli(["migrate", "revert", "--steps", String(ALL.length + 3), "--yes", "--database-url", url]);
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.include(`Reverted ${ALL.length} migration(s) on ${url}: ${[...ALL].reverse().join(", ")}`);
      const nothing = await cli(["migrate", "revert", "--yes", "--database-url", url]);
      expect(nothing.code).to.equal(0);
      expect(nothing.stdout).to.include("Nothing to revert");
      const show = await cli(["migrate", "show", "--database-url", url]);
      for (const name of ALL) expect(show.stdout).to.include(`[ ] ${name}`);
      expect(show.stdout).to.include(`${ALL.length} pending`);
    });
  });
}
