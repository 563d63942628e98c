import { createHash, randomBytes } from "node:crypto";
import { Registry } from "prom-client";
import { createTokenService } from "../create-token-service";
import { DEFAULT_FLAGS } from "../flags/feature-flags";
import { StaticFeatureFlags } from "../flags/static-feature-flags";
import { BitbucketServerProvider } from "../providers/bitbucket-server-provider";
import { FakeClock } from "../testing/fake-clock";
import { FakeScmServer } from "../testing/fake-scm";
import { RecordingLogger } from "../testing/recording-logger";
import type { Token } from "../token";
import type { TokenService } from "../token-service";
import { DEMO_SCENARIO } from "./scenario";

/** The demo's knobs (the flags of `scm-token-service demo`). */
export interface DemoOptions {
  /** opportunistic_token_refresh (default true). */
  opportunistic: boolean;
  /** Opportunistic refresh only within this many minutes of expiry; 0 = Gitpod's rule, whenever unreserved (default 20). */
  horizonMinutes: number;
  /** A forced refresh waits for the holders' reservations instead of revoking (default true). */
  drain: boolean;
  /** Print only the summary, not every hand-out (default false). */
  quiet: boolean;
  /** Callers release their hand-outs early: API calls when they return, clones after 3 minutes (default false). */
  release: boolean;
}

export const DEFAULT_DEMO_OPTIONS: DemoOptions = { opportunistic: true, horizonMinutes: 20, drain: true, quiet: false, release: false };

/** With `release`, a clone gives its token back this long after it started. */
const CLONE_MINUTES = 3;

const HOST = "bitbucket.example.com";
const START = Date.parse("2026-01-05T08:00:00Z");
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
const short = (token: string) => `tok#${createHash("sha256").update(token).digest("hex").slice(0, 6)}`;

interface Holder { user: string; token: string; until: number; kind: string }

/**
 * The demo (`scm-token-service demo`, `npm run demo`): a simulated workspace-starter and API
 * handlers against a fake Bitbucket Data Center (real HTTP on 127.0.0.1, same wire format), on the
 * embedded database, over three simulated hours. Every hand-out is printed with the decision the
 * library took; a clone is "broken" if a refresh revoked its token before its 10 minutes were up.
 * Tokens are printed only as short hashes (`tok#1a2b3c`).
 *
 * @example
 * await runDemo({ ...DEFAULT_DEMO_OPTIONS, horizonMinutes: 0, drain: false }, (line) => console.log(line)); // Gitpod's rule
 */
