/**
 * One process starting a TokenService, for concurrent-start.test.ts: it loads the library, says
 * "ready", and on "go" calls createTokenService(DATABASE_URL) once. Its logger's lines travel to the
 * mocha process over IPC; the process itself writes nothing to stdout or stderr, so anything the
 * test finds there came from the library or its dependencies.
 *
 * Started with `fork(…, { execArgv: TS_CHILD_EXEC_ARGV })` (test/support/child-process.ts).
 */
import { createTokenService } from "../../src/create-token-service";
import { TokenServiceError } from "../../src/errors";
import type { Logger } from "../../src/logger";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";

export type ToStarter = { type: "go" };
export type FromStarter =
  | { type: "ready" }
  | { type: "log"; level: keyof Logger; message: string; fields: Record<string, unknown> }
  | { type: "done"; ok: true; ms: number }
  | { type: "done"; ok: false; ms: number; name: string; code: string | null; message: string };

const url = process.env.START_DATABASE_URL;
if (!process.send || !url) process.exit(2);
process.on("disconnect", () => process.exit(0));

const send = (m: FromStarter) => process.send!(m);
const line = (level: keyof Logger) => (fields: Record<string, unknown>, message: string) => send({ type: "log", level, message, fields: JSON.parse(JSON.stringify(fields)) as Record<string, unknown> });
const logger: Logger = { debug: line("debug"), info: line("info"), warn: line("warn"), error: line("error") };

async function start(): Promise<void> {
  const started = Date.now();
  try {
    const service = await createTokenService({
      databaseUrl: url,
      providers: [new BitbucketServerProvider({ host: "bitbucket.example.com", baseUrl: "http://127.0.0.1:9", clientId: "c", clientSecret: "s" })],
      encryptionKeys: [{ id: "k", key: Buffer.alloc(32, 7).toString("base64") }],
      poolSize: 2,
      logger,
    });
    const ms = Date.now() - started;
    await service.close();
    send({ type: "done", ok: true, ms });
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    send({ type: "done", ok: false, ms: Date.now() - started, name: error.name, code: e instanceof TokenServiceError ? e.code : null, message: error.message });
  }
}

process.on("message", (m: ToStarter) => {
  if (m.type === "go") void start();
});
send({ type: "ready" });
