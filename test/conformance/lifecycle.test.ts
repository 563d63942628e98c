import { randomBytes } from "node:crypto";
import { expect } from "chai";
import { Registry } from "prom-client";
import type { DataSource } from "typeorm";
import { createTokenService } from "../../src/create-token-service";
import type { EncryptionKey } from "../../src/crypto/key-ring";
import { KeyRing } from "../../src/crypto/key-ring";
import { AuthorizationCodeRejectedError, AuthorizationDeniedError, ReauthorizationRequiredError } from "../../src/errors";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { ScmConnector } from "../../src/oauth/scm-connector";
import { RefreshRejectedError } from "../../src/providers/scm-provider";
import { TakeOnceSecrets } from "../../src/secrets/take-once/take-once-secrets";
import type { TokenService } from "../../src/token-service";
import { RowReader } from "../concurrency/harness";
import { closeDataSource, dbKinds, openTestDataSource, runDatabaseUrl } from "../support/databases";
import { uniqueUser as newUser } from "../support/service-fixture";
import { HOST, providerFor, startFakeTarget, startOidcTarget, type ConformanceTarget } from "./targets";
import { Worker } from "./workers";

/**
 * The whole OAuth lifecycle — connect (authorization code + PKCE S256), store, hand out, refresh with
 * rotation (opportunistic and forced), replay detection, concurrent refreshes from 4 processes,
 * disconnect with RFC 7009 revocation — run by the same test body against a certified authorization
 * server (panva's oidc-provider) and against the testing kit's fake SCM ("generic_oauth2"), so the
 * fake stays honest. `npm run test:conformance` (or `npm test -- --grep conformance`) runs only these.
 *
 * Time: oidc-provider keeps real time. The library runs on a FakeClock (shared with the fake SCM)
 * that the tests move forward, so a 10-minute token becomes due for an opportunistic (inside the
 * 5-minute horizon) or forced refresh (it cannot cover 5 minutes) without waiting.
 */

const TARGETS: Array<[string, () => Promise<ConformanceTarget>]> = [
  ["oidc-provider", startOidcTarget],
  ["fake generic_oauth2", startFakeTarget],
];
/** Every user connected here: deleted afterwards (the run's MariaDB database is shared with reaper tests). */
const users: string[] = [];
function uniqueUser(): string {
  const user = newUser("conformance");
  users.push(user);
  return user;
}

const PROCESSES = 4;
const CALLERS_PER_PROCESS = 5;

/** One pool of replica processes for both targets (starting them is the slow part), killed at the end. */
let pool: Promise<Worker[]> | undefined;
function workerPool(): Promise<Worker[]> {
  pool ??= Promise.all(Array.from({ length: PROCESSES }, () => Worker.start()));
  return pool;
}

