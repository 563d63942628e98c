import { expect } from "chai";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DataSource } from "typeorm";
import { createTokenService } from "../../src/create-token-service";
import { StorageError, TokenServiceError } from "../../src/errors";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import type { RefreshContext, RefreshedToken, ScmProvider } from "../../src/providers/scm-provider";
import { DbFaultProxy } from "../../src/testing/db-fault-proxy";
import { FakeClock } from "../../src/testing/fake-clock";
import { FakeScmServer, type IssuedTokens } from "../../src/testing/fake-scm";
import { RecordingLogger } from "../../src/testing/recording-logger";
import type { Token } from "../../src/token";
import { closeDataSource, dbKinds, openTestDataSource, type DbKind } from "../support/databases";
import { uniqueUser } from "../support/service-fixture";
import { RowLock, adminConnection, blockedWrite, killConnection, openDataSourceBehindProxy, poolConnectionId, shortLockWaits, statementEnded, type DbAdmin } from "./db-faults";
import { CLIENT, HOST, RowReader, describeError, newEncryptionKey, refreshTokenStatus, settle, type Settled } from "./harness";

/**
 * Fault matrix (issue #5): every SCM fault the fake can inject × database faults on a live MariaDB,
 * for one forced refresh of a rotating token (Bitbucket DC: a refresh revokes the old access token and
 * makes the old refresh token useless). Each cell is one test; the table of outcomes is printed after
 * the run and written to test/concurrency/fault-matrix.md.
 *
 * Every cell asserts:
 * - the outcome is a token or a typed TokenServiceError (never an untyped crash), also for the next call;
 * - the stored refresh token is never lost unless the SCM really rotated it, and new tokens that did
 *   reach the service are stored (invariant 5: persist first);
 * - at most one rotation at the SCM per call (no double refresh);
 * - a failed call leaves the stored tokens as they were; a token handed out is live at the SCM;
 * - once the lease has expired the entry is either usable again (refresh token still good) or
 *   clearly marked for re-authorisation (refresh token really gone);
 * - with no database fault, the exact expected outcome.
 *
 * Database faults happen at one instant: right after the SCM's first answer (success, error, or
 * timeout) reached the service and before the service touches the database again (a wrapper around
 * the provider is the hook, so the moment is the same for every SCM fault, including those that never
 * reach the fake's pause points).
 *
 * Outages (the database unreachable for 1 s, 5 s, 30 s; a black-holed connection) go through a
 * DbFaultProxy: real time, so these cells run concurrently, started before the others, and the
 * longer ones only for the SCM faults where the SCM has rotated (the tokens exist only in memory).
 * After the call, each cell waits for the outage to end and for background commits to finish.
 */

const T0 = "2026-01-01T00:00:00.000Z";
const LEASE_MS = 60_000;
const ATTEMPT_TIMEOUT_MS = 500;

// ------------------------------------------------------------------------------------------------
// SCM faults
// ------------------------------------------------------------------------------------------------

interface ScmFault {
  name: string;
  /** Done to the fake SCM just before the call (after the token was stored and became due). */
  inject(scm: FakeScmServer, issued: IssuedTokens): Promise<void> | void;
  /** The exact outcome with no database fault. */
  expected: string;
}

/** What another client that does not share our database would do: refresh the token itself. */
async function refreshBehindOurBack(scm: FakeScmServer, refreshToken: string): Promise<void> {
  const response = await fetch(scm.baseUrl + scm.tokenPath, {
    method: "POST",
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret }),
  });
  await response.text();
  if (response.status !== 200) throw new Error(`refreshBehindOurBack: HTTP ${response.status}`);
}

