import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * How the tests start child processes that run TypeScript (replicas, starters, conformance workers):
 * like `-r ts-node/register/transpile-only`, but through a transpile cache shared by every process of
 * every run (keyed by file content, so always the current sources). A cold ts-node start compiles the
 * library again in each of the ~100 children a run starts; from the cache a start loads no compiler.
 */
export const TS_CHILD_EXEC_ARGV = ["-r", "reflect-metadata", "-r", join(__dirname, "transpile-cache.js")];

/** The cache directory (children inherit it through the environment). */
process.env.SCM_TS_TRANSPILE_CACHE ??= join(tmpdir(), "scm-token-service-ts-cache");
