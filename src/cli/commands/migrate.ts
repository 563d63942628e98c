import { Option, type Command } from "commander";
import { MigrationExecutor, type DataSource } from "typeorm";
import { EXIT, usageError } from "../cli-error";
import { writeLine } from "../cli-io";
import { examples, integerIn, newCommand, type CliContext } from "../command-kit";
import { DATABASE_URL_HELP, redactDatabaseUrl, resolveDatabaseUrl, withCliDatabase } from "../database";
import { runScmTokenServiceMigrations } from "../../storage/data-source";

/**
 * `scm-token-service migrate run|revert|show`: the library's TypeORM migrations (migrations/) on
 * MySQL, MariaDB or the embedded database file, for deployments that do not let the service
 * migrate on start (createTokenService with databaseUrl does that itself).
 */
export function migrateCommand(context: CliContext): Command {
  const { io } = context;
  const migrate = newCommand("migrate", "apply, revert or list the database migrations of scm-token-service", [
    "scm-token-service migrate run --database-url mysql://app:secret@db.internal:3306/tokens",
    "DATABASE_URL=sqljs:/var/lib/tokens.sqlite scm-token-service migrate show --check",
    "scm-token-service migrate revert --yes --database-url mariadb://root@127.0.0.1:3306/tokens",
  ]);
  const databaseUrlOption = () => new Option("--database-url <url>", DATABASE_URL_HELP);

  migrate
    .command("run")
    .description("apply every pending migration (creates the embedded database file if it does not exist)")
    .addOption(databaseUrlOption())
    .addHelpText("after", examples("scm-token-service migrate run --database-url mysql://app:secret@db.internal:3306/tokens", "scm-token-service migrate run --database-url sqljs:./tokens.sqlite"))
    .action(async (options: { databaseUrl?: string }) => {
      const url = resolveDatabaseUrl(options.databaseUrl, io.env);
      await withCliDatabase(url, { createEmbeddedFile: true }, async (dataSource) => {
        // Under the migration lock, like createTokenService: a replica starting meanwhile waits instead of failing.
        const applied = await runScmTokenServiceMigrations(dataSource);
        const where = redactDatabaseUrl(url);
        if (applied.length === 0) writeLine(io.stdout, `Nothing to migrate: ${where} is up to date (${dataSource.migrations.length} migrations applied).`);
        else writeLine(io.stdout, `Applied ${applied.length} migration(s) to ${where}: ${applied.join(", ")}`);
      });
    });

  migrate
    .command("revert")
    .description("undo the most recently applied migration(s); this drops their tables and the tokens in them")
    .addOption(databaseUrlOption())
    .addOption(new Option("--steps <n>", "how many migrations to revert, newest first").default(1).argParser(integerIn(1, 1000)))
    .option("--yes", "confirm: reverting drops tables, and every user whose token is in them must authorise again")
    .addHelpText("after", examples("scm-token-service migrate revert --yes --database-url sqljs:./tokens.sqlite", "scm-token-service migrate revert --steps 2 --yes"))
    .action(async (options: { databaseUrl?: string; steps: number; yes?: boolean }) => {
      const url = resolveDatabaseUrl(options.databaseUrl, io.env);
      if (!options.yes) throw usageError("migrate revert drops tables and the tokens in them; pass --yes to confirm");
      await withCliDatabase(url, {}, async (dataSource) => {
        const reverted: string[] = [];
        for (let step = 0; step < options.steps; step++) {
          const before = await executedNames(dataSource);
          if (before.length === 0) break;
          await dataSource.undoLastMigration({ transaction: "each" });
          const after = new Set(await executedNames(dataSource));
          reverted.push(...before.filter((name) => !after.has(name)));
        }
        const where = redactDatabaseUrl(url);
        if (reverted.length === 0) writeLine(io.stdout, `Nothing to revert: no migration is applied on ${where}.`);
        else writeLine(io.stdout, `Reverted ${reverted.length} migration(s) on ${where}: ${reverted.join(", ")}`);
      });
    });

  migrate
    .command("show")
    .description("list the migrations: [X] applied, [ ] pending")
    .addOption(databaseUrlOption())
    .option("--check", "exit with code 1 when a migration is pending (for deploy scripts)")
    .addHelpText("after", examples("scm-token-service migrate show --database-url sqljs:./tokens.sqlite", "scm-token-service migrate show --check || scm-token-service migrate run"))
    .action(async (options: { databaseUrl?: string; check?: boolean }) => {
      const url = resolveDatabaseUrl(options.databaseUrl, io.env);
      await withCliDatabase(url, {}, async (dataSource) => {
        const executed = new Set(await executedNames(dataSource));
        const known = dataSource.migrations.map((m) => m.name ?? m.constructor.name);
        writeLine(io.stdout, `Migrations on ${redactDatabaseUrl(url)}:`);
        for (const name of known) writeLine(io.stdout, `  [${executed.has(name) ? "X" : " "}] ${name}`);
        // Applied by a newer version of the library (a rollback of the code, not of the schema).
        for (const name of [...executed].filter((n) => !known.includes(n))) writeLine(io.stdout, `  [X] ${name} (not part of this version)`);
        const pending = known.filter((name) => !executed.has(name));
        if (pending.length === 0) {
          writeLine(io.stdout, "Up to date.");
        } else {
          writeLine(io.stdout, `${pending.length} pending: run scm-token-service migrate run`);
          if (options.check) context.setExitCode(EXIT.failure);
        }
      });
    });
  return migrate;
}

async function executedNames(dataSource: DataSource): Promise<string[]> {
  return (await new MigrationExecutor(dataSource).getExecutedMigrations()).map((m) => m.name);
}