export async function runDemo(options: DemoOptions, print: (line: string) => void): Promise<void> {
  const { opportunistic, drain, horizonMinutes: horizon } = options;
  const clock = new FakeClock(START);
  const scm = await FakeScmServer.start({ profile: "bitbucket_dc", clock });
  const registry = new Registry();
  const logger = new RecordingLogger();
  let service: TokenService;
  try {
    service = await createTokenService({
      databaseUrl: "sqljs::memory:",
      providers: [new BitbucketServerProvider({ host: HOST, baseUrl: scm.baseUrl, clientId: "test-client", clientSecret: "test-secret" })],
      encryptionKeys: [{ id: "demo", key: randomBytes(32).toString("base64") }],
      flags: new StaticFeatureFlags({ opportunisticRefresh: opportunistic, horizonMinutes: horizon, drain }),
      clock,
      logger,
      metricsRegistry: registry,
      // The demo shows how long a busy user's callers wait for holders, so waits are not bounded.
      defaultMaxWaitMs: Number.POSITIVE_INFINITY,
    });
  } catch (e) {
    await scm.close();
    throw e;
  }

  try {
    print(`scm-token-service demo — fake Bitbucket Data Center at ${scm.baseUrl} (60-minute tokens; a refresh revokes the old token at once)`);
    print(`flags: opportunistic_token_refresh=${opportunistic}  horizon=${horizon === 0 ? "none (Gitpod's rule)" : `${horizon} min, per hand-out kind at most its lifetime + ${DEFAULT_FLAGS.horizonMarginMinutes} min`}  drain=${drain}  early release=${options.release}  database: embedded sql.js\n`);

    for (const user of ["alice", "bob", "carol"]) {
      const issued = scm.issueTokens({ userId: user });
      await service.storeToken(user, HOST, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt, scopes: issued.scopes, username: "x-token-auth" });
    }

    const counter = registry.getSingleMetric("scm_token_refresh_requests_total")!;
    const snapshot = async () => new Map((await counter.get()).values.map((v) => [`${v.labels.result}|${v.labels.opportunisticRefresh}`, v.value]));
    const holders: Holder[] = [];
    const stats = new Map<string, { handOuts: number; refreshes: number; broken: number; waitedMin: number }>();
    const lastToken = new Map<string, string>();

    const header = ["time", "user", "request", "result", "opportunisticRefresh", "token", "expires", "reserved until", "note"];
    const rows: string[][] = [];
    const pendingReleases: Array<{ at: number; token: Token; holder: Holder }> = [];
    const releaseDue = async (until: number) => {
      for (const due of pendingReleases.filter((p) => p.at <= until)) {
        pendingReleases.splice(pendingReleases.indexOf(due), 1);
        due.holder.until = Math.min(due.holder.until, due.at);
        await service.releaseReservation(due.token);
      }
    };
    const releasable = options.release;
    for (const request of DEMO_SCENARIO) {
      const target = START + request.atMinute * 60_000;
      await releaseDue(target);
      if (clock.now().getTime() < target) clock.set(target);
      const before = await snapshot();
      const askedAt = clock.now().getTime();
      const lifetime = request.kind === "workspace-start" ? 10 : 5;
      const token =
        request.kind === "workspace-start"
          ? await service.getTokenForWorkspaceStart(request.user, HOST, { releasable })
          : await service.getTokenForHost(request.user, HOST, { lifetimeMinutes: 5, releasable });
      const now = clock.now().getTime();
      const after = await snapshot();
      const changed = [...after].find(([k, v]) => v !== (before.get(k) ?? 0))?.[0] ?? "?|?";
      const [result, label] = changed.split("|");
      const s = stats.get(request.user) ?? { handOuts: 0, refreshes: 0, broken: 0, waitedMin: 0 };
      s.handOuts++;
      s.waitedMin += (now - askedAt) / 60_000;
      const notes: string[] = [];
      if (now > askedAt) notes.push(`waited ${((now - askedAt) / 60_000).toFixed(1)} min for holders`);
      const previous = lastToken.get(request.user);
      if (previous && previous !== token!.value) {
        s.refreshes++;
        const victims = holders.filter((h) => h.user === request.user && h.token === previous && h.until > now);
        if (victims.length) {
          s.broken += victims.length;
          notes.push(`BROKE ${victims.length} holder(s): ${victims.map((v) => v.kind).join(", ")}`);
        } else notes.push("refreshed; old token revoked, nobody held it");
      }
      lastToken.set(request.user, token!.value);
      const holder: Holder = { user: request.user, token: token!.value, until: now + lifetime * 60_000, kind: request.kind };
      holders.push(holder);
      if (releasable) pendingReleases.push({ at: request.kind === "workspace-start" ? now + CLONE_MINUTES * 60_000 : now, token: token!, holder });
      if (releasable && request.kind === "api") await releaseDue(now); // the API call returned
      stats.set(request.user, s);
      rows.push([hhmm(now), request.user, `${request.kind} (${lifetime}m)`, result, label, short(token!.value), hhmm(token!.expiryDate!.getTime()), token!.reservedUntilDate ? hhmm(token!.reservedUntilDate.getTime()) : "-", notes.join("; ")]);
    }
    if (!options.quiet) printTable(print, header, rows);

    print("\nSummary");
    printTable(
      print,
      ["user", "hand-outs", "SCM refreshes", "broken holders", "minutes waited"],
      [...stats].map(([user, s]) => [user, String(s.handOuts), String(s.refreshes), String(s.broken), s.waitedMin.toFixed(1)]),
    );
    print(`\nThe fake SCM saw ${scm.counters.refreshSuccesses} refreshes, ${scm.counters.invalidGrants} invalid_grant, ${scm.counters.resourceRejectedRevokedByRefresh} uses of revoked tokens.`);
    print(`'Token refreshed' log lines: ${logger.filter("Token refreshed").length} (e.g. ${JSON.stringify(logger.find("Token refreshed")?.fields ?? {})})`);
    print("\nPrometheus metrics (what an operator sees):\n");
    print((await registry.metrics()).split("\n").filter((l) => l.startsWith("scm_token_refresh_requests_total") || l.startsWith("scm_token_reservations_broken_total") || l.startsWith("# HELP scm_token_refresh_requests")).join("\n"));
    print(`\nTry: scm-token-service demo ${opportunistic ? "--no-opportunistic" : ""}  |  --horizon 0 --no-drain  (Gitpod's rule)  |  --release  (callers give tokens back early)   (in this repository: npm run demo -- <flags>)`);
  } finally {
    await service.close();
    await scm.close();
  }
}

function printTable(print: (line: string) => void, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  print(line(header));
  print(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) print(line(r));
}

