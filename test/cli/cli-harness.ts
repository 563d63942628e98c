import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import type { DataSource } from "typeorm";
import type { CliStream } from "../../src/cli/cli-io";
import { runCli, type CliHooks } from "../../src/cli/run-cli";
import { createTokenService } from "../../src/create-token-service";
import type { EncryptionKey } from "../../src/crypto/key-ring";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { openDataSource } from "../../src/storage/data-source";
import type { TokenService } from "../../src/token-service";
import { RUN_DATABASE, adminQuery, createDatabaseSql, dropDatabaseSql, serverUrl, type DbKind, type ServerKind } from "../support/databases";

/** Captures what the CLI writes; `isTTY` makes it look like a terminal (progress bars are drawn). */
export class Collector implements CliStream {
  text = "";
  columns = 120;
  constructor(readonly isTTY = false) {}
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with its own streams and only the given environment. */
export async function cli(argv: string[], options: { env?: Record<string, string | undefined>; hooks?: CliHooks; stderr?: Collector; signal?: AbortSignal } = {}): Promise<CliRun> {
  const stdout = new Collector();
  const stderr = options.stderr ?? new Collector();
  const signal = options.signal;
  const code = await runCli(argv, { stdout, stderr, env: options.env ?? {}, stopSignal: signal && (() => signal) }, options.hooks);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

export const HOST = "bitbucket.example.com";

/** A fresh base64 key of 32 bytes with the given id. */
export function newKey(id: string, primary?: boolean): EncryptionKey {
  return { id, key: randomBytes(32).toString("base64"), ...(primary === undefined ? {} : { primary }) };
}

/**
 * A TokenService on `url` (or on an open DataSource) for one host, whose provider points nowhere:
 * the tests store tokens that never need a refresh, so no SCM is called.
 */
export async function serviceWithKeys(target: string | DataSource, keys: EncryptionKey[]): Promise<TokenService> {
  return createTokenService({
    ...(typeof target === "string" ? { databaseUrl: target, poolSize: 2 } : { dataSource: target }),
    providers: [new BitbucketServerProvider({ host: HOST, baseUrl: "http://127.0.0.1:9", clientId: "cli-test", clientSecret: "cli-test-secret" })],
    encryptionKeys: keys,
  });
}

/** Opens the database at `url` (migrating it), runs `use`, closes it: the embedded file is saved on every write. */
export async function withDataSource<T>(url: string, use: (ds: DataSource) => Promise<T>): Promise<T> {
  const ds = await openDataSource(url, { poolSize: 2 });
  try {
    return await use(ds);
  } finally {
    await ds.destroy();
  }
}

/*
 * The CLI tests run on the embedded database (a sqljs: file in a temp dir) and on the database
 * servers DB_KINDS names (MariaDB, PostgreSQL). There each fresh database is a sibling of this run's database
 * (`<run database>_cli<n>`), dropped at the end: rotate-keys and reap work on whole tables, and
 * this run's database holds other suites' rows, encrypted with keys these tests do not have.
 */
const tempDirs: string[] = [];
const serverDatabases: Array<{ kind: ServerKind; name: string }> = [];
let counter = 0;

/** A new, empty (not migrated) database of `kind`; its URL. Dropped/deleted by dropCliDatabases(). */
export async function freshDatabaseUrl(kind: DbKind): Promise<string> {
  if (kind === "sqljs") {
    const dir = mkdtempSync(join(tmpdir(), "scm-token-cli-"));
    tempDirs.push(dir);
    return `sqljs:${join(dir, "tokens.sqlite")}`;
  }
  const name = `${RUN_DATABASE}_cli${++counter}`;
  await adminQuery(kind, [createDatabaseSql(kind, name)]);
  serverDatabases.push({ kind, name });
  return `${serverUrl(kind)}/${name}`;
}

/** A fresh database with the migrations applied (through the CLI itself). */
export async function migratedDatabaseUrl(kind: DbKind): Promise<string> {
  const url = await freshDatabaseUrl(kind);
  const run = await cli(["migrate", "run", "--database-url", url]);
  expect(run.code, run.stderr).to.equal(0);
  return url;
}

/** after() hook: deletes the temp files and drops the databases this file created. */
export async function dropCliDatabases(): Promise<void> {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  for (const { kind, name } of serverDatabases.splice(0)) await adminQuery(kind, [dropDatabaseSql(kind, name)]);
}

/** Fails if any secret appears in the text (stdout + stderr of the CLI). */
export function expectNoSecrets(text: string, secrets: string[]): void {
  for (const secret of secrets) expect(text.includes(secret), `output contains a secret (${secret.slice(0, 4)}…)`).to.equal(false);
}
