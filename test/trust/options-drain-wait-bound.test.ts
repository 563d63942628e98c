import { expect } from "chai";
import { ScmUnavailableError, TokenHeldError } from "../../src/errors";
import { serviceOn, uniqueUser } from "../support/service-fixture";

/*
 * A hand-out that must wait for other holders (drain) waits at most defaultMaxWaitMs (10 min) unless
 * the call opts into longer; when it does wait, a warn line says so at the start (with the bound)
 * and scm_token_handout_waits_started_total counts it at the start — also when the call then fails.
 */

type Fixture = Awaited<ReturnType<typeof serviceOn>>;
const MIN = 60_000;
const WAITING = "Token must be refreshed but is held; waiting for holders to finish";
// Refresh whenever needed, wait for holders instead of revoking their token.
const FLAGS = { opportunisticRefresh: true, horizonMinutes: 20, drain: true };

async function metric(t: Fixture, name: string, labels: Record<string, string> = {}): Promise<number> {
  const values = (await t.registry.getSingleMetric(name)!.get()).values;
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((sum, v) => sum + v.value, 0);
}

/** A 60-minute token, held by another caller from minute 39 until 57; the clock at `at` minutes. */
async function heldToken(t: Fixture, at: number): Promise<{ user: string; stored: string; start: number }> {
  const user = uniqueUser();
  const start = t.clock.now().getTime();
  const stored = (await t.connectUser(user)).accessToken;
  t.clock.set(start + 39 * MIN);
  await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 18 }); // held until 57
  t.clock.set(start + at * MIN);
  return { user, stored, start };
}

describe("drain waits are bounded by default, said at warn and counted when they start", () => {
  let t: Fixture | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it("by default a call never blocks longer than 10 minutes: an 11-minute wait fails at once with TokenHeldError", async () => {
    t = await serviceOn("sqljs", { flags: FLAGS });
    const { user, start } = await heldToken(t, 46);
    const error = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 15 }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(TokenHeldError);
    expect((error as TokenHeldError).heldUntil.getTime()).to.equal(start + 57 * MIN);
    expect(t.clock.now().getTime(), "no time passed").to.equal(start + 46 * MIN);
    expect((await t.rawRows(user))[0].drainingSince, "no drain was started").to.equal(null);
  });

  it("a wait within the default bound (4 min ≤ 10 min) happens, with a warn line naming the bound, counted once", async () => {
    t = await serviceOn("sqljs", { flags: FLAGS });
    const { user, stored, start } = await heldToken(t, 53);
    const token = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 10 });
    expect(token!.value === stored).to.equal(false);
    expect(t.clock.now().getTime()).to.be.at.least(start + 57 * MIN);
    const line = t.logger.find(WAITING);
    expect(line?.level).to.equal("warn");
    expect(line?.fields).to.deep.include({ host: t.host, waitMs: 4 * MIN, maxWaitMs: 10 * MIN, reservedUntil: new Date(start + 57 * MIN).toISOString() });
    expect(t.logger.filter(WAITING), "one line per waiting hand-out, not per poll").to.have.length(1);
    expect(await metric(t, "scm_token_handout_waits_started_total", { host: t.host, reason: "drain" })).to.equal(1);
  });

  it("longer waits are opt-in: per call (maxWaitMs) or per service (defaultMaxWaitMs)", async () => {
    t = await serviceOn("sqljs", { flags: FLAGS });
    const perCall = await heldToken(t, 46);
    expect(await t.service.getTokenForHost(perCall.user, t.host, { lifetimeMinutes: 15, maxWaitMs: 15 * MIN })).to.not.equal(undefined);
    expect(t.clock.now().getTime()).to.be.at.least(perCall.start + 57 * MIN);
    expect(t.logger.find(WAITING)?.fields).to.deep.include({ waitMs: 11 * MIN, maxWaitMs: 15 * MIN });
    await t.close();

    t = await serviceOn("sqljs", { flags: FLAGS, serviceOptions: { defaultMaxWaitMs: 15 * MIN } });
    const perService = await heldToken(t, 46);
    expect(await t.service.getTokenForHost(perService.user, t.host, { lifetimeMinutes: 15 })).to.not.equal(undefined);
    expect(t.clock.now().getTime()).to.be.at.least(perService.start + 57 * MIN);
  });

  it("a wait that ends in an error was counted and logged when it started", async () => {
    t = await serviceOn("sqljs", { flags: FLAGS });
    const { user } = await heldToken(t, 57 - 0.25);
    t.scm.failNext({ kind: "fail_before_commit", status: 503 }, 10);
    const error = await t.service.getTokenForHost(user, t.host, { lifetimeMinutes: 10 }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(ScmUnavailableError);
    expect(t.logger.find(WAITING)?.level).to.equal("warn");
    expect(await metric(t, "scm_token_handout_waits_started_total", { reason: "drain" })).to.equal(1);
    expect(await metric(t, "scm_token_refresh_requests_total", { result: "scm_unavailable" })).to.equal(1);
  });
});