describe("conformance: OAuth lifecycle", () => {
  // Start the replica processes now, so they load while the single-process scenarios run.
  before(() => {
    if (dbKinds().includes("mariadb")) workerPool().catch(() => undefined); // awaited (and reported) where used
  });
  after(async () => (await pool?.catch(() => []))?.forEach((w) => w.kill()));

for (const [label, start] of TARGETS) {
  describe(`conformance: OAuth lifecycle against ${label}`, function () {
    this.timeout(30_000);
    const kind = dbKinds().includes("mariadb") ? "mariadb" : "sqljs";
    let target: ConformanceTarget;
    let dataSource: DataSource;
    let key: EncryptionKey;
    let service: TokenService;
    let connector: ScmConnector;
    let rows: RowReader;

    before(async () => {
      target = await start();
      dataSource = await openTestDataSource(kind);
      key = { id: "conformance", key: randomBytes(32).toString("base64") };
      service = await createTokenService({
        dataSource,
        providers: [providerFor(target)],
        encryptionKeys: [key],
        clock: target.clock,
        flags: new StaticFeatureFlags({ opportunisticRefresh: true, horizonMinutes: 5 }),
        metricsRegistry: new Registry(),
        retry: { maxAttempts: 1 },
      });
      const secrets = new TakeOnceSecrets(dataSource, new KeyRing([key]), target.clock);
      connector = new ScmConnector({ service, secrets, redirectUri: "http://127.0.0.1:9/oauth/callback", clock: target.clock });
      rows = new RowReader(dataSource, key);
    });

    after(async () => {
      // Leave nothing behind: the users' entries, and pending authorizations (reaped once expired).
      for (const user of users.splice(0)) await service?.deleteTokens(user);
      if (service) {
        target.clock.advance(25 * 3600_000);
        await new TakeOnceSecrets(dataSource, new KeyRing([key]), target.clock).reapExpired();
      }
      await service?.close();
      if (dataSource) await closeDataSource(dataSource);
      await target?.close();
    });

    async function connect(user: string): Promise<void> {
      const started = await connector.startAuthorization(user, HOST, { scopes: ["repo:read", "repo:write"] });
      const connected = await connector.completeAuthorization(user, await target.authorize(started.url, true));
      expect(connected).to.deep.include({ host: HOST, scopes: ["repo:read", "repo:write"], refreshable: true });
    }

    it("connect → store → hand out → opportunistic refresh → forced refresh, rotating the refresh token each time", async () => {
      const user = uniqueUser();
      const before = target.counts();
      await connect(user);
      expect(target.counts().codeExchanges - before.codeExchanges).to.equal(1);
      const stored = await rows.read(user, HOST);

      // 10 minutes left, outside the 5-minute horizon: handed out as is.
      const a = (await service.getTokenForHost(user, HOST, { lifetimeMinutes: 1 }))!;
      expect(a.value).to.equal(stored.accessToken);
      expect(await target.isActive(a.value)).to.equal(true);
      expect(target.counts().refreshes).to.equal(before.refreshes);

      // 6 minutes later: 4 minutes left, unreserved → opportunistic refresh.
      target.clock.advanceMinutes(6);
      const b = (await service.getTokenForHost(user, HOST, { lifetimeMinutes: 1 }))!;
      const afterOpportunistic = await rows.read(user, HOST);
      expect(b.value).not.to.equal(a.value);
      expect(target.counts().refreshes - before.refreshes).to.equal(1);
      expect(afterOpportunistic.refreshToken).not.to.equal(stored.refreshToken); // rotated
      expect(await target.isActive(stored.refreshToken!), "the used refresh token").to.equal(false);
      expect(await target.isActive(afterOpportunistic.refreshToken!), "the new refresh token").to.equal(true);
      expect(await target.isActive(a.value), "the old access token stays valid until it expires").to.equal(true);

      // 8 minutes later: 2 minutes left, a 5-minute hand-out forces a refresh.
      target.clock.advanceMinutes(8);
      const c = (await service.getTokenForHost(user, HOST, { lifetimeMinutes: 5 }))!;
      const afterForced = await rows.read(user, HOST);
      expect(c.value).not.to.equal(b.value);
      expect(target.counts().refreshes - before.refreshes).to.equal(2);
      expect(afterForced.refreshToken).not.to.equal(afterOpportunistic.refreshToken);
      expect(await target.isActive(afterOpportunistic.refreshToken!)).to.equal(false);
      expect(await target.isActive(c.value)).to.equal(true);
      expect(target.counts()).to.deep.include({ replays: before.replays, grantsRevoked: before.grantsRevoked });
    });

    it("a replayed refresh token: the server revokes the grant → ReauthorizationRequiredError, and the current tokens die too", async () => {
      const user = uniqueUser();
      await connect(user);
      const old = await rows.read(user, HOST);
      target.clock.advanceMinutes(8);
      await service.getTokenForHost(user, HOST, { lifetimeMinutes: 5 }); // rotates: old.refreshToken is used up
      const current = await rows.read(user, HOST);
      const before = target.counts();

      // Put the used refresh token back (as a restored backup or a lost write would) and force a refresh.
      await service.storeToken(user, HOST, { value: old.accessToken, refreshToken: old.refreshToken, expiryDate: new Date(target.clock.now().getTime() + 60_000) });
      const error = await service.getTokenForHost(user, HOST, { lifetimeMinutes: 5 }).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(ReauthorizationRequiredError).and.to.include({ reason: "invalid_grant", oauthError: "invalid_grant" });
      expect(target.counts().replays - before.replays).to.equal(1);
      expect(target.counts().grantsRevoked - before.grantsRevoked).to.equal(1);
      expect(await target.isActive(current.refreshToken!), "reuse detection revoked the grant").to.equal(false);
      expect(await target.isActive(current.accessToken)).to.equal(false);
    });

    it("disconnect revokes at the server (RFC 7009): the old tokens are rejected afterwards", async () => {
      const user = uniqueUser();
      await connect(user);
      const token = (await service.getTokenForHost(user, HOST))!;
      const stored = await rows.read(user, HOST);
      const result = await service.disconnect(user, HOST);
      expect(result).to.deep.equal({ deleted: 1, hosts: [{ host: HOST, revocation: "revoked" }] });
      expect(await service.getTokenForHost(user, HOST)).to.equal(undefined);
      expect(await target.isActive(token.value), "access token").to.equal(false);
      expect(await target.isActive(stored.refreshToken!), "refresh token").to.equal(false);
      const refresh = await service.getProvider(HOST).refresh(stored.refreshToken!, { now: target.clock.now(), timeoutMs: 5000 }).catch((e: unknown) => e);
      expect(refresh).to.be.instanceOf(RefreshRejectedError).and.to.include({ oauthError: "invalid_grant" });
    });

    it("a denied authorization → AuthorizationDeniedError; a code with another authorization's verifier → AuthorizationCodeRejectedError; nothing stored", async () => {
      const user = uniqueUser();
      const denied = await connector.completeAuthorization(user, await target.authorize((await connector.startAuthorization(user, HOST)).url, false)).catch((e: unknown) => e);
      expect(denied).to.be.instanceOf(AuthorizationDeniedError).and.to.include({ oauthError: "access_denied" });

      const scopes = ["repo:read"];
      const first = await target.authorize((await connector.startAuthorization(user, HOST, { scopes })).url, true);
      const second = await connector.startAuthorization(user, HOST, { scopes });
      const swapped = { code: new URL(first).searchParams.get("code")!, state: second.state, iss: new URL(first).searchParams.get("iss") ?? undefined };
      const rejected = await connector.completeAuthorization(user, swapped).catch((e: unknown) => e);
      expect(rejected).to.be.instanceOf(AuthorizationCodeRejectedError).and.to.include({ oauthError: "invalid_grant" });
      expect(await service.getTokenForHost(user, HOST)).to.equal(undefined);
    });

    describe(`${PROCESSES} processes × ${CALLERS_PER_PROCESS} callers force a refresh at once (MariaDB)`, () => {
      const workers: Worker[] = [];
      before(async function () {
        if (kind !== "mariadb") this.skip();
        this.timeout(120_000); // forking 4 ts-node processes is slow on a loaded 2-core machine
        workers.push(...(await workerPool()));
        // Each process's clock runs 8 minutes ahead of the library clock here: the stored 10-minute
        // token has 2 minutes left there, so a 5-minute hand-out must refresh it.
        const offsetMs = target.clock.now().getTime() - Date.now() + 8 * 60_000;
        const { tokenUrl, clientId, clientSecret } = target.endpoints;
        await Promise.all(workers.map((w) => w.configure({ databaseUrl: runDatabaseUrl(), key, host: HOST, endpoints: { tokenUrl, clientId, clientSecret }, offsetMs })));
      });

      it("exactly one refresh reaches the server, no refresh token is ever replayed, the grant survives", async () => {
        const user = uniqueUser();
        await connect(user);
        const stored = await rows.read(user, HOST);
        const before = target.counts();
        await Promise.all(workers.map((w) => w.arm(user, CALLERS_PER_PROCESS, 5)));
        const results = (await Promise.all(workers.map((w) => w.go()))).flat();

        expect(results.filter((r) => !r.ok), JSON.stringify(results)).to.deep.equal([]);
        expect(new Set(results.map((r) => (r.ok ? r.hash : ""))).size, "every caller got the same new token").to.equal(1);
        const after = target.counts();
        expect(after.refreshes - before.refreshes, "refreshes at the server").to.equal(1);
        expect(after.replays - before.replays, "replayed refresh tokens").to.equal(0);
        expect(after.grantsRevoked - before.grantsRevoked, "grants revoked").to.equal(0);
        const now = await rows.read(user, HOST);
        expect(now.refreshToken).not.to.equal(stored.refreshToken);
        expect(await target.isActive(now.refreshToken!), "the new refresh token is live").to.equal(true);
        expect(await target.isActive(now.accessToken)).to.equal(true);
      });
    });
  });
}
});
