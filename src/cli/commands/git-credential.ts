import { readFileSync } from "node:fs";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { BrokerClient, BrokerRequestError } from "../../broker/broker-client";
import { formatGitCredentialOutput, parseGitCredentialInput, releaseHandleFromState, STATE_PREFIX, type GitCredentialInput } from "../../broker/git-credential-protocol";
import { CliError, EXIT, usageError } from "../cli-error";
import { writeLine, type CliIo } from "../cli-io";
import type { CliContext } from "../command-kit";

/** Largest credential description read from git (git sends a few hundred bytes). */
const MAX_INPUT_BYTES = 64 * 1024;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

interface GitCredentialOptions {
  broker?: string;
  host?: string;
  lifetime?: number;
  username?: string;
  timeout: number;
  allowHttp?: boolean;
}

const ENVIRONMENT_HELP = `
Environment:
  SCM_TOKEN_BROKER_URL         default for --broker
  SCM_TOKEN_BROKER_TOKEN       this workspace's credential for the broker (sent as a bearer token), or
  SCM_TOKEN_BROKER_TOKEN_FILE  a file that holds it (re-read on every call, so it can be rotated)
  The credential is never taken from the command line: process listings show arguments.

git calls the helper with an action: get (print a token for the host), store (git authenticated with
it: the hand-out is released shortly after), erase (git was refused: the hand-out is released now).`;

const HELP_EXAMPLES = `

Examples:
  git config --global credential.https://bitbucket.example.com.helper '!scm-token-service git-credential --broker https://broker.internal/scm'
  printf 'protocol=https\\nhost=bitbucket.example.com\\n\\n' | SCM_TOKEN_BROKER_TOKEN_FILE=/run/secrets/broker scm-token-service git-credential --broker https://broker.internal/scm get

Exit codes:
  0  success, or nothing to do (not an https remote, an unknown action)
  1  no token: none stored (git may try other helpers), or the broker refused, failed or was unreachable (git is told to stop)
  2  usage error: no --broker, no broker credential, unknown option
`;

/**
 * `scm-token-service git-credential`: a git credential helper that asks the token broker for a
 * releasable hand-out instead of reading a stored secret, and gives it back on `store` / `erase`.
 * git ≥ 2.46 carries the release handle in `state[]`; older gits pass back only the credential, and
 * the helper releases by token (the broker keeps a keyed digest of what it handed out).
 */
export function gitCredentialCommand(context: CliContext): Command {
  const { io } = context;
  return new Command("git-credential")
    .description("git credential helper: get tokens from the token broker (credential.helper = \"!scm-token-service git-credential --broker URL\")")
    .argument("<action>", "get, store or erase (git passes it); other actions are ignored")
    .addOption(new Option("--broker <url>", "the token broker's URL (default: $SCM_TOKEN_BROKER_URL)"))
    .addOption(new Option("--host <host>", "the SCM host to ask the broker for (default: the host git asks about)"))
    .addOption(new Option("--lifetime <minutes>", "how long the token must stay valid (default: the broker's default)").argParser(positive))
    .addOption(new Option("--username <name>", "user name when the stored token has none (default: git's, else \"oauth2\")"))
    .addOption(new Option("--timeout <seconds>", "how long to wait for the broker").default(60).argParser(positive))
    .addOption(new Option("--allow-http", "also answer for plain http:// remotes other than localhost"))
    .addHelpText("after", ENVIRONMENT_HELP + HELP_EXAMPLES)
    .action(async (action: string, options: GitCredentialOptions) => {
      if (action !== "get" && action !== "store" && action !== "erase") return; // git's protocol: ignore unknown actions
      const input = parseGitCredentialInput(await readInput(io));
      const protocol = input.values.get("protocol") ?? "";
      const gitHost = input.values.get("host") ?? "";
      // Tokens go to https remotes, and to plain http only on this machine (or when allowed).
      if (protocol !== "https" && !(protocol === "http" && (options.allowHttp || LOOPBACK.has(gitHost.replace(/:\d+$/, ""))))) return;
      const host = options.host ?? gitHost;
      if (!host) return;
      const client = new BrokerClient({ url: brokerUrl(options, io), credential: brokerCredential(io), timeoutMs: options.timeout * 1000 });
      if (action === "get") await get(client, host, input, options, context);
      else await release(client, host, input, action, io);
    });
}

