import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** This package's version, from the nearest package.json named scm-token-service (src/cli and dist/src/cli sit at different depths). */
export function packageVersion(): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (!existsSync(file)) continue;
    try {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === "scm-token-service" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // not ours; keep looking
    }
  }
  return "unknown";
}
