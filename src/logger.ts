/**
 * A structured logger, shaped like pino's (`logger.info(fields, message)`), so a pino instance can
 * be passed as it is. The library never puts a token, refresh token or secret into `fields`.
 */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** The default: a library stays quiet unless its user gives it a logger. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