async function get(client: BrokerClient, host: string, input: GitCredentialInput, options: GitCredentialOptions, context: CliContext): Promise<void> {
  const { io } = context;
  try {
    const handOut = await client.handOut({ host, ...(options.lifetime === undefined ? {} : { lifetimeMinutes: options.lifetime }) });
    const attributes: [string, string][] = [
      ["username", handOut.username ?? options.username ?? input.values.get("username") ?? "oauth2"],
      ["password", handOut.token],
    ];
    // git ≥ 2.41 drops a credential once it expires instead of trying it.
    if (handOut.expiresAt) attributes.push(["password_expiry_utc", String(Math.floor(Date.parse(handOut.expiresAt) / 1000))]);
    // git ≥ 2.46 passes state[] back on store/erase when both sides announce the capability.
    if ((input.lists.get("capability") ?? []).includes("state")) {
      attributes.push(["capability[]", "state"], ["state[]", STATE_PREFIX + handOut.releaseHandle]);
    }
    io.stdout.write(formatGitCredentialOutput(attributes));
  } catch (e) {
    if (!(e instanceof BrokerRequestError)) throw e;
    writeLine(io.stderr, `scm-token-service git-credential: no token for ${host}: ${e.message}${e.status ? ` (broker: HTTP ${e.status} ${e.code})` : ""}`);
    // Refused or broken: tell git to stop here rather than prompt or try a stale stored password.
    // No token stored: let git try the next helper.
    if (e.code !== "NO_TOKEN") io.stdout.write(formatGitCredentialOutput([["quit", "1"]]));
    context.setExitCode(EXIT.failure);
  }
}

async function release(client: BrokerClient, host: string, input: GitCredentialInput, action: "store" | "erase", io: CliIo): Promise<void> {
  const releaseHandle = releaseHandleFromState(input);
  const password = input.values.get("password");
  if (!releaseHandle && !password) return;
  try {
    // store: git authenticated, but later requests of this clone or push still use the token.
    await client.release({ ...(releaseHandle ? { releaseHandle } : { host, token: password! }), deferred: action === "store" });
  } catch (e) {
    if (!(e instanceof BrokerRequestError)) throw e;
    // Harmless for git: the hand-out then ends with its reservation.
    writeLine(io.stderr, `scm-token-service git-credential: could not release the token for ${host} (it stays reserved until its lifetime ends): ${e.message}`);
  }
}

async function readInput(io: CliIo): Promise<string> {
  if (!io.stdin) return "";
  let text = "";
  for await (const chunk of io.stdin) {
    text += typeof chunk === "string" ? chunk : chunk.toString("utf8");
    if (text.length > MAX_INPUT_BYTES) throw usageError("git's credential description is larger than 64 KiB; is stdin really git?");
    // git closes stdin after the blank line, but a caller might not: stop at the blank line.
    if (/(^|\n)\r?\n/.test(text)) break;
  }
  return text;
}

function brokerUrl(options: GitCredentialOptions, io: CliIo): string {
  const url = (options.broker ?? io.env.SCM_TOKEN_BROKER_URL ?? "").trim();
  if (!url) throw usageError("no token broker given: pass --broker https://… or set SCM_TOKEN_BROKER_URL");
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new Error("scheme");
    if (parsed.username || parsed.password) throw usageError("put the broker credential in SCM_TOKEN_BROKER_TOKEN(_FILE), not in the URL (process listings show arguments)");
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw usageError("--broker must be an http(s):// URL");
  }
  return url;
}

function brokerCredential(io: CliIo): string {
  const inline = io.env.SCM_TOKEN_BROKER_TOKEN?.trim();
  if (inline) return inline;
  const file = io.env.SCM_TOKEN_BROKER_TOKEN_FILE?.trim();
  if (!file) throw usageError("no broker credential: set SCM_TOKEN_BROKER_TOKEN, or SCM_TOKEN_BROKER_TOKEN_FILE to a file that holds it");
  let value: string;
  try {
    value = readFileSync(file, "utf8").trim();
  } catch (e) {
    throw usageError(`cannot read SCM_TOKEN_BROKER_TOKEN_FILE (${(e as NodeJS.ErrnoException).code ?? "error"}): check the path and its permissions`);
  }
  if (!value || /\s/.test(value)) throw usageError("SCM_TOKEN_BROKER_TOKEN_FILE must hold one credential on one line");
  return value;
}

function positive(raw: string): number {
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || value <= 0) throw new InvalidArgumentError("must be a number > 0");
  return value;
}

/**
 * Runs only the git-credential command (argv starts with "git-credential"): what the executable does
 * for that command, without loading the other commands (database drivers, TypeORM). git starts the
 * helper for every fetch and push, so its start-up time matters. Same output and exit codes as runCli.
 */
export async function runGitCredentialCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const context: CliContext = {
    io,
    setExitCode(code) {
      if (code > exitCode) exitCode = code;
    },
  };
  const program = new Command("scm-token-service").addCommand(gitCredentialCommand(context));
  for (const command of [program, ...program.commands]) {
    command
      .exitOverride()
      .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s), getOutHasColors: () => false, getErrHasColors: () => false });
  }
  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    writeLine(io.stderr, `scm-token-service: ${e instanceof CliError ? e.message : `unexpected error: ${e instanceof Error ? e.message : String(e)}`}`);
    return e instanceof CliError ? e.exitCode : EXIT.failure;
  }
}
