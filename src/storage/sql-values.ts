/**
 * Date values as the store writes and compares them: `YYYY-MM-DD HH:MM:SS.mmm` in UTC. MySQL/MariaDB
 * (connection timezone "Z") and SQLite (TEXT) both compare these correctly, so every conditional
 * update can compare dates inside SQL.
 */
export function toSqlDate(date: Date): string {
  return date.toISOString().replace("T", " ").replace("Z", "");
}

export function toSqlDateOrNull(date: Date | undefined | null): string | null {
  return date ? toSqlDate(date) : null;
}

/** mysql2 returns Date objects, sql.js returns strings; both are UTC. */
export function fromSqlDate(value: unknown): Date | undefined {
  if (value === null || value === undefined) return undefined;
  if (value instanceof Date) return value;
  if (typeof value === "string") {
    const d = new Date(value.includes("T") ? value : `${value.replace(" ", "T")}Z`);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  return undefined;
}