const SCM_FAULTS: ScmFault[] = [
  { name: "none", inject: () => undefined, expected: "token" },
  { name: "fail_before_commit (once)", inject: (scm) => scm.failNext({ kind: "fail_before_commit" }), expected: "token" },
  { name: "fail_before_commit (every attempt)", inject: (scm) => scm.failNext({ kind: "fail_before_commit" }, 3), expected: "ScmUnavailableError" },
  { name: "commit_then_fail", inject: (scm) => scm.failNext({ kind: "commit_then_fail" }), expected: "ReauthorizationRequiredError(lost_rotation)" },
  { name: "commit_then_reset", inject: (scm) => scm.failNext({ kind: "commit_then_reset" }), expected: "ReauthorizationRequiredError(lost_rotation)" },
  { name: `hang (timeoutMs ${ATTEMPT_TIMEOUT_MS})`, inject: (scm) => scm.failNext({ kind: "hang" }), expected: "token" },
  { name: "malformed_json", inject: (scm) => scm.failNext({ kind: "malformed_json" }), expected: "ScmResponseError" },
  { name: "html_502", inject: (scm) => scm.failNext({ kind: "html_502" }), expected: "token" },
  { name: "empty_body", inject: (scm) => scm.failNext({ kind: "empty_body" }), expected: "ScmResponseError" },
  { name: "rate_limited (Retry-After 60 s)", inject: (scm) => scm.failNext({ kind: "rate_limited", retryAfterSeconds: 60 }), expected: "token" },
  { name: "lock_timeout", inject: (scm) => scm.failNext({ kind: "lock_timeout" }), expected: "token" },
  { name: "replayed refresh token", inject: (scm, issued) => refreshBehindOurBack(scm, issued.refreshToken!), expected: "ReauthorizationRequiredError(invalid_grant)" },
  { name: "revoked refresh token", inject: (scm, issued) => scm.revokeFamilyOf(issued.refreshToken!), expected: "ReauthorizationRequiredError(invalid_grant)" },
];

// ------------------------------------------------------------------------------------------------
// Database faults
// ------------------------------------------------------------------------------------------------

interface FaultContext {
  dataSource: DataSource;
  /** The proxy in front of the database (outage faults only). */
  proxy?: DbFaultProxy;
  admin: DbAdmin;
  entryId: string;
  lock?: RowLock;
  /** Background work of the fault (watching for the blocked write); awaited by settle(). */
  watcher?: Promise<unknown>;
}

interface DbFault {
  name: string;
  /** Right after the SCM's first answer reached the service. */
  apply(ctx: FaultContext): Promise<void>;
  /** An outage through a DbFaultProxy: real time, run concurrently with the other outage cells. */
  outage?: { scmFaults?: string[]; statementTimeoutMs: number };
}

/**
 * The statement deadline of the outage cells: short enough for a black hole to end the caller's wait
 * within seconds, long enough that a loaded test machine (event-loop stalls of a few hundred ms while
 * several cells run) does not hit it on healthy statements.
 */
const OUTAGE_STATEMENT_TIMEOUT_MS = 2_000;

/** SCM faults after which the SCM has rotated and the new tokens reached the service: only memory holds them. */
const ROTATED = ["none", "fail_before_commit (once)", `hang (timeoutMs ${ATTEMPT_TIMEOUT_MS})`, "html_502", "lock_timeout"];

function cutFor(ms: number, scmFaults?: string[]): DbFault {
  return {
    name: `database unreachable ${ms / 1000} s (proxy cut)`,
    outage: { scmFaults, statementTimeoutMs: OUTAGE_STATEMENT_TIMEOUT_MS },
    async apply(ctx) {
      ctx.proxy!.cut(ms);
    },
  };
}

const DB_FAULTS: DbFault[] = [
  { name: "none", apply: async () => undefined },
  {
    name: "connections killed (idle, SCM call in flight)",
    async apply(ctx) {
      await killConnection(ctx.admin, await poolConnectionId(ctx.dataSource));
    },
  },
  {
    name: "row lock → lock-wait timeout (1 s)",
    async apply(ctx) {
      const id = await poolConnectionId(ctx.dataSource);
      const lock = await RowLock.take(ctx.entryId, ctx.admin.kind);
      ctx.lock = lock;
      // Hold the lock until the service's first write on the row has given up, then let go.
      ctx.watcher = (async () => {
        const statement = await blockedWrite(ctx.admin, id);
        await statementEnded(ctx.admin, id, statement);
        await lock.release();
        return statement;
      })();
    },
  },
  {
    name: "connection killed mid-write",
    async apply(ctx) {
      const id = await poolConnectionId(ctx.dataSource);
      const lock = await RowLock.take(ctx.entryId, ctx.admin.kind);
      ctx.lock = lock;
      // The service's next write blocks on our lock: kill its connection while the statement runs.
      ctx.watcher = (async () => {
        const statement = await blockedWrite(ctx.admin, id);
        await killConnection(ctx.admin, id);
        await lock.release();
        return statement;
      })();
    },
  },
  cutFor(1_000),
  cutFor(5_000, ROTATED.slice(0, 2)),
  cutFor(30_000, ["none"]),
  {
    name: `connection black-holed 5 s (statement deadline ${OUTAGE_STATEMENT_TIMEOUT_MS / 1000} s)`,
    outage: { scmFaults: ROTATED.slice(0, 2), statementTimeoutMs: OUTAGE_STATEMENT_TIMEOUT_MS },
    async apply(ctx) {
      const proxy = ctx.proxy!;
      proxy.blackHole();
      setTimeout(() => proxy.pass(), 5_000).unref();
    },
  },
];

