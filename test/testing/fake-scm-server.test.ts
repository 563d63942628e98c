import { expect } from "chai";
import type { Clock } from "../../src/clock";
import { FakeClock } from "../../src/testing/fake-clock";
import { FAKE_SCM_PROFILES, FakeScmServer, type FakeScmProfileName, type FakeScmServerOptions } from "../../src/testing/fake-scm";

// Real HTTP against the fake, no sleeps: time moves through FakeClock, races are held with pause points,
// and "has the request arrived yet?" is answered by polling the server's counters between event-loop turns.

const T0 = "2026-01-01T00:00:00.000Z";
const DOORKEEPER_INVALID_GRANT =
  "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.";

let servers: FakeScmServer[] = [];

async function start(options: FakeScmServerOptions): Promise<FakeScmServer> {
  const server = await FakeScmServer.start(options);
  servers.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

async function toReply(res: Response): Promise<Reply> {
  const text = await res.text();
  let json: Record<string, unknown> = {};
  if ((res.headers.get("content-type") ?? "").startsWith("application/json") && text !== "") {
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = {};
    }
  }
  return { status: res.status, headers: res.headers, text, json };
}

interface RefreshOptions {
  format?: "form" | "json";
  auth?: "body" | "basic" | "query";
  accept?: string | null;
  params?: Record<string, string>;
  clientSecret?: string;
  signal?: AbortSignal;
}

function refreshRequest(scm: FakeScmServer, refreshToken: string, o: RefreshOptions = {}): Promise<Response> {
  const secret = o.clientSecret ?? "test-secret";
  const params: Record<string, string> = { grant_type: "refresh_token", refresh_token: refreshToken, ...o.params };
  const headers: Record<string, string> = {};
  if (o.accept !== null) headers["Accept"] = o.accept ?? "application/json";
  const auth = o.auth ?? "body";
  if (auth === "basic") headers["Authorization"] = `Basic ${Buffer.from(`test-client:${secret}`).toString("base64")}`;
  if (auth === "body") Object.assign(params, { client_id: "test-client", client_secret: secret });
  let url = scm.baseUrl + scm.tokenPath;
  let body: string | undefined;
  if (auth === "query") {
    url += `?${new URLSearchParams({ ...params, client_id: "test-client", client_secret: secret }).toString()}`;
  } else if (o.format === "json") {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(params);
  } else {
    headers["Content-Type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(params).toString();
  }
  return fetch(url, { method: "POST", headers, body, signal: o.signal });
}

async function refresh(scm: FakeScmServer, refreshToken: string, o: RefreshOptions = {}): Promise<Reply> {
  return toReply(await refreshRequest(scm, refreshToken, o));
}

async function callApi(scm: FakeScmServer, accessToken: string): Promise<Reply> {
  return toReply(await fetch(scm.baseUrl + scm.profile.resourcePath, { headers: { Authorization: `Bearer ${accessToken}` } }));
}

/** Yields to the event loop (letting socket I/O run) until `condition` holds. A guard, not a sleep. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const giveUpAt = Date.now() + 1500; // below mocha's default timeout, for a clear message
  while (!condition()) {
    if (Date.now() > giveUpAt) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Counts `now()` calls, so a test can wait until the server has looked at the clock. */
class CountingClock implements Clock {
  reads = 0;
  constructor(readonly inner: FakeClock) {}
  now(): Date {
    this.reads += 1;
    return this.inner.now();
  }
  sleep(ms: number): Promise<void> {
    return this.inner.sleep(ms);
  }
}

function tracked<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  const p = promise.finally(() => (done = true));
  return { promise: p, settled: () => done };
}

async function freshRefreshToken(scm: FakeScmServer, userId = "alice") {
  const issued = scm.issueTokens({ userId });
  expect(issued.refreshToken, "profile issues refresh tokens").to.be.a("string");
  return { ...issued, refreshToken: issued.refreshToken as string };
}

