import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

/*
 * Builds and packs the library once per test run, for every test that installs it like a consumer.
 *
 * The build goes into a staging directory (tsc --outDir) with a copy of package.json, README.md and
 * LICENSE, and `npm pack --ignore-scripts` packs that: the tarball then holds exactly what a clean
 * `npm run build` produces — never stale files left in ./dist by other work — and prepack's second
 * build is skipped.
 */

export const ROOT = resolve(__dirname, "../..");
const run = promisify(execFile);

export interface ShOptions {
  timeout?: number;
  env?: Record<string, string | undefined>;
}

/** Runs a command; DATABASE_URL is cleared so no test reaches a developer's database by accident. */
export function sh(file: string, args: string[], cwd: string, options: ShOptions | number = {}): Promise<{ stdout: string; stderr: string }> {
  const { timeout = 60_000, env = {} } = typeof options === "number" ? { timeout: options } : options;
  return run(file, args, { cwd, timeout, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, DATABASE_URL: "", ...env } });
}

export function npm(args: string[], cwd: string, options?: ShOptions | number): Promise<{ stdout: string; stderr: string }> {
  return sh(process.platform === "win32" ? "npm.cmd" : "npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], cwd, options);
}

/** The root project's TypeScript compiler (the one this repository builds with). */
export const TSC = require.resolve("typescript/bin/tsc");

export interface PackedLibrary {
  /** Absolute path of the .tgz. */
  tarball: string;
  /** The paths inside the tarball (package/ prefix removed). */
  files: string[];
  /** The packed package.json. */
  manifest: { name: string; version: string; dependencies?: Record<string, string>; peerDependencies?: Record<string, string>; bin?: Record<string, string> };
}

let packed: Promise<PackedLibrary> | undefined;

/** The tarball of the current sources; built on first call, shared by every caller in this process. */
export function packedLibrary(): Promise<PackedLibrary> {
  packed ??= pack();
  return packed;
}

async function pack(): Promise<PackedLibrary> {
  const work = mkdtempSync(join(tmpdir(), "scm-token-pack-"));
  process.once("exit", () => rmSync(work, { recursive: true, force: true }));
  const stage = join(work, "stage");
  mkdirSync(stage);
  // npx tsc -p tsconfig.build.json, into the staging directory.
  await sh(process.execPath, [TSC, "-p", "tsconfig.build.json", "--outDir", join(stage, "dist")], ROOT, 90_000).catch((e: { stdout?: string; message: string }) => {
    throw new Error(`the build failed (npx tsc -p tsconfig.build.json):\n${e.stdout ?? e.message}`);
  });
  for (const file of ["package.json", "README.md", "LICENSE"]) if (existsSync(join(ROOT, file))) cpSync(join(ROOT, file), join(stage, file));
  const result = JSON.parse((await npm(["pack", "--ignore-scripts", "--json", "--pack-destination", work], stage)).stdout) as { filename: string; files: { path: string }[] }[];
  return {
    tarball: join(work, result[0].filename),
    files: result[0].files.map((f) => f.path),
    manifest: JSON.parse(readFileSync(join(stage, "package.json"), "utf8")) as PackedLibrary["manifest"],
  };
}