// ------------------------------------------------------------------------------------------------
// One cell
// ------------------------------------------------------------------------------------------------

/** The provider, observed: what each attempt got, and a one-shot hook after the first answer. */
class ObservedProvider implements ScmProvider {
  readonly host: string;
  readonly requiresOpportunisticRefresh: boolean;
  readonly received: string[] = [];
  afterFirstAnswer: (() => Promise<void>) | undefined;

  constructor(private readonly inner: ScmProvider) {
    this.host = inner.host;
    this.requiresOpportunisticRefresh = inner.requiresOpportunisticRefresh;
  }

  async refresh(refreshToken: string, context: RefreshContext): Promise<RefreshedToken> {
    const result = await settle(this.inner.refresh(refreshToken, context));
    if (result.ok) this.received.push(result.value.accessToken);
    const hook = this.afterFirstAnswer;
    this.afterFirstAnswer = undefined;
    if (hook) await hook();
    if (!result.ok) throw result.error;
    return result.value;
  }
}

interface CellResult {
  db: DbKind;
  scmFault: string;
  dbFault: string;
  outcome: string;
  next: string;
  rotations: number;
  nextRotations: number;
  rtLost: string;
  doubleRefresh: boolean;
  violations: string[];
}

function outcomeLabel(result: Settled<Token | undefined>): string {
  if (result.ok) return result.value ? "token" : "no token";
  const label = result.error instanceof StorageError ? `StorageError(${result.error.driverCode ?? "?"})` : describeError(result.error);
  return result.error instanceof TokenServiceError ? label : `${label} — untyped`;
}