describe("FakeScmServer", () => {
  describe("start, profiles and issueTokens", () => {
    it("listens on 127.0.0.1 with a random port and exposes the resolved profile", async () => {
      const a = await start({ profile: "bitbucket_dc" });
      const b = await start({ profile: "bitbucket_dc", overrides: { accessTokenTtlSeconds: 60 } });
      expect(a.baseUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(a.baseUrl).to.not.equal(b.baseUrl);
      expect(a.tokenPath).to.equal("/rest/oauth2/latest/token");
      expect(b.profile.accessTokenTtlSeconds).to.equal(60);
      expect(FAKE_SCM_PROFILES.bitbucket_dc.accessTokenTtlSeconds).to.equal(3600); // overrides do not leak
    });

    it("has the research §5.9 lifetimes in its built-in profiles, frozen", () => {
      const ttl = (n: FakeScmProfileName) => [FAKE_SCM_PROFILES[n].accessTokenTtlSeconds, FAKE_SCM_PROFILES[n].refreshTokenTtlSeconds];
      expect(ttl("bitbucket_dc")).to.deep.equal([3600, 7_776_000]);
      expect(ttl("gitlab")).to.deep.equal([7200, null]);
      expect(ttl("github_app_user")).to.deep.equal([28_800, 15_897_600]);
      expect(ttl("github_oauth_app")).to.deep.equal([null, null]);
      expect(ttl("bitbucket_cloud")[0]).to.equal(7200);
      expect(ttl("rfc9700_strict")[0]).to.equal(3600);
      expect(ttl("keeps_old_access_tokens")[0]).to.equal(3600);
      expect(Object.isFrozen(FAKE_SCM_PROFILES.gitlab.responseQuirks)).to.equal(true);
    });

    it("issues tokens in each provider's shape, with expiry from the injected clock", async () => {
      const clock = new FakeClock(T0);
      const dc = (await start({ profile: "bitbucket_dc", clock })).issueTokens({ userId: "u" });
      expect(dc.accessToken.split(".")).to.have.length(3);
      for (const part of dc.accessToken.split(".")) expect(part).to.match(/^[A-Za-z0-9_-]+$/);
      expect(dc.expiresAt?.toISOString()).to.equal("2026-01-01T01:00:00.000Z");
      expect(dc.scopes).to.deep.equal(["REPO_READ", "REPO_WRITE"]);
      expect(dc.familyId).to.be.a("string");

      const gl = (await start({ profile: "gitlab", clock })).issueTokens({ scopes: ["api"] });
      expect(gl.accessToken).to.match(/^[0-9a-f]{64}$/);
      expect(gl.refreshToken).to.match(/^[0-9a-f]{64}$/);
      expect(gl.scopes).to.deep.equal(["api"]);

      const gh = (await start({ profile: "github_app_user", clock })).issueTokens();
      expect(gh.accessToken).to.match(/^ghu_[A-Za-z0-9]+$/);
      expect(gh.refreshToken).to.match(/^ghr_[A-Za-z0-9]+$/);

      const gho = (await start({ profile: "github_oauth_app", clock })).issueTokens();
      expect(gho.accessToken).to.match(/^gho_/);
      expect(gho).to.not.have.property("refreshToken");
      expect(gho).to.not.have.property("expiresAt");
    });

    it("rejects nonsense options", async () => {
      for (const bad of [
        { profile: "nope" as FakeScmProfileName },
        { profile: "gitlab" as const, overrides: { accessTokenTtlSeconds: -1 } },
        { profile: "gitlab" as const, clientId: "" },
      ]) {
        let error: unknown;
        await FakeScmServer.start(bad).then((s) => s.close(), (e: unknown) => (error = e));
        expect(error, JSON.stringify(bad)).to.be.instanceOf(RangeError);
      }
      const scm = await start({ profile: "gitlab" });
      expect(() => scm.issueTokens({ scopes: ["two words"] })).to.throw(RangeError);
      expect(() => scm.failNext({ kind: "hang" }, 0)).to.throw(RangeError);
      expect(() => scm.setLatency(-5)).to.throw(RangeError);
    });
  });

  describe("what a refresh does to the old access token", () => {
    it("bitbucket_dc: rotates, and the old access token gets 401 at once", async () => {
      const clock = new FakeClock(T0);
      const scm = await start({ profile: "bitbucket_dc", clock });
      const first = await freshRefreshToken(scm);
      expect((await callApi(scm, first.accessToken)).json).to.deep.equal({ user: "alice" });

      const r = await refresh(scm, first.refreshToken);
      expect(r.status).to.equal(200);
      expect(r.headers.get("cache-control")).to.equal("no-store");
      expect(Object.keys(r.json).sort()).to.deep.equal(["access_token", "expires_in", "refresh_token", "scope", "token_type"]);
      expect(r.json).to.include({ token_type: "bearer", expires_in: 3600, scope: "REPO_READ REPO_WRITE" });
      expect(r.json["refresh_token"]).to.not.equal(first.refreshToken);

      const old = await callApi(scm, first.accessToken);
      expect(old.status).to.equal(401);
      expect(scm.isAccessTokenLive(first.accessToken)).to.equal(false);
      expect((await callApi(scm, String(r.json["access_token"]))).json).to.deep.equal({ user: "alice" });
      expect(scm.counters.resourceRejectedRevokedByRefresh).to.equal(1);
    });

    it("keeps_old_access_tokens: the old access token stays valid until it expires", async () => {
      const clock = new FakeClock(T0);
      const scm = await start({ profile: "keeps_old_access_tokens", clock });
      const first = await freshRefreshToken(scm);
      clock.advanceMinutes(30);
      const r = await refresh(scm, first.refreshToken);
      expect(r.status).to.equal(200);
      expect((await callApi(scm, first.accessToken)).status).to.equal(200);
      expect(scm.isAccessTokenLive(first.accessToken)).to.equal(true);

      clock.advanceMinutes(30); // the first token's hour is up; the new one has 30 minutes left
      expect((await callApi(scm, first.accessToken)).json).to.include({ error_description: "The access token expired." });
      expect((await callApi(scm, String(r.json["access_token"]))).status).to.equal(200);
      expect(scm.counters.resourceRejectedRevokedByRefresh).to.equal(0);
    });

    it("bitbucket_cloud: old access token kept by default (override-able), `scope` and `scopes` both sent", async () => {
      const keep = await start({ profile: "bitbucket_cloud" });
      const a = await freshRefreshToken(keep);
      const r = await refresh(keep, a.refreshToken, { auth: "basic" });
      expect(r.json).to.include({ scope: "account repository", scopes: "account repository", state: "refresh_token", expires_in: 7200 });
      expect((await callApi(keep, a.accessToken)).status).to.equal(200);

      const revoke = await start({ profile: "bitbucket_cloud", overrides: { oldAccessTokenOnRefresh: "revoke_immediately" } });
      const b = await freshRefreshToken(revoke);
      expect((await refresh(revoke, b.refreshToken)).status).to.equal(200);
      expect((await callApi(revoke, b.accessToken)).status).to.equal(401);
    });

    it("rotateRefreshToken: false returns the same refresh token, which keeps working", async () => {
      const scm = await start({ profile: "bitbucket_cloud", overrides: { rotateRefreshToken: false } });
      const first = await freshRefreshToken(scm);
      const r1 = await refresh(scm, first.refreshToken);
      const r2 = await refresh(scm, first.refreshToken);
      expect([r1.status, r2.status]).to.deep.equal([200, 200]);
      expect(r1.json["refresh_token"]).to.equal(first.refreshToken);
      expect(r1.json["access_token"]).to.not.equal(r2.json["access_token"]);
      expect(scm.counters).to.include({ refreshSuccesses: 2, replays: 0, forks: 0 });
    });
  });

  describe("replaying a rotated refresh token", () => {
    async function replay(profile: FakeScmProfileName) {
      const scm = await start({ profile });
      const first = await freshRefreshToken(scm);
      const ok = await refresh(scm, first.refreshToken);
      expect(ok.status).to.equal(200);
      const again = await refresh(scm, first.refreshToken);
      return { scm, again, next: { accessToken: String(ok.json["access_token"]), refreshToken: String(ok.json["refresh_token"]) } };
    }

    it("bitbucket_dc: 400 invalid_grant, no family revocation", async () => {
      const { scm, again, next } = await replay("bitbucket_dc");
      expect(again.status).to.equal(400);
      expect(again.json).to.deep.equal({ error: "invalid_grant", error_description: "oauth2.rest.error.invalid.refresh.token" });
      expect(scm.isAccessTokenLive(next.accessToken)).to.equal(true);
      expect((await refresh(scm, next.refreshToken)).status).to.equal(200);
      expect(scm.counters).to.include({ replays: 1, invalidGrants: 1, familyRevocations: 0 });
    });

    it("gitlab: 400 invalid_grant with Doorkeeper's description and WWW-Authenticate header", async () => {
      const { scm, again, next } = await replay("gitlab");
      expect(again.status).to.equal(400);
      expect(again.json).to.deep.equal({ error: "invalid_grant", error_description: DOORKEEPER_INVALID_GRANT });
      expect(again.headers.get("www-authenticate")).to.equal(
        `Bearer realm="Doorkeeper", error="invalid_grant", error_description="${DOORKEEPER_INVALID_GRANT}"`,
      );
      expect(scm.isAccessTokenLive(next.accessToken)).to.equal(true);
    });

    it("github_app_user: HTTP 200 with bad_refresh_token", async () => {
      const { scm, again } = await replay("github_app_user");
      expect(again.status).to.equal(200);
      expect(again.json).to.include({ error: "bad_refresh_token", error_description: "The refresh token passed is incorrect or expired." });
      expect(again.json["error_uri"]).to.be.a("string");
      expect(again.json).to.not.have.property("access_token");
      expect(scm.counters.invalidGrants).to.equal(1);
    });

    it("bitbucket_cloud: 400 invalid_request 'Invalid refresh_token'", async () => {
      const { again } = await replay("bitbucket_cloud");
      expect(again.status).to.equal(400);
      expect(again.json).to.deep.equal({ error: "invalid_request", error_description: "Invalid refresh_token" });
    });

    it("rfc9700_strict: 400 invalid_grant and the whole family is revoked", async () => {
      const { scm, again, next } = await replay("rfc9700_strict");
      expect(again.status).to.equal(400);
      expect(again.json["error"]).to.equal("invalid_grant");
      expect((await callApi(scm, next.accessToken)).status).to.equal(401);
      expect((await refresh(scm, next.refreshToken)).json["error"]).to.equal("invalid_grant");
      expect(scm.counters).to.include({ replays: 1, familyRevocations: 1, invalidGrants: 2 });
    });

    it("replayPolicy 'allow': the replay succeeds and forks the family", async () => {
      const scm = await start({ profile: "keeps_old_access_tokens", overrides: { replayPolicy: "allow" } });
      const first = await freshRefreshToken(scm);
      const a = await refresh(scm, first.refreshToken);
      const b = await refresh(scm, first.refreshToken);
      expect([a.status, b.status]).to.deep.equal([200, 200]);
      expect((await refresh(scm, String(a.json["refresh_token"]))).status).to.equal(200);
      expect((await refresh(scm, String(b.json["refresh_token"]))).status).to.equal(200);
      expect(scm.counters).to.include({ replays: 1, forks: 1, refreshSuccesses: 4 });
    });

    it("an unknown refresh token is invalid_grant but not a replay", async () => {
      const scm = await start({ profile: "gitlab" });
      const r = await refresh(scm, "f".repeat(64));
      expect(r.status).to.equal(400);
      expect(scm.counters).to.include({ invalidGrants: 1, replays: 0, refreshAttempts: 1 });
    });
  });

  describe("wire format and client authentication", () => {
    it("bitbucket_dc: a JSON body gets HTTP 500 mentioning @FormParam, and changes nothing", async () => {
      const scm = await start({ profile: "bitbucket_dc" });
      const t = await freshRefreshToken(scm);
      const r = await refresh(scm, t.refreshToken, { format: "json" });
      expect(r.status).to.equal(500);
      expect(String(r.json["message"])).to.contain("@FormParam");
      expect(scm.counters.refreshAttempts).to.equal(0);
      expect((await refresh(scm, t.refreshToken)).status).to.equal(200);
    });

    it("gitlab: JSON body accepted; Bearer token type, created_at from the clock, 64-hex tokens", async () => {
      const clock = new FakeClock(T0);
      const scm = await start({ profile: "gitlab", clock });
      const t = await freshRefreshToken(scm);
      clock.advanceMinutes(90);
      const r = await refresh(scm, t.refreshToken, { format: "json" });
      expect(r.status).to.equal(200);
      expect(r.json).to.include({ token_type: "Bearer", expires_in: 7200, scope: "api read_repository" });
      expect(r.json["created_at"]).to.equal(Date.parse(T0) / 1000 + 90 * 60);
      expect(r.json["access_token"]).to.match(/^[0-9a-f]{64}$/);
    });

    it("gitlab: HTTP Basic client authentication accepted", async () => {
      const scm = await start({ profile: "gitlab" });
      const t = await freshRefreshToken(scm);
      expect((await refresh(scm, t.refreshToken, { auth: "basic" })).status).to.equal(200);
    });

    it("github: form-encoded response without Accept: application/json, JSON with it", async () => {
      const scm = await start({ profile: "github_app_user" });
      const t = await freshRefreshToken(scm);
      const res = await refreshRequest(scm, t.refreshToken, { accept: null });
      expect(res.status).to.equal(200);
      expect(res.headers.get("content-type")).to.match(/^application\/x-www-form-urlencoded/);
      const form = new URLSearchParams(await res.text());
      expect(form.get("access_token")).to.match(/^ghu_/);
      expect(form.get("refresh_token")).to.match(/^ghr_/);
      expect(form.get("expires_in")).to.equal("28800");
      expect(form.get("refresh_token_expires_in")).to.equal("15897600");
      expect(form.get("scope")).to.equal("");
      expect(form.get("token_type")).to.equal("bearer");

      const json = await refresh(scm, String(form.get("refresh_token")));
      expect(json.headers.get("content-type")).to.match(/^application\/json/);
      expect(json.json).to.include({ expires_in: 28800, refresh_token_expires_in: 15_897_600, scope: "", token_type: "bearer" });
    });

    it("github: errors are form-encoded too without Accept json", async () => {
      const scm = await start({ profile: "github_app_user" });
      const res = await refreshRequest(scm, "ghr_unknown", { accept: null });
      expect(res.status).to.equal(200);
      expect(new URLSearchParams(await res.text()).get("error")).to.equal("bad_refresh_token");
    });

    it("github: parameters in the query string work; Basic auth is refused with incorrect_client_credentials", async () => {
      const scm = await start({ profile: "github_app_user" });
      const t = await freshRefreshToken(scm);
      const basic = await refresh(scm, t.refreshToken, { auth: "basic" });
      expect(basic.status).to.equal(200);
      expect(basic.json["error"]).to.equal("incorrect_client_credentials");
      const query = await refresh(scm, t.refreshToken, { auth: "query" });
      expect(query.status).to.equal(200);
      expect(query.json["access_token"]).to.match(/^ghu_/);
    });

    it("wrong client credentials: the profile's invalid_client, and the refresh token survives", async () => {
      const dc = await start({ profile: "bitbucket_dc" });
      const t = await freshRefreshToken(dc);
      const body = await refresh(dc, t.refreshToken, { clientSecret: "wrong" });
      expect(body.status).to.equal(401);
      expect(body.json["error"]).to.equal("invalid_client");
      expect(body.headers.get("www-authenticate")).to.equal(null);
      const basic = await refresh(dc, t.refreshToken, { clientSecret: "wrong", auth: "basic" });
      expect(basic.status).to.equal(401);
      expect(basic.headers.get("www-authenticate")).to.match(/^Basic /); // RFC 6749 §5.2
      expect((await refresh(dc, t.refreshToken)).status).to.equal(200);

      const gl = await start({ profile: "gitlab" });
      const g = await refresh(gl, (await freshRefreshToken(gl)).refreshToken, { clientSecret: "wrong" });
      expect(g.status).to.equal(401);
      expect(g.headers.get("www-authenticate")).to.match(/^Bearer realm="Doorkeeper", error="invalid_client"/);

      const gh = await start({ profile: "github_app_user" });
      const h = await refresh(gh, (await freshRefreshToken(gh)).refreshToken, { clientSecret: "wrong" });
      expect(h.status).to.equal(200);
      expect(h.json["error"]).to.equal("incorrect_client_credentials");
      expect(gh.counters).to.include({ tokenRequests: 1, refreshAttempts: 0 });
    });

    it("custom client credentials", async () => {
      const scm = await start({ profile: "gitlab", clientId: "my-app", clientSecret: "s3cret" });
      const t = await freshRefreshToken(scm);
      expect((await refresh(scm, t.refreshToken)).status).to.equal(401);
      const res = await fetch(scm.baseUrl + scm.tokenPath, {
        method: "POST",
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: t.refreshToken, client_id: "my-app", client_secret: "s3cret" }),
      });
      expect(res.status).to.equal(200);
    });

    it("other grant types get unsupported_grant_type; missing parameters invalid_request", async () => {
      const scm = await start({ profile: "rfc9700_strict" });
      const t = await freshRefreshToken(scm);
      const code = await refresh(scm, t.refreshToken, { params: { grant_type: "client_credentials" } });
      expect([code.status, code.json["error"]]).to.deep.equal([400, "unsupported_grant_type"]);
      const noCode = await refresh(scm, t.refreshToken, { params: { grant_type: "authorization_code" } });
      expect([noCode.status, noCode.json["error"]]).to.deep.equal([400, "invalid_request"]);
      const noToken = await refresh(scm, "", {});
      expect([noToken.status, noToken.json["error"]]).to.deep.equal([400, "invalid_request"]);
      const noGrant = await fetch(scm.baseUrl + scm.tokenPath, {
        method: "POST",
        body: new URLSearchParams({ refresh_token: t.refreshToken, client_id: "test-client", client_secret: "test-secret" }),
      });
      expect(noGrant.status).to.equal(400);
      expect(((await noGrant.json()) as Record<string, unknown>)["error"]).to.equal("invalid_request");
      expect(scm.counters.refreshAttempts).to.equal(0);
    });

    it("unknown paths get 404 and wrong methods 405", async () => {
      const scm = await start({ profile: "gitlab" });
      expect((await fetch(`${scm.baseUrl}/nope`)).status).to.equal(404);
      expect((await fetch(scm.baseUrl + scm.tokenPath)).status).to.equal(405);
      expect((await fetch(scm.baseUrl + scm.profile.resourcePath, { method: "POST" })).status).to.equal(405);
    });

    it("quirk knobs: omitExpiresIn (gitlab#360729) and expiresInAsString (old GitHub docs)", async () => {
      const omit = await start({ profile: "gitlab", overrides: { responseQuirks: { omitExpiresIn: true } } });
      const a = await refresh(omit, (await freshRefreshToken(omit)).refreshToken);
      expect(a.json).to.not.have.property("expires_in");
      expect(a.json["created_at"]).to.be.a("number");
      expect(omit.profile.responseQuirks.emitCreatedAt).to.equal(true); // partial override merged

      const str = await start({ profile: "github_app_user", overrides: { responseQuirks: { expiresInAsString: true } } });
      const b = await refresh(str, (await freshRefreshToken(str)).refreshToken);
      expect(b.json).to.include({ expires_in: "28800", refresh_token_expires_in: "15897600" });
    });

    it("requireRedirectUri (bitbucket_dc strict): invalid_grant without the registered redirect_uri", async () => {
      const scm = await start({ profile: "bitbucket_dc", redirectUri: "https://app.example/cb", overrides: { requireRedirectUri: true } });
      const t = await freshRefreshToken(scm);
      expect((await refresh(scm, t.refreshToken)).json["error"]).to.equal("invalid_grant");
      expect((await refresh(scm, t.refreshToken, { params: { redirect_uri: "https://other.example/cb" } })).status).to.equal(400);
      expect((await refresh(scm, t.refreshToken, { params: { redirect_uri: "https://app.example/cb" } })).status).to.equal(200);
    });

    it("scope on refresh may narrow but not widen", async () => {
      const scm = await start({ profile: "gitlab" });
      const t = await freshRefreshToken(scm);
      const wide = await refresh(scm, t.refreshToken, { params: { scope: "api sudo" } });
      expect([wide.status, wide.json["error"]]).to.deep.equal([400, "invalid_scope"]);
      const narrow = await refresh(scm, t.refreshToken, { params: { scope: "read_repository" } });
      expect(narrow.json["scope"]).to.equal("read_repository");
    });

    it("github_oauth_app: tokens never expire; a refresh attempt gets bad_refresh_token", async () => {
      const clock = new FakeClock(T0);
      const scm = await start({ profile: "github_oauth_app", clock });
      const t = scm.issueTokens();
      clock.advance(10 * 365 * 86_400_000);
      expect((await callApi(scm, t.accessToken)).status).to.equal(200);
      const r = await refresh(scm, "ghr_whatever");
      expect(r.status).to.equal(200);
      expect(r.json["error"]).to.equal("bad_refresh_token");
    });
  });

  describe("time comes from the injected clock", () => {
    it("an access token is live up to, not including, its expiry instant; gitlab says 'Token is expired'", async () => {
      const clock = new FakeClock(T0);
      const scm = await start({ profile: "gitlab", clock });
      const t = scm.issueTokens();
      clock.advance(7200 * 1000 - 1);
      expect((await callApi(scm, t.accessToken)).status).to.equal(200);
      clock.advance(1);
      const dead = await callApi(scm, t.accessToken);
      expect(dead.status).to.equal(401);
      expect(dead.json).to.deep.equal({
        error: "invalid_token",
        error_description: "Token is expired. You can either do re-authorization or token refresh.",
      });
      expect(scm.isAccessTokenLive(t.accessToken)).to.equal(false);
      // ... and the refresh token (no expiry on GitLab) still works
      expect((await refresh(scm, t.refreshToken as string)).status).to.equal(200);
    });

    it("refresh tokens expire per token, so BB DC's 90 days slide with each rotation", async () => {
      const clock = new FakeClock(T0);
      const scm = await start({ profile: "bitbucket_dc", clock });
      const t = await freshRefreshToken(scm);
      clock.advance(80 * 86_400_000);
      const r = await refresh(scm, t.refreshToken);
      expect(r.status).to.equal(200);
      clock.advance(85 * 86_400_000); // day 165: 85 days after the rotation
      expect((await refresh(scm, String(r.json["refresh_token"]))).status).to.equal(200);

      const old = await freshRefreshToken(scm);
      clock.advance(90 * 86_400_000);
      expect((await refresh(scm, old.refreshToken)).json["error"]).to.equal("invalid_grant");
      expect(scm.counters.replays).to.equal(0);
    });

    it("github_app_user: an expired refresh token gets bad_refresh_token", async () => {
      const clock = new FakeClock(T0);
      const scm = await start({ profile: "github_app_user", clock });
      const t = await freshRefreshToken(scm);
      clock.advance(15_897_600 * 1000);
      expect((await refresh(scm, t.refreshToken)).json["error"]).to.equal("bad_refresh_token");
    });
  });

  describe("concurrency", () => {
    it("gitlab: 5 concurrent refreshes with the same refresh token have exactly one winner", async () => {
      const scm = await start({ profile: "gitlab" });
      const t = await freshRefreshToken(scm);
      const replies = await Promise.all(Array.from({ length: 5 }, () => refresh(scm, t.refreshToken)));
      expect(replies.map((r) => r.status).sort()).to.deep.equal([200, 400, 400, 400, 400]);
      for (const r of replies.filter((x) => x.status === 400)) expect(r.json["error"]).to.equal("invalid_grant");
      expect(scm.counters).to.include({ refreshAttempts: 5, refreshSuccesses: 1, invalidGrants: 4, replays: 4, forks: 0 });
    });

    it("gitlab: refreshes of one family wait for the one holding the row lock; the losers then see the tombstone", async () => {
      const scm = await start({ profile: "gitlab" });
      const t = await freshRefreshToken(scm);
      const held = scm.pauseAt("afterValidate");
      const first = refresh(scm, t.refreshToken);
      await held.reached;
      const others = Array.from({ length: 4 }, () => tracked(refresh(scm, t.refreshToken)));
      await until(() => scm.counters.refreshAttempts === 5, "all five refreshes arrived");
      expect(scm.counters.invalidGrants, "losers are blocked on the lock, not rejected").to.equal(0);
      expect(others.some((o) => o.settled())).to.equal(false);
      held.release();
      expect((await first).status).to.equal(200);
      const rest = await Promise.all(others.map((o) => o.promise));
      expect(rest.map((r) => r.status)).to.deep.equal([400, 400, 400, 400]);
      expect(scm.counters).to.include({ refreshSuccesses: 1, invalidGrants: 4 });
    });

    it("gitlab: different families do not wait for each other", async () => {
      const scm = await start({ profile: "gitlab" });
      const a = await freshRefreshToken(scm, "a");
      const b = await freshRefreshToken(scm, "b");
      const held = scm.pauseAt("afterValidate");
      const first = refresh(scm, a.refreshToken);
      await held.reached;
      expect((await refresh(scm, b.refreshToken)).status).to.equal(200);
      held.release();
      expect((await first).status).to.equal(200);
    });

    it("bitbucket_dc: one global lock; a waiter times out with 500 once the clock passes globalLockTimeoutMs", async () => {
      const clock = new CountingClock(new FakeClock(T0, { autoAdvance: false }));
      const scm = await start({ profile: "bitbucket_dc", clock });
      const [a, b, c] = [await freshRefreshToken(scm, "a"), await freshRefreshToken(scm, "b"), await freshRefreshToken(scm, "c")];

      // 1. Just short of the timeout: once the waiter has looked at the clock, it still gets the lock.
      const held = scm.pauseAt("afterValidate");
      const first = refresh(scm, a.refreshToken);
      await held.reached;
      const second = tracked(refresh(scm, b.refreshToken)); // another user's family: still blocked
      await until(() => scm.counters.refreshAttempts === 2, "second refresh arrived");
      clock.inner.advance(9_999);
      const reads = clock.reads;
      await until(() => clock.reads >= reads + 2 || second.settled(), "the lock waiter checked the clock");
      expect(second.settled()).to.equal(false);
      held.release();
      expect([(await first).status, (await second.promise).status]).to.deep.equal([200, 200]);

      // 2. At the timeout: 500 with the plugin's exception, and nothing changed.
      const held2 = scm.pauseAt("afterValidate");
      const third = refresh(scm, String((await second.promise).json["refresh_token"]));
      await held2.reached;
      const fourth = refresh(scm, c.refreshToken);
      await until(() => scm.counters.refreshAttempts === 4, "fourth refresh arrived");
      clock.inner.advance(10_000);
      const timedOut = await fourth;
      expect(timedOut.status).to.equal(500);
      expect(String(timedOut.json["message"])).to.contain("IllegalMonitorStateException");
      held2.release();
      expect((await third).status).to.equal(200);
      expect((await refresh(scm, c.refreshToken)).status).to.equal(200);
    });

    it("bitbucket_dc: a waiter gets the lock when the holder finishes, without moving a FakeClock", async () => {
      const clock = new FakeClock(T0); // autoAdvance: waiting must not call sleep()
      const scm = await start({ profile: "bitbucket_dc", clock });
      const a = await freshRefreshToken(scm, "a");
      const b = await freshRefreshToken(scm, "b");
      const held = scm.pauseAt("afterValidate");
      const first = refresh(scm, a.refreshToken);
      await held.reached;
      const second = tracked(refresh(scm, b.refreshToken));
      await until(() => scm.counters.refreshAttempts === 2, "second refresh arrived");
      expect(second.settled()).to.equal(false);
      held.release();
      expect([(await first).status, (await second.promise).status]).to.deep.equal([200, 200]);
      expect(clock.now().toISOString()).to.equal(T0);
    });

    it("bitbucket_dc: the same refresh token twice — loser gets invalid_grant; with toctouBothSucceed the family forks", async () => {
      for (const toctouBothSucceed of [false, true]) {
        const scm = await start({ profile: "bitbucket_dc", clock: new FakeClock(T0, { autoAdvance: false }), overrides: { toctouBothSucceed } });
        const t = await freshRefreshToken(scm);
        const held = scm.pauseAt("afterValidate");
        const first = refresh(scm, t.refreshToken);
        await held.reached;
        const second = refresh(scm, t.refreshToken); // passes the pre-lock lookup, then waits for the lock
        await until(() => scm.counters.refreshAttempts === 2, "second refresh arrived");
        held.release();
        const [r1, r2] = [await first, await second];
        if (!toctouBothSucceed) {
          expect([r1.status, r2.status]).to.deep.equal([200, 400]);
          expect(scm.counters).to.include({ refreshSuccesses: 1, forks: 0, replays: 1 });
        } else {
          expect([r1.status, r2.status]).to.deep.equal([200, 200]);
          expect(r1.json["refresh_token"]).to.not.equal(r2.json["refresh_token"]);
          expect(scm.counters).to.include({ refreshSuccesses: 2, forks: 1 });
          // two live token pairs
          expect((await refresh(scm, String(r1.json["refresh_token"]))).status).to.equal(200);
          expect((await refresh(scm, String(r2.json["refresh_token"]))).status).to.equal(200);
          // a slightly later duplicate fails at the pre-lock lookup
          expect((await refresh(scm, t.refreshToken)).status).to.equal(400);
        }
      }
    });
  });

  describe("injected failures", () => {
    it("fail_before_commit: 503 (or the given status), no state change, the retry succeeds", async () => {
      const scm = await start({ profile: "gitlab" });
      const t = await freshRefreshToken(scm);
      scm.failNext({ kind: "fail_before_commit" });
      scm.failNext({ kind: "fail_before_commit", status: 500 });
      expect((await refresh(scm, t.refreshToken)).status).to.equal(503);
      expect((await refresh(scm, t.refreshToken)).status).to.equal(500);
      expect(scm.isAccessTokenLive(t.accessToken)).to.equal(true);
      expect((await refresh(scm, t.refreshToken)).status).to.equal(200);
      expect(scm.counters).to.include({ tokenRequests: 3, refreshSuccesses: 1 });
    });

    it("commit_then_fail: rotates, answers 502; the client is left with a dead access and refresh token", async () => {
      const scm = await start({ profile: "gitlab" });
      const t = await freshRefreshToken(scm);
      scm.failNext({ kind: "commit_then_fail" });
      const r = await refresh(scm, t.refreshToken);
      expect(r.status).to.equal(502);
      expect(r.text).to.not.contain("access_token");
      expect(scm.counters.refreshSuccesses).to.equal(1);
      expect(scm.isAccessTokenLive(t.accessToken)).to.equal(false);
      expect((await refresh(scm, t.refreshToken)).json["error"]).to.equal("invalid_grant");

      scm.failNext({ kind: "commit_then_fail", status: 504 });
      expect((await refresh(scm, (await freshRefreshToken(scm)).refreshToken)).status).to.equal(504);
    });

    it("commit_then_reset: rotates, then the connection is reset", async () => {
      const scm = await start({ profile: "bitbucket_dc" });
      const t = await freshRefreshToken(scm);
      scm.failNext({ kind: "commit_then_reset" });
      let error: unknown;
      await refreshRequest(scm, t.refreshToken).then(
        () => undefined,
        (e: unknown) => (error = e),
      );
      expect(error).to.be.instanceOf(Error);
      expect(scm.counters.refreshSuccesses).to.equal(1);
      expect((await refresh(scm, t.refreshToken)).status).to.equal(400);
    });

    it("hang: no answer, no state change; the client's timeout (here an abort) fires", async () => {
      const scm = await start({ profile: "gitlab" });
      const t = await freshRefreshToken(scm);
      scm.failNext({ kind: "hang" });
      const abort = new AbortController();
      const pending = tracked(refreshRequest(scm, t.refreshToken, { signal: abort.signal }).then(() => "answered", (e: unknown) => (e as Error).name));
      await until(() => scm.counters.tokenRequests === 1, "request arrived");
      await new Promise((resolve) => setImmediate(resolve));
      expect(pending.settled()).to.equal(false);
      abort.abort();
      expect(await pending.promise).to.equal("AbortError");
      expect((await refresh(scm, t.refreshToken)).status).to.equal(200);
    });

    it("hang: close() ends the hanging request", async () => {
      const scm = await start({ profile: "gitlab" });
      const t = await freshRefreshToken(scm);
      scm.failNext({ kind: "hang" });
      const pending = refreshRequest(scm, t.refreshToken).then(() => "answered", () => "failed");
      await until(() => scm.counters.tokenRequests === 1, "request arrived");
      await scm.close();
      expect(await pending).to.equal("failed");
    });

    it("malformed_json, html_502, empty_body, rate_limited: broken answers with no state change", async () => {
      const scm = await start({ profile: "gitlab" });
      const t = await freshRefreshToken(scm);
      scm.failNext({ kind: "malformed_json" });
      scm.failNext({ kind: "html_502" });
      scm.failNext({ kind: "empty_body" });
      scm.failNext({ kind: "rate_limited" });
      scm.failNext({ kind: "rate_limited", retryAfterSeconds: 7 });

      const bad = await refreshRequest(scm, t.refreshToken);
      expect(bad.status).to.equal(200);
      const badText = await bad.text();
      expect(() => JSON.parse(badText) as unknown).to.throw(SyntaxError);

      const html = await refresh(scm, t.refreshToken);
      expect(html.status).to.equal(502);
      expect(html.headers.get("content-type")).to.match(/^text\/html/);
      expect(html.text).to.contain("<html>");

      const empty = await refresh(scm, t.refreshToken);
      expect([empty.status, empty.text]).to.deep.equal([200, ""]);

      const limited = await refresh(scm, t.refreshToken);
      expect([limited.status, limited.headers.get("retry-after")]).to.deep.equal([429, "60"]);
      expect((await refresh(scm, t.refreshToken)).headers.get("retry-after")).to.equal("7");

      expect(scm.counters).to.include({ tokenRequests: 5, refreshAttempts: 0, refreshSuccesses: 0 });
      expect((await refresh(scm, t.refreshToken)).status).to.equal(200);
    });

    it("lock_timeout: the profile's 500, no state change", async () => {
      const scm = await start({ profile: "bitbucket_dc" });
      const t = await freshRefreshToken(scm);
      scm.failNext({ kind: "lock_timeout" }, 2);
      for (let i = 0; i < 2; i++) {
        const r = await refresh(scm, t.refreshToken);
        expect(r.status).to.equal(500);
        expect(r.json).to.deep.equal({ "status-code": 500, message: "java.lang.IllegalMonitorStateException: multiple create attempts" });
      }
      expect((await refresh(scm, t.refreshToken)).status).to.equal(200);
    });
  });

  describe("pause points", () => {
    it("afterValidate: nothing is committed while held", async () => {
      const scm = await start({ profile: "bitbucket_dc" });
      const t = await freshRefreshToken(scm);
      const held = scm.pauseAt("afterValidate");
      const pending = tracked(refresh(scm, t.refreshToken));
      await held.reached;
      expect(scm.counters.refreshSuccesses).to.equal(0);
      expect(scm.isAccessTokenLive(t.accessToken)).to.equal(true);
      expect(pending.settled()).to.equal(false);
      held.release();
      const r = await pending.promise;
      expect(r.status).to.equal(200);
      expect(scm.isAccessTokenLive(t.accessToken)).to.equal(false);
    });

    it("afterCommit: committed (old token dead) but the response not yet sent", async () => {
      const scm = await start({ profile: "bitbucket_dc" });
      const t = await freshRefreshToken(scm);
      const held = scm.pauseAt("afterCommit");
      const pending = tracked(refresh(scm, t.refreshToken));
      await held.reached;
      expect(scm.counters.refreshSuccesses).to.equal(1);
      expect(scm.isAccessTokenLive(t.accessToken)).to.equal(false);
      await new Promise((resolve) => setImmediate(resolve));
      expect(pending.settled()).to.equal(false);
      held.release();
      const r = await pending.promise;
      expect(scm.isAccessTokenLive(String(r.json["access_token"]))).to.equal(true);
    });

    it("a pause only holds the next request; release before arrival lets it through", async () => {
      const scm = await start({ profile: "gitlab" });
      const t = await freshRefreshToken(scm);
      const early = scm.pauseAt("afterCommit");
      early.release();
      const r = await refresh(scm, t.refreshToken);
      expect(r.status).to.equal(200);
      await early.reached; // resolves: the request did pass the point
      expect((await refresh(scm, String(r.json["refresh_token"]))).status).to.equal(200); // not held
    });

    it("close() releases held requests and rejects pauses nobody reached", async () => {
      const scm = await start({ profile: "gitlab" });
      const t = await freshRefreshToken(scm);
      const held = scm.pauseAt("afterValidate");
      const never = scm.pauseAt("afterCommit");
      const pending = refreshRequest(scm, t.refreshToken).then(() => "answered", () => "failed");
      await held.reached;
      await scm.close();
      expect(["answered", "failed"]).to.include(await pending);
      let error: unknown;
      await never.reached.catch((e: unknown) => (error = e));
      expect(error).to.be.instanceOf(Error);
    });
  });

  describe("out-of-band revocation", () => {
    it("revokeFamilyOf kills every token of that family only", async () => {
      const scm = await start({ profile: "gitlab" });
      const a = await freshRefreshToken(scm, "a");
      const b = await freshRefreshToken(scm, "b");
      scm.revokeFamilyOf(a.refreshToken);
      const api = await callApi(scm, a.accessToken);
      expect(api.status).to.equal(401);
      expect(api.json).to.deep.equal({ error: "invalid_token", error_description: "Token was revoked. You have to re-authorize from the user." });
      expect((await refresh(scm, a.refreshToken)).json["error"]).to.equal("invalid_grant");
      expect((await callApi(scm, b.accessToken)).status).to.equal(200);
      scm.revokeFamilyOf(b.accessToken); // by access token too
      expect(scm.isAccessTokenLive(b.accessToken)).to.equal(false);
      expect(scm.counters).to.include({ familyRevocations: 2, resourceRejectedRevokedByRefresh: 0, replays: 0 });
    });

    it("revokeFamilyOf an unknown token throws without echoing it", async () => {
      const scm = await start({ profile: "gitlab" });
      expect(() => scm.revokeFamilyOf("secret-looking-token")).to.throw(RangeError).with.property("message").that.does.not.contain("secret-looking-token");
    });

    it("revokeAll kills every family", async () => {
      const scm = await start({ profile: "bitbucket_dc" });
      const tokens = [await freshRefreshToken(scm, "a"), await freshRefreshToken(scm, "b")];
      scm.revokeAll();
      for (const t of tokens) {
        expect((await callApi(scm, t.accessToken)).status).to.equal(401);
        expect((await refresh(scm, t.refreshToken)).status).to.equal(400);
      }
      expect(scm.counters.familyRevocations).to.equal(2);
    });

    it("the resource endpoint rejects unknown and missing tokens with the profile's body", async () => {
      const scm = await start({ profile: "github_app_user" });
      expect((await callApi(scm, "ghu_nope")).json).to.include({ message: "Bad credentials" });
      expect((await fetch(scm.baseUrl + scm.profile.resourcePath)).status).to.equal(401);
    });
  });

  describe("counters", () => {
    it("count a whole story and reset in place", async () => {
      const scm = await start({ profile: "bitbucket_dc" });
      const counters = scm.counters;
      const t = await freshRefreshToken(scm);
      const r = await refresh(scm, t.refreshToken);
      await refresh(scm, t.refreshToken); // replay
      await callApi(scm, t.accessToken); // revoked by refresh
      await callApi(scm, String(r.json["access_token"]));
      await refresh(scm, t.refreshToken, { clientSecret: "wrong" });
      expect(counters).to.deep.equal({
        tokenRequests: 3,
        refreshAttempts: 2,
        refreshSuccesses: 1,
        invalidGrants: 1,
        replays: 1,
        forks: 0,
        familyRevocations: 0,
        resourceRequests: 2,
        resourceRejectedRevokedByRefresh: 1,
        authorizations: 0,
        codeExchanges: 0,
        revocations: 0,
      });
      scm.resetCounters();
      expect(scm.counters).to.equal(counters);
      expect(Object.values(counters).every((v) => v === 0)).to.equal(true);
    });
  });
});

