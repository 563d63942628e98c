/**
 * One "replica": a separate Node process with its own TokenService on the shared database, as a
 * production deployment would run it (real system clock, its own connection pool, its own in-process
 * single-flight). Driven by the mocha process over IPC; see protocol.ts.
 *
 * Started by replicas.ts with `fork(…, { execArgv: TS_CHILD_EXEC_ARGV })` (test/support/child-process.ts).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { createTokenService } from "../../src/create-token-service";
import { TokenHeldError, TokenServiceError } from "../../src/errors";
import type { FeatureFlags } from "../../src/flags/feature-flags";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import type { Token } from "../../src/token";
import type { TokenService } from "../../src/token-service";
import { KEY_ENV, handOutSucceeded, tokenHash, type CallResult, type CallSpec, type FromReplica, type HandOutReport, type HandOutSpec, type MetricSample, type ReleaseReport, type ReplicaConfig, type ToReplica } from "./protocol";

const key = process.env[KEY_ENV];
if (!process.send || !key) {
  console.error("replica-worker: start me with child_process.fork and the encryption key in", KEY_ENV);
  process.exit(2);
}

// The parent died or closed the channel: never linger as an orphan.
process.on("disconnect", () => process.exit(0));

let service: TokenService | undefined;
let config: ReplicaConfig | undefined;
let armed: { round: number; userId: string; calls: CallSpec[] } | undefined;
let armedHandOuts: { round: number; userId: string; handOuts: HandOutSpec[] } | undefined;
/** Releasable hand-outs not yet released, by the mocha process's id. */
const holds = new Map<string, { service: TokenService; token: Token }>();

// Per-call flags: the caller's flag set travels with its async context into flags.getFlags().
const callFlags = new AsyncLocalStorage<StaticFeatureFlags>();
let defaultFlags = new StaticFeatureFlags({});
let opportunisticFlags = new StaticFeatureFlags({ opportunisticRefresh: true });
const flags: FeatureFlags = { getFlags: (userId) => (callFlags.getStore() ?? defaultFlags).getFlags(userId) };

function send(message: FromReplica): void {
  process.send!(message);
}

async function configure(next: ReplicaConfig): Promise<void> {
  const previous = service;
  service = undefined;
  holds.clear();
  await previous?.close();
  config = next;
  defaultFlags = new StaticFeatureFlags({ ...next.flags });
  opportunisticFlags = new StaticFeatureFlags({ ...next.flags, opportunisticRefresh: true });
  service = await createTokenService({
    databaseUrl: next.databaseUrl,
    providers: [new BitbucketServerProvider({ host: next.host, baseUrl: next.scmBaseUrl, clientId: "test-client", clientSecret: "test-secret" })],
    encryptionKeys: [{ id: "test", key: key! }],
    flags,
    lease: next.lease,
    retry: next.retry,
    poolSize: next.poolSize ?? 5,
    drainPollMs: next.drainPollMs,
  });
  // Open the pool's connections now, so the first round measures races, not connection set-up.
  const warmUser = `warm-up-${process.pid}`;
  await Promise.all(Array.from({ length: next.poolSize ?? 5 }, () => service!.getTokenForHost(warmUser, next.host)));
}


function toFailure(e: unknown): CallResult {
  const error = e instanceof Error ? e : new Error(String(e));
  const fields = error as Error & { code?: unknown; reason?: unknown; oauthError?: unknown };
  return {
    ok: false,
    name: error.name,
    code: e instanceof TokenServiceError ? e.code : typeof fields.code === "string" ? fields.code : null,
    reason: typeof fields.reason === "string" ? fields.reason : null,
    oauthError: typeof fields.oauthError === "string" ? fields.oauthError : null,
    message: error.message.slice(0, 300),
    finishedAt: Date.now(),
  };
}

