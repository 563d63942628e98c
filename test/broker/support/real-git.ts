import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export interface GitRun {
  code: number;
  stdout: string;
  stderr: string;
}

const REPO_ROOT = resolve(__dirname, "../../..");

/**
 * git on this machine with a clean environment: HOME is a temp dir, no system config, no prompts,
 * and the credential helper given with -c only — the developer's git configuration never applies.
 * The helper is `scm-token-service git-credential` run from the TypeScript sources (transpiled on
 * load, like ts-node), through a wrapper that logs each action git calls it with.
 */
export class RealGit {
  readonly dir = mkdtempSync(join(tmpdir(), "scm-real-git-"));
  readonly home = join(this.dir, "home");
  private readonly helperScript = join(this.dir, "credential-helper.sh");
  private readonly actionsLog = join(this.dir, "helper-actions.log");

  constructor() {
    writeFileSync(join(this.dir, ".keep"), "");
    // Like ts-node/register/transpile-only, with a transpile cache shared by the helper's processes (see the file).
    const register = join(__dirname, "..", "..", "support", "transpile-cache.js");
    writeFileSync(
      this.helperScript,
      [
        "#!/bin/sh",
        'for action; do :; done # git appends the action (get, store, erase) as the last argument',
        `echo "$action" >> ${shellQuote(this.actionsLog)}`,
        `SCM_TS_TRANSPILE_CACHE=${shellQuote(join(this.dir, "ts-cache"))} exec ${shellQuote(process.execPath)} -r ${shellQuote(register)} ${shellQuote(join(REPO_ROOT, "src/cli/main.ts"))} git-credential "$@"`,
        "",
      ].join("\n"),
    );
    chmodSync(this.helperScript, 0o755);
  }

  /** `credential.helper` value: the helper with these arguments (git adds the action). */
  helper(args: string[]): string {
    return `!${shellQuote(this.helperScript)} ${args.map(shellQuote).join(" ")}`;
  }

  /** The actions git called the helper with, in order; clears the log. */
  takeActions(): string[] {
    let text = "";
    try {
      text = readFileSync(this.actionsLog, "utf8");
    } catch {
      // no call yet
    }
    rmSync(this.actionsLog, { force: true });
    return text.split("\n").filter(Boolean);
  }

  run(args: string[], options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<GitRun> {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: this.home,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_TERMINAL_PROMPT: "0",
      GIT_AUTHOR_NAME: "Test",
      GIT_AUTHOR_EMAIL: "test@example.com",
      GIT_COMMITTER_NAME: "Test",
      GIT_COMMITTER_EMAIL: "test@example.com",
      ...options.env,
    };
    return new Promise((resolvePromise) => {
      execFile("git", args, { cwd: options.cwd ?? this.dir, env, timeout: options.timeoutMs ?? 60_000 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolvePromise({ code, stdout, stderr });
      });
    });
  }

  /** A bare repository `<root>/<name>` with one commit on main. */
  async createBareRepository(root: string, name: string): Promise<void> {
    const work = join(this.dir, `seed-${name}`);
    await this.must(["init", "-q", "-b", "main", work]);
    writeFileSync(join(work, "README.md"), "hello\n");
    await this.must(["add", "README.md"], work);
    await this.must(["commit", "-q", "-m", "first"], work);
    await this.must(["clone", "-q", "--bare", work, join(root, name)]);
  }

  async must(args: string[], cwd?: string): Promise<string> {
    const run = await this.run(args, { cwd });
    if (run.code !== 0) throw new Error(`git ${args[0]} failed (${run.code}): ${run.stderr}`);
    return run.stdout;
  }

  cleanUp(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, "'\\''")}'`;
}
