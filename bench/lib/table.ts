/** Aligned plain-text tables for stdout: text columns left-aligned, numeric columns right-aligned. */

export type Cell = string | number | undefined;

export function renderTable(title: string, headers: string[], rows: Cell[][]): string {
  const text = rows.map((r) => headers.map((_, i) => show(r[i])));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number" || r[i] === undefined));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [`\n${title}`, line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...text.map(line)].join("\n");
}

/** Numbers: integers as is, others with up to 2 decimals (3 significant digits for small ones). */
function show(v: Cell): string {
  if (v === undefined) return "-";
  if (typeof v === "string") return v;
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

/** Rounds for the JSON file (2 decimals). */
export function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