function go(round: number): void {
  if (!armed || armed.round !== round || !service || !config) throw new Error(`go(${round}) without a matching arm`);
  const { userId, calls } = armed;
  const svc = service;
  const host = config.host;
  armed = undefined;
  // Every call starts in this same tick: the barrier released them all at once.
  const pending = calls.map((spec) =>
    callFlags.run(spec.opportunistic ? opportunisticFlags : defaultFlags, () =>
      svc.getTokenForHost(userId, host, { lifetimeMinutes: spec.lifetimeMinutes }).then(
        (token): CallResult => ({ ok: true, tokenHash: token ? tokenHash(token.value) : null, expiry: token?.expiryDate?.toISOString() ?? null, finishedAt: Date.now() }),
        toFailure,
      ),
    ),
  );
  void Promise.all(pending).then((results) => send({ type: "results", round, results }));
}

/** Scripted hand-outs: each starts `delayMs` after go and is reported on its own as soon as it settles. */
function goHandOuts(round: number): void {
  if (!armedHandOuts || armedHandOuts.round !== round || !service || !config) throw new Error(`go(${round}) without a matching armHandOuts`);
  const { userId, handOuts } = armedHandOuts;
  const svc = service;
  const host = config.host;
  armedHandOuts = undefined;
  const start = (spec: HandOutSpec) => {
    const startedAt = Date.now();
    svc
      .getTokenForHost(userId, host, { lifetimeMinutes: spec.lifetimeMinutes, releasable: spec.releasable, maxWaitMs: spec.maxWaitMs, ifHeld: spec.ifHeld })
      .then(
        (token): HandOutReport => {
          if (!token) throw new Error(`hand-out ${spec.id}: no token stored for the user`);
          if (token.handOut.holdId !== undefined) holds.set(spec.id, { service: svc, token });
          return handOutSucceeded(token, startedAt);
        },
      )
      .catch((e: unknown): HandOutReport => {
        const { name, code, reason, message, finishedAt } = toFailure(e) as Extract<CallResult, { ok: false }>;
        return { ok: false, name, code, reason, message, heldUntil: e instanceof TokenHeldError ? e.heldUntil.toISOString() : null, startedAt, finishedAt };
      })
      .then((report) => send({ type: "handedOut", round, id: spec.id, report }));
  };
  for (const spec of handOuts) {
    if (spec.delayMs <= 0) start(spec);
    else setTimeout(() => start(spec), spec.delayMs);
  }
}

async function release(id: string): Promise<ReleaseReport> {
  const held = holds.get(id);
  const startedAt = Date.now();
  if (!held) return { ok: false, name: "Error", message: `no releasable hand-out "${id}" in this replica`, startedAt, finishedAt: startedAt };
  holds.delete(id);
  try {
    const released = await held.service.releaseReservation(held.token);
    return { ok: true, released, startedAt, finishedAt: Date.now() };
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    return { ok: false, name: error.name, message: error.message.slice(0, 300), startedAt, finishedAt: Date.now() };
  }
}

async function readMetrics(): Promise<MetricSample[]> {
  if (!service) throw new Error("readMetrics before configure");
  const metrics = await service.metricsRegistry.getMetricsAsJSON();
  return metrics.flatMap((m) => m.values.map((v) => ({ name: (v as { metricName?: string }).metricName ?? m.name, labels: { ...v.labels } as Record<string, string | number>, value: v.value })));
}

async function handle(message: ToReplica): Promise<void> {
  switch (message.type) {
    case "configure":
      await configure(message.config);
      send({ type: "configured" });
      return;
    case "arm":
      armed = { round: message.round, userId: message.userId, calls: message.calls };
      send({ type: "armed", round: message.round });
      return;
    case "armHandOuts":
      armedHandOuts = { round: message.round, userId: message.userId, handOuts: message.handOuts };
      send({ type: "armed", round: message.round });
      return;
    case "go":
      if (armedHandOuts?.round === message.round) goHandOuts(message.round);
      else go(message.round);
      return;
    case "release":
      send({ type: "released", id: message.id, report: await release(message.id) });
      return;
    case "readMetrics":
      send({ type: "metrics", requestId: message.requestId, samples: await readMetrics() });
      return;
  }
}

process.on("message", (message: ToReplica) => {
  handle(message).catch((e: unknown) => send({ type: "failed", stage: message.type, message: e instanceof Error ? (e.stack ?? e.message) : String(e) }));
});

send({ type: "ready" });
