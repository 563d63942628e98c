import { fork, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import path from "node:path";
import { createConnection } from "mysql2/promise";
import { createTokenService } from "../../src/create-token-service";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { FakeScmServer } from "../../src/testing/fake-scm";
import type { BenchDatabase } from "./bench-database";
import { CONFIG_ENV, type CallRecord, type ChildMessage, type ParentMessage, type WorkerConfig } from "./contention-protocol";
import { summarize, type LatencySummary } from "./latency";
import { renderTable, round2 } from "./table";

export interface ContentionOptions {
  processes: number;
  callersPerProcess: number;
  scmLatencyMs: number;
}

export interface ContentionResult extends ContentionOptions {
  calls: number;
  /** refreshSuccesses of the fake SCM (must be 1). */
  scmRefreshes: number;
  scmTokenRequests: number;
  scmReplays: number;
  /** Callers that got the token now stored (must be all). */
  gotNewToken: number;
  newTokenLiveAtScm: boolean;
  errors: number;
  errorKinds: Record<string, number>;
  /** Hand-out results summed over the children's metrics (success = refreshed in-process, waited = used another process's refresh). */
  handOutResults: Record<string, number>;
  /** Spread of the callers' start instants (how well the barrier lined them up). */
  startSpreadMs: number;
  winnerLatencyMs: number;
  /** The winner process's SCM call (refresh histogram, retries included). */
  scmCallMs: number;
  /** When the refresh was committed (the row's updatedAt), ms after the barrier instant. */
  commitMs: number;
  /** Callers' end minus the commit instant: the time to hand out the committed token to everyone. */
  doneAfterCommit: LatencySummary;
  /** From the barrier instant to the first caller's end, and to the last caller's end. */
  firstEndMs: number;
  lastEndMs: number;
  /** Latency minus the winner's latency. */
  extraWait: { allLosers: LatencySummary; sameProcess: LatencySummary; otherProcesses: LatencySummary };
  wallMs: number;
}

const HOST = "bitbucket.contention.example";
const USER = "contention-user";
const LIFETIME_MINUTES = 5;
const TIMEOUT_MS = 90_000;

/**
 * Contention: one token that must be refreshed (its stored expiry has passed), N processes × M callers
 * asking for it at the same instant, the fake Bitbucket DC answering after `scmLatencyMs`. Real clock.
 */
export async function runContention(db: BenchDatabase, options: ContentionOptions, log: (s: string) => void): Promise<ContentionResult> {
  const t0 = Date.now();
  const scm = await FakeScmServer.start({ profile: "bitbucket_dc" });
  const encryptionKeys = [{ id: "contention", key: randomBytes(32).toString("base64") }];
  const provider = new BitbucketServerProvider({ host: HOST, baseUrl: scm.baseUrl, clientId: "test-client", clientSecret: "test-secret" });
  const service = await createTokenService({ databaseUrl: db.url, providers: [provider], encryptionKeys, poolSize: 2 });
  const children: ChildProcess[] = [];
  try {
    scm.setLatency(options.scmLatencyMs);
    const issued = scm.issueTokens({ userId: USER });
    await service.storeToken(USER, HOST, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: new Date(Date.now() - 60_000), scopes: issued.scopes });

    const config: WorkerConfig = { databaseUrl: db.url, encryptionKeys, scmBaseUrl: scm.baseUrl, host: HOST, userId: USER, callers: options.callersPerProcess, lifetimeMinutes: LIFETIME_MINUTES };
    const inbox: ChildMessage[][] = [];
    const waiters: (() => void)[] = [];
    for (let i = 0; i < options.processes; i++) {
      const child = fork(path.join(__dirname, "..", "contention-worker.ts"), [], {
        execArgv: ["-r", "ts-node/register/transpile-only"],
        env: { ...process.env, [CONFIG_ENV]: JSON.stringify(config) },
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      inbox.push([]);
      child.on("message", (m: ChildMessage) => {
        inbox[i].push(m);
        waiters.splice(0).forEach((w) => w());
      });
      child.on("exit", () => waiters.splice(0).forEach((w) => w()));
      children.push(child);
    }
    const waitFor = async (type: ChildMessage["type"]) => {
      const deadline = Date.now() + TIMEOUT_MS;
      for (;;) {
        const failed = inbox.flat().find((m) => m.type === "failed");
        if (failed?.type === "failed") throw new Error(`a contention worker failed: ${failed.error}`);
        if (inbox.every((msgs) => msgs.some((m) => m.type === type))) return;
        if (children.some((c) => c.exitCode !== null)) throw new Error("a contention worker exited early");
        if (Date.now() > deadline) throw new Error(`contention workers did not all send "${type}" within ${TIMEOUT_MS / 1000} s`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 1000);
        });
      }
    };
    await waitFor("ready");
    log(`  ${options.processes} workers ready after ${((Date.now() - t0) / 1000).toFixed(1)} s; firing ${options.processes * options.callersPerProcess} calls`);
    scm.resetCounters();
    const go: ParentMessage = { type: "go", atEpochMs: Date.now() + 300 };
    for (const child of children) child.send(go);
    await waitFor("results");

    const perProcess = inbox.map((msgs) => msgs.find((m): m is Extract<ChildMessage, { type: "results" }> => m.type === "results")!);
    const commitAt = await committedAt(db);
    const current = await service.getTokenForHost(USER, HOST, { lifetimeMinutes: LIFETIME_MINUTES });
    const newHash = current ? hash(current.value) : "none";

    const handOutResults: Record<string, number> = {};
    for (const p of perProcess) for (const [k, v] of Object.entries(p.handOutResults)) handOutResults[k] = (handOutResults[k] ?? 0) + v;
    const all: (CallRecord & { proc: number })[] = perProcess.flatMap((p, proc) => p.calls.map((c) => ({ ...c, proc })));
    const errorKinds: Record<string, number> = {};
    for (const c of all) if (c.error) errorKinds[c.error] = (errorKinds[c.error] ?? 0) + 1;

    // The winner: the fastest caller in the process that did the refresh (its metrics say "success").
    const winnerProc = perProcess.findIndex((p) => (p.handOutResults.success ?? 0) > 0);
    const latency = (c: CallRecord) => c.endMs - c.startMs;
    const inWinner = all.filter((c) => c.proc === winnerProc && !c.error);
    const winner = inWinner.reduce((a, b) => (latency(b) < latency(a) ? b : a), inWinner[0] ?? all[0]);
    const winnerLatency = latency(winner);
    const losers = all.filter((c) => c !== winner && !c.error);
    const extra = (cs: CallRecord[]) => summarize(cs.map((c) => latency(c) - winnerLatency));

    return {
      ...options,
      calls: all.length,
      scmRefreshes: scm.counters.refreshSuccesses,
      scmTokenRequests: scm.counters.tokenRequests,
      scmReplays: scm.counters.replays,
      gotNewToken: all.filter((c) => c.tokenHash === newHash).length,
      newTokenLiveAtScm: current ? scm.isAccessTokenLive(current.value) && current.value !== issued.accessToken : false,
      errors: all.filter((c) => c.error).length,
      errorKinds,
      handOutResults,
      startSpreadMs: round2(Math.max(...all.map((c) => c.startMs)) - Math.min(...all.map((c) => c.startMs))),
      winnerLatencyMs: round2(winnerLatency),
      scmCallMs: round2((perProcess[winnerProc]?.refreshSeconds ?? Number.NaN) * 1000),
      commitMs: round2(commitAt - go.atEpochMs),
      doneAfterCommit: rounded(summarize(all.map((c) => c.endMs - commitAt))),
      firstEndMs: round2(Math.min(...all.map((c) => c.endMs)) - go.atEpochMs),
      lastEndMs: round2(Math.max(...all.map((c) => c.endMs)) - go.atEpochMs),
      extraWait: {
        allLosers: rounded(extra(losers)),
        sameProcess: rounded(extra(losers.filter((c) => c.proc === winnerProc))),
        otherProcesses: rounded(extra(losers.filter((c) => c.proc !== winnerProc))),
      },
      wallMs: Date.now() - t0,
    };
  } finally {
    for (const child of children) if (child.connected) child.send({ type: "exit" } satisfies ParentMessage);
    await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((resolve) => c.once("exit", resolve)))));
    await service.close();
    await scm.close();
  }
}