async function runCell(db: DbKind, scmFault: ScmFault, dbFault: DbFault): Promise<CellResult> {
  const clock = new FakeClock(T0);
  const scm = await FakeScmServer.start({ profile: "bitbucket_dc", clock });
  const behindProxy = dbFault.outage && db !== "sqljs" ? await openDataSourceBehindProxy(db) : undefined;
  const dataSource = behindProxy?.dataSource ?? (await openTestDataSource(db, 1));
  const ctx: Partial<FaultContext> & { dataSource: DataSource } = { dataSource, proxy: behindProxy?.proxy };
  const violations: string[] = [];
  try {
    if (db !== "sqljs") await shortLockWaits(dataSource);
    const key = newEncryptionKey();
    const provider = new ObservedProvider(new BitbucketServerProvider({ host: HOST, baseUrl: scm.baseUrl, ...CLIENT }));
    const service = await createTokenService({
      dataSource,
      providers: [provider],
      encryptionKeys: [key],
      clock,
      logger: new RecordingLogger(),
      retry: { baseDelayMs: 10, timeoutMs: ATTEMPT_TIMEOUT_MS },
      lease: { leaseMs: LEASE_MS, waitForOtherMs: 2_000 },
      ...(dbFault.outage ? { statementTimeoutMs: dbFault.outage.statementTimeoutMs } : {}),
    });
    const rows = new RowReader(dataSource, key);
    const userId = uniqueUser("fm");
    const issued = scm.issueTokens({ userId });
    await service.storeToken(userId, HOST, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt, scopes: issued.scopes });
    clock.advanceMinutes(58); // 2 minutes left: a 5-minute request forces a refresh
    await scmFault.inject(scm, issued);
    scm.resetCounters();
    const before = await rows.read(userId);
    const rtBefore = refreshTokenStatus(scm, before.refreshToken);

    if (dbFault.name !== "none") {
      ctx.admin = await adminConnection(db === "sqljs" ? undefined : db);
      ctx.entryId = before.entry.id;
      provider.afterFirstAnswer = () => dbFault.apply(ctx as FaultContext).catch((e: unknown) => void violations.push(`fault injection failed: ${(e as Error).message}`));
    }
    const main = await settle(service.getTokenForHost(userId, HOST));
    if (ctx.watcher) await ctx.watcher.catch((e: unknown) => violations.push(`fault injection failed: ${(e as Error).message}`));
    await ctx.lock?.release();
    // An outage ends by itself; tokens the SCM issued may still be being stored in the background.
    await ctx.proxy?.passing();
    const pendingAfterFlush = await service.flushPendingCommits(LEASE_MS);
    if (pendingAfterFlush > 0) violations.push(`${pendingAfterFlush} background commit(s) still pending after the lease`);
    const rotations = scm.counters.refreshSuccesses;
    const afterMain = await rows.read(userId);
    const rtAfter = refreshTokenStatus(scm, afterMain.refreshToken);
    const receivedInMain = [...provider.received];

    // The next call, once any lease left behind has expired.
    scm.resetCounters();
    clock.advance(LEASE_MS + 1_000);
    const next = await settle(service.getTokenForHost(userId, HOST));
    const nextRotations = scm.counters.refreshSuccesses;

    // ---- the invariants ----
    const outcome = outcomeLabel(main);
    const nextOutcome = outcomeLabel(next);
    if (!main.ok && !(main.error instanceof TokenServiceError)) violations.push(`untyped error: ${(main.error as Error)?.message}`);
    if (!next.ok && !(next.error instanceof TokenServiceError)) violations.push(`next call: untyped error: ${(next.error as Error)?.message}`);
    if (rotations > 1 || nextRotations > 1) violations.push(`double refresh: ${rotations} rotations, then ${nextRotations}`);

    const dropped = receivedInMain.length > 0 && !receivedInMain.includes(afterMain.accessToken);
    let rtLost = "no";
    if (rtBefore !== "active") rtLost = `n/a (${rtBefore} before the call)`;
    else if (rtAfter !== "active") {
      if (dropped) rtLost = "YES: new tokens reached the service, not stored";
      else if (rotations > 0) rtLost = "yes: SCM rotated, response lost";
      else rtLost = "YES: the SCM never rotated it";
    }
    if (rtBefore === "active" && rtAfter !== "active" && rotations === 0) violations.push("the stored refresh token was lost although the SCM never rotated it");
    if (dropped) violations.push("the SCM's new tokens reached the service but were not stored (persist-first violated)");

    if (main.ok) {
      if (main.value?.value !== afterMain.accessToken) violations.push("the token handed out is not the stored one");
      if (main.value && !scm.isAccessTokenLive(main.value.value)) violations.push("the token handed out is not live at the SCM");
      if (rtAfter !== "active") violations.push(`the stored refresh token is ${rtAfter} after a successful hand-out`);
    } else if (afterMain.entry.accessTokenCiphertext !== before.entry.accessTokenCiphertext || afterMain.entry.refreshTokenCiphertext !== before.entry.refreshTokenCiphertext) {
      // Allowed only for the SCM's new tokens, stored in the background after the caller got a transient StorageError.
      const storedLater = main.error instanceof StorageError && main.error.transient && receivedInMain.includes(afterMain.accessToken);
      if (!storedLater) violations.push("a failed call changed the stored tokens");
    }
    if (rtAfter === "active" && !next.ok) violations.push(`the refresh token is still good, but the next call failed (${nextOutcome})`);
    if (rtAfter !== "active" && !(next.ok === false && describeError(next.error).startsWith("ReauthorizationRequiredError"))) {
      violations.push(`the refresh token is gone, but the next call did not ask for re-authorisation (${nextOutcome})`);
    }
    if (dbFault.name === "none" && outcome !== scmFault.expected) violations.push(`expected ${scmFault.expected}, got ${outcome}`);

    return { db, scmFault: scmFault.name, dbFault: dbFault.name, outcome, next: nextOutcome, rotations, nextRotations, rtLost, doubleRefresh: rotations > 1 || nextRotations > 1, violations };
  } finally {
    await ctx.lock?.release();
    await scm.close();
    ctx.proxy?.pass();
    await closeDataSource(dataSource);
    await ctx.proxy?.close();
    await ctx.admin?.end().catch(() => undefined);
  }
}

// ------------------------------------------------------------------------------------------------
// The matrix
// ------------------------------------------------------------------------------------------------

const cells: Array<{ db: DbKind; scmFault: ScmFault; dbFault: DbFault }> = [];
for (const db of dbKinds()) {
  for (const dbFault of db !== "sqljs" ? DB_FAULTS : DB_FAULTS.filter((f) => f.name === "none")) {
    for (const scmFault of SCM_FAULTS) {
      if (dbFault.outage?.scmFaults && !dbFault.outage.scmFaults.includes(scmFault.name)) continue;
      cells.push({ db, scmFault, dbFault });
    }
  }
}
const outageCells = cells.filter((c) => c.dbFault.outage);

