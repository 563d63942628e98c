/**
 * One process of the contention benchmark (bench/lib/contention.ts forks 8 of these). It opens its
 * own TokenService on the shared database, warms its pool, reports "ready", and on "go" fires all
 * its callers at the given instant for the one token that must be refreshed.
 */
import "reflect-metadata";
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { createTokenService } from "../src/create-token-service";
import { BitbucketServerProvider } from "../src/providers/bitbucket-server-provider";
import type { TokenService } from "../src/token-service";
import { CONFIG_ENV, type CallRecord, type ChildMessage, type ParentMessage, type WorkerConfig } from "./lib/contention-protocol";

const send = (m: ChildMessage) => process.send?.(m);
const epochNow = () => performance.timeOrigin + performance.now();

async function main(): Promise<void> {
  const config = JSON.parse(process.env[CONFIG_ENV] ?? "") as WorkerConfig;
  const service = await createTokenService({
    databaseUrl: config.databaseUrl,
    providers: [new BitbucketServerProvider({ host: config.host, baseUrl: config.scmBaseUrl, clientId: "test-client", clientSecret: "test-secret" })],
    encryptionKeys: config.encryptionKeys,
  });
  // Start warm, like a replica that has been serving for a while: every pool connection open, and
  // Node's fetch (undici, loaded lazily) initialised by one request the fake SCM answers with 404.
  await Promise.all(Array.from({ length: 10 }, () => service.getTokenForHost("warm-up-nobody", config.host)));
  await fetch(`${config.scmBaseUrl}/warm-up`).then((r) => r.arrayBuffer()).catch(() => undefined);

  process.on("disconnect", () => process.exit(1)); // the parent is gone: never linger
  process.on("message", (m: ParentMessage) => {
    if (m.type === "go") setTimeout(() => void fire(service, config), Math.max(0, m.atEpochMs - Date.now()));
    if (m.type === "exit") void service.close().finally(() => process.exit(0));
  });
  send({ type: "ready" });
}

async function fire(service: TokenService, config: WorkerConfig): Promise<void> {
  const call = async (): Promise<CallRecord> => {
    const startMs = epochNow();
    try {
      const token = await service.getTokenForHost(config.userId, config.host, { lifetimeMinutes: config.lifetimeMinutes });
      return { startMs, endMs: epochNow(), tokenHash: token ? createHash("sha256").update(token.value).digest("hex").slice(0, 16) : undefined };
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      return { startMs, endMs: epochNow(), error: e instanceof Error ? `${e.name}${typeof code === "string" ? `(${code})` : ""}` : String(e) };
    }
  };
  const calls = await Promise.all(Array.from({ length: config.callers }, call));
  send({ type: "results", pid: process.pid, calls, handOutResults: await handOutResults(service), refreshSeconds: await histogramSum(service, "scm_token_refresh_duration_seconds") });
}

/** The service's own count of hand-outs by `result` label (success = refreshed here, waited = used another process's refresh). */
async function handOutResults(service: TokenService): Promise<Record<string, number>> {
  const metric = service.metricsRegistry.getSingleMetric("scm_token_refresh_requests_total");
  const counts: Record<string, number> = {};
  for (const v of metric ? (await metric.get()).values : []) {
    const result = String(v.labels.result);
    counts[result] = (counts[result] ?? 0) + v.value;
  }
  delete counts.no_token; // the warm-up lookups
  return counts;
}

/** Sum of a histogram's observations (e.g. the SCM call of this process's refresh, if it did one). */
async function histogramSum(service: TokenService, name: string): Promise<number> {
  const metric = service.metricsRegistry.getSingleMetric(name);
  let sum = 0;
  for (const v of metric ? (await metric.get()).values : []) if ((v as { metricName?: string }).metricName?.endsWith("_sum")) sum += v.value;
  return sum;
}

main().catch((e: unknown) => {
  send({ type: "failed", error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  process.exit(1);
});