/** commitRefresh sets updatedAt = now (ms precision); nothing on the hand-out path touches it afterwards. */
async function committedAt(db: BenchDatabase): Promise<number> {
  const connection = await createConnection(db.connectionOptions());
  try {
    const [rows] = await connection.query("SELECT updatedAt FROM scm_token_entry WHERE userId = ? AND host = ?", [USER, HOST]);
    return (rows as { updatedAt: Date }[])[0].updatedAt.getTime();
  } finally {
    await connection.end();
  }
}

function hash(value: string): string {
  return createHash("sha256").update(value).digest("hex").slice(0, 16);
}

function rounded(s: LatencySummary): LatencySummary {
  return { count: s.count, p50: round2(s.p50), p99: round2(s.p99), max: round2(s.max), mean: round2(s.mean) };
}

export function contentionTable(r: ContentionResult): string {
  const check = (ok: boolean) => (ok ? "ok" : "FAIL");
  const results = Object.entries(r.handOutResults).map(([k, v]) => `${k}=${v}`).join(" ");
  const summary = renderTable(
    `Contention: ${r.processes} processes × ${r.callersPerProcess} callers, one token that must be refreshed, fake Bitbucket DC with ${r.scmLatencyMs} ms latency, real clock`,
    ["measure", "value", "expected", "check"],
    [
      ["calls", r.calls, r.processes * r.callersPerProcess, check(r.calls === r.processes * r.callersPerProcess)],
      ["SCM refreshes (fake refreshSuccesses)", r.scmRefreshes, 1, check(r.scmRefreshes === 1)],
      ["SCM token requests", r.scmTokenRequests, 1, check(r.scmTokenRequests === 1)],
      ["callers with the new token", r.gotNewToken, r.calls, check(r.gotNewToken === r.calls && r.newTokenLiveAtScm)],
      ["errors", r.errors, 0, check(r.errors === 0)],
      ["hand-out results (metrics)", results, "success=64 + waited/still_valid", "-"],
      ["start spread of the callers (ms)", r.startSpreadMs, undefined, "-"],
      ["winner latency (ms)", r.winnerLatencyMs, `≥ ${r.scmLatencyMs}`, "-"],
      ["  of which the SCM call (ms)", r.scmCallMs, `≥ ${r.scmLatencyMs}`, "-"],
      ["refresh committed after the barrier (ms)", r.commitMs, undefined, "-"],
      ["first / last caller done after the barrier (ms)", `${r.firstEndMs} / ${r.lastEndMs}`, undefined, "-"],
      ["callers done after the commit p50 / p99 (ms)", `${r.doneAfterCommit.p50} / ${r.doneAfterCommit.p99}`, undefined, "-"],
    ],
  );
  const waits = renderTable(
    "Losers' extra wait = their latency − the winner's (ms)",
    ["losers", "count", "p50", "p99", "max"],
    [
      ["same process (single-flight)", r.extraWait.sameProcess.count, r.extraWait.sameProcess.p50, r.extraWait.sameProcess.p99, r.extraWait.sameProcess.max],
      ["other processes (lease + poll)", r.extraWait.otherProcesses.count, r.extraWait.otherProcesses.p50, r.extraWait.otherProcesses.p99, r.extraWait.otherProcesses.max],
      ["all losers", r.extraWait.allLosers.count, r.extraWait.allLosers.p50, r.extraWait.allLosers.p99, r.extraWait.allLosers.max],
    ],
  );
  return summary + "\n" + waits + (Object.keys(r.errorKinds).length ? `\nerrors: ${JSON.stringify(r.errorKinds)}` : "");
}
