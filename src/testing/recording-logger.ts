import type { Logger } from "../logger";

export interface LogRecord {
  level: "debug" | "info" | "warn" | "error";
  message: string;
  fields: Record<string, unknown>;
}

/**
 * A Logger that keeps every line, for assertions ("a 'Token refreshed' line was written") and for
 * leak checks (`logger.text()` must not contain a token).
 *
 * @example
 * const logger = new RecordingLogger();
 * expect(logger.find("Token refreshed")?.fields.mode).to.equal("opportunistic");
 */
export class RecordingLogger implements Logger {
  readonly records: LogRecord[] = [];

  debug(fields: Record<string, unknown>, message: string): void {
    this.records.push({ level: "debug", message, fields });
  }
  info(fields: Record<string, unknown>, message: string): void {
    this.records.push({ level: "info", message, fields });
  }
  warn(fields: Record<string, unknown>, message: string): void {
    this.records.push({ level: "warn", message, fields });
  }
  error(fields: Record<string, unknown>, message: string): void {
    this.records.push({ level: "error", message, fields });
  }

  /** The first record with this message. */
  find(message: string): LogRecord | undefined {
    return this.records.find((r) => r.message === message);
  }

  filter(message: string): LogRecord[] {
    return this.records.filter((r) => r.message === message);
  }

  /** Everything logged, as one JSON text (for leak checks). */
  text(): string {
    return this.records.map((r) => JSON.stringify(r)).join("\n");
  }
}