describe("FakeScmServer.refreshTokenStatus", () => {
  it("tells whether a refresh token is active, rotated, revoked, expired or unknown", async () => {
    const clock = new FakeClock("2026-01-01T00:00:00Z");
    const scm = await FakeScmServer.start({ profile: "bitbucket_dc", clock });
    try {
      const first = scm.issueTokens({ userId: "u" });
      expect(scm.refreshTokenStatus(first.refreshToken!)).to.equal("active");
      const response = await fetch(scm.baseUrl + scm.tokenPath, {
        method: "POST",
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: first.refreshToken!, client_id: "test-client", client_secret: "test-secret" }),
      });
      const second = (await response.json()) as { refresh_token: string };
      expect(scm.refreshTokenStatus(first.refreshToken!)).to.equal("rotated");
      expect(scm.refreshTokenStatus(second.refresh_token)).to.equal("active");
      scm.revokeFamilyOf(second.refresh_token);
      expect(scm.refreshTokenStatus(second.refresh_token)).to.equal("revoked");
      const other = scm.issueTokens({ userId: "v" });
      clock.advance(91 * 24 * 3_600_000);
      expect(scm.refreshTokenStatus(other.refreshToken!)).to.equal("expired");
      expect(scm.refreshTokenStatus("never-issued")).to.equal("unknown");
    } finally {
      await scm.close();
    }
  });
});
