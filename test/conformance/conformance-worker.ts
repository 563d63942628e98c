/**
 * One replica for the conformance suite: its own process, TokenService and connection pool on the
 * shared MariaDB database, pointed at the conformance target's token endpoint. Driven over IPC by
 * lifecycle.test.ts: configure → armed → go → results. Results carry a short hash, never a token.
 *
 * The clock is the system clock moved by `offsetMs`, so that (like the mocha process's FakeClock) the
 * stored token is due for a refresh without waiting for it to age.
 */
import { createHash } from "node:crypto";
import { createTokenService } from "../../src/create-token-service";
import { TokenServiceError } from "../../src/errors";
import { OAuth2Provider } from "../../src/providers/oauth2-provider";
import type { TokenService } from "../../src/token-service";

export interface WorkerConfig {
  databaseUrl: string;
  key: { id: string; key: string };
  host: string;
  endpoints: { tokenUrl: string; clientId: string; clientSecret: string };
  offsetMs: number;
}

export type WorkerResult = { ok: true; hash: string } | { ok: false; error: string };

export type ToWorker = { type: "configure"; config: WorkerConfig } | { type: "arm"; userId: string; callers: number; lifetimeMinutes: number } | { type: "go" };
export type FromWorker = { type: "ready" } | { type: "configured" } | { type: "armed" } | { type: "results"; results: WorkerResult[] } | { type: "failed"; message: string };

if (require.main === module) {
  let service: TokenService | undefined;
  let armed: { userId: string; callers: number; lifetimeMinutes: number } | undefined;
  let host = "";
  const send = (m: FromWorker) => process.send!(m);
  process.on("disconnect", () => process.exit(0));
  process.on("message", (m: ToWorker) => {
    void (async () => {
      switch (m.type) {
        case "configure": {
          const { config } = m;
          host = config.host;
          await service?.close();
          const clock = {
            now: () => new Date(Date.now() + config.offsetMs),
            sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms))),
          };
          service = await createTokenService({
            databaseUrl: config.databaseUrl,
            providers: [new OAuth2Provider({ host: config.host, ...config.endpoints, clientAuth: "body", revokesOnRefresh: true })],
            encryptionKeys: [config.key],
            clock,
            poolSize: 4,
          });
          return send({ type: "configured" });
        }
        case "arm":
          armed = { userId: m.userId, callers: m.callers, lifetimeMinutes: m.lifetimeMinutes };
          return send({ type: "armed" });
        case "go": {
          const { userId, callers, lifetimeMinutes } = armed!;
          const svc = service!;
          const results = await Promise.all(
            Array.from({ length: callers }, () =>
              svc.getTokenForHost(userId, host, { lifetimeMinutes }).then(
                (token): WorkerResult => (token ? { ok: true, hash: createHash("sha256").update(token.value).digest("hex").slice(0, 16) } : { ok: false, error: "no token" }),
                (e: unknown): WorkerResult => ({ ok: false, error: e instanceof TokenServiceError ? `${e.name} ${e.code}` : String(e) }),
              ),
            ),
          );
          return send({ type: "results", results });
        }
      }
    })().catch((e: unknown) => send({ type: "failed", message: e instanceof Error ? (e.stack ?? e.message) : String(e) }));
  });
  send({ type: "ready" });
}
