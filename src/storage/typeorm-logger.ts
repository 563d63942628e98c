import type { Logger as TypeormLoggerInterface } from "typeorm";
import type { Logger } from "../logger";

/**
 * Routes what TypeORM would print to the console into the library's logger. TypeORM writes some
 * messages to the console whatever `logging` says (migration failures, slow queries), so the
 * library's DataSources always carry this logger: nothing reaches stdout or stderr behind your back.
 *
 * SQL text and query parameters are never passed on (parameters hold encrypted tokens and user ids):
 * a failed query is reported by the error's driver code, a slow one by its duration.
 */
export class TypeormLogger implements TypeormLoggerInterface {
  constructor(private readonly logger: Logger) {}

  logQuery(): void {
    // Every query: far too chatty for a library, and the parameters are tokens.
  }

  logQueryError(error: string | Error): void {
    // The caller gets the error (wrapped in StorageError); this line only helps correlate.
    const code = typeof error === "object" ? (error as unknown as { code?: unknown }).code : undefined;
    const driverCode = typeof code === "string" ? code : undefined;
    this.logger.debug({ component: "typeorm", driverCode }, "database query failed");
  }

  logQuerySlow(time: number): void {
    this.logger.warn({ component: "typeorm", durationMs: time }, "slow database query");
  }

  logSchemaBuild(message: string): void {
    this.logger.debug({ component: "typeorm" }, message);
  }

  logMigration(message: string): void {
    this.logger.info({ component: "typeorm" }, message);
  }

  log(level: "log" | "info" | "warn", message: unknown): void {
    const text = message instanceof Error ? message.message : String(message);
    if (level === "warn") this.logger.warn({ component: "typeorm" }, text);
    else if (level === "info") this.logger.info({ component: "typeorm" }, text);
    else this.logger.debug({ component: "typeorm" }, text);
  }
}