/** Runs the outage cells (real time) OUTAGE_LANES at a time, longest first; each test awaits its own. */
const OUTAGE_LANES = 3;
function startOutageCells(): Map<(typeof cells)[number], Promise<CellResult>> {
  const started = new Map<(typeof cells)[number], Promise<CellResult>>();
  const queue = [...outageCells].sort((a, b) => outageLength(b.dbFault) - outageLength(a.dbFault));
  const gates: Array<() => void> = [];
  let running = 0;
  const acquire = () => (running < OUTAGE_LANES ? (running++, Promise.resolve()) : new Promise<void>((resolve) => gates.push(resolve)));
  const release = () => {
    const next = gates.shift();
    if (next) next();
    else running--;
  };
  for (const cell of queue) {
    const run = acquire().then(() => runCell(cell.db, cell.scmFault, cell.dbFault).finally(release));
    run.catch(() => undefined); // reported by the cell's own test
    started.set(cell, run);
  }
  return started;
}

function outageLength(fault: DbFault): number {
  return Number(/(\d+) s/.exec(fault.name)?.[1] ?? 0);
}

function markdown(results: CellResult[]): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const lines = [
    "<!-- Generated by test/concurrency/fault-matrix.test.ts (npm test); do not edit by hand. -->",
    "",
    "### Fault matrix: one forced refresh of a rotating token (Bitbucket DC profile)",
    "",
    "SCM faults are injected by the fake SCM; database faults hit a live MariaDB right after the SCM's first answer reached the service.",
    "Outages (database unreachable N s, connection black-holed) go through a DbFaultProxy; the call's outcome is what the caller got, the row is read once the outage is over and background commits have finished.",
    "*Next call* is the following hand-out once any lease left behind has expired. *SCM rotations* counts refreshes the SCM committed",
    "(this call / next call). *RT lost*: whether the stored refresh token stopped working at the SCM. *Verdict* lists broken invariants.",
    "",
    "| SCM fault | DB fault | DB | outcome | next call | SCM rotations | RT lost | double refresh | verdict |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    const verdict = r.violations.length === 0 ? "ok" : `**FAIL**: ${r.violations.join("; ")}`;
    lines.push(`| ${esc(r.scmFault)} | ${esc(r.dbFault)} | ${r.db} | ${esc(r.outcome)} | ${esc(r.next)} | ${r.rotations} / ${r.nextRotations} | ${esc(r.rtLost)} | ${r.doubleRefresh ? "**YES**" : "no"} | ${esc(verdict)} |`);
  }
  return `${lines.join("\n")}\n`;
}

describe("concurrency: fault matrix (SCM faults × database faults)", function () {
  this.timeout(30_000);
  const results: CellResult[] = [];
  let outages: Map<(typeof cells)[number], Promise<CellResult>> | undefined;

  before(async function () {
    // Warm-up (not recorded): the first refresh in a fresh process loads and compiles the HTTP and
    // provider code, which on a loaded machine can outlast the 500 ms attempt timeout of the first cell.
    await runCell(dbKinds()[0] ?? "sqljs", SCM_FAULTS[0]!, DB_FAULTS[0]!).catch(() => undefined);
  });

  afterEach(function () {
    // The outage cells take real time: they run alongside the others, started once the first cell has
    // warmed up the code paths (a cold first SCM call under load can outlast the 500 ms attempt timeout).
    if (!outages && outageCells.length > 0) outages = startOutageCells();
  });

  after(function () {
    if (results.length === 0) return;
    const order = (r: CellResult) => [DB_FAULTS.findIndex((f) => f.name === r.dbFault), ["sqljs", "mariadb", "postgres"].indexOf(r.db), SCM_FAULTS.findIndex((f) => f.name === r.scmFault)];
    const sorted = [...results].sort((x, y) => {
      const a = order(x);
      const b = order(y);
      return a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!;
    });
    const table = markdown(sorted);
    console.log(`\n${table}`);
    // Only a complete run (every cell, MariaDB included) replaces the committed table.
    if (dbKinds().includes("mariadb") && results.length === cells.length) writeFileSync(join(__dirname, "fault-matrix.md"), table);
    else console.log(`(fault-matrix.md not rewritten: ${results.length} of ${cells.length} cells ran${dbKinds().includes("mariadb") ? "" : ", MariaDB skipped"})`);
  });

  for (const cell of [...cells.filter((c) => !c.dbFault.outage), ...outageCells]) {
    const { db, scmFault, dbFault } = cell;
    it(`${scmFault.name} × ${dbFault.name} (${db})`, async function () {
      if (dbFault.outage) this.timeout(120_000);
      const result = await (outages?.get(cell) ?? runCell(db, scmFault, dbFault));
      results.push(result);
      expect(result.violations, `${result.outcome}; next call: ${result.next}; RT lost: ${result.rtLost}`).to.deep.equal([]);
    });
  }
});
