import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { createConnection } from "mysql2/promise";
import { Registry } from "prom-client";
import { DataSource } from "typeorm";
import { createTokenService } from "../../../src/create-token-service";
import { KeyRing } from "../../../src/crypto/key-ring";
import { StaticFeatureFlags } from "../../../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../../../src/providers/bitbucket-server-provider";
import { dataSourceOptionsFromUrl } from "../../../src/storage/data-source";
import type { StoreTokenInput } from "../../../src/token";
import type { TokenService } from "../../../src/token-service";
import { FakeClock } from "../../../src/testing/fake-clock";
import { FakeScmServer } from "../../../src/testing/fake-scm";
import type { TestTokenService } from "../../../src/testing/create-test-token-service";
import { RecordingLogger } from "../../../src/testing/recording-logger";
import { closeDataSource, ensureRunDatabase, openTestDataSource, runDatabaseUrl, SERVER_URL, type DbKind } from "../../support/databases";
import { LeakDetector } from "./leak-detector";

/**
 * One token service per database kind, shared by every property of a file (building one per run
 * would cost seconds). Each run uses ids with a fresh tag, so runs never see each other's rows.
 *
 * Everything secret in it is known to the leak detector: the encryption key, the client secret, the
 * MariaDB password (the service connects as a user of its own with a random password, so that a
 * password can leak at all), every token stored through `store()`, and ciphertext prefixes
 * (`v1:<keyId>:`), whose presence in an error means SQL parameters leaked.
 */
export interface World extends Pick<TestTokenService, "service" | "scm" | "clock" | "flags" | "logger" | "registry" | "dataSource"> {
  kind: DbKind;
  leaks: LeakDetector;
  /** The ring the service encrypts with (for TakeOnceSecrets on the same database). */
  keyRing: KeyRing;
  /** Two configured hosts, both served by the fake SCM. */
  hosts: readonly [string, string];
  /** A tag unique in this process run; every id a property makes starts with one. */
  tag(): string;
  /** Stores a token whose value and refresh token are registered secrets (far from expiry, so reading it never refreshes it). */
  storeVictim(userId: string, host: string, extra?: Partial<StoreTokenInput>): Promise<Victim>;
  /** Every victim (default: the two long-lived ones every world has) still hands out exactly the value stored for it. */
  checkVictims(after: string, victims?: readonly Victim[]): Promise<void>;
  /** Another service (another replica) on the same database and providers, with these encryption keys and its own registry. */
  sibling(encryptionKeys: Array<{ id: string; key: string; primary?: boolean }>): Promise<TokenService>;
  /** No secret in the log lines or the metrics text; no user tag in the metrics. */
  checkSurfaces(after: string): Promise<void>;
  close(): Promise<void>;
}

export interface Victim {
  userId: string;
  host: string;
  value: string;
  refreshToken: string;
  scopes: string[];
}

const TAG_PREFIX = `adv${randomBytes(2).toString("hex")}`;
let tagCounter = 0;

export async function openWorld(kind: DbKind): Promise<World> {
  const leaks = new LeakDetector();
  const clock = new FakeClock("2026-01-01T00:00:00.000Z");
  const clientSecret = leaks.secret("client-secret");
  const scm = await FakeScmServer.start({ profile: "bitbucket_dc", clock, clientSecret });
  const hosts = ["bitbucket.example.com", "bitbucket.example.org"] as const;
  const providers = hosts.map((host) => new BitbucketServerProvider({ host, baseUrl: scm.baseUrl, clientId: "test-client", clientSecret }));
  const key = randomBytes(32).toString("base64");
  leaks.register("encryption key", key);
  leaks.register("encryption key (hex)", Buffer.from(key, "base64").toString("hex"));
  leaks.forbid("ciphertext (an SQL parameter)", "v1:adv-key:");
  const encryptionKeys = [{ id: "adv-key", key }];
  const logger = new RecordingLogger();
  const flags = new StaticFeatureFlags({}, logger);
  const registry = new Registry();

  let dataSource: DataSource;
  let dropUser: (() => Promise<void>) | undefined;
  if (kind === "mariadb") {
    ({ dataSource, dropUser } = await openAsPasswordUser(leaks));
  } else if (kind === "postgres") {
    dataSource = await openPostgresWithPassword(leaks);
  } else {
    dataSource = await openTestDataSource("sqljs");
  }

  const service = await createTokenService({
    dataSource,
    providers,
    encryptionKeys,
    flags,
    clock,
    logger,
    metricsRegistry: registry,
    retry: { baseDelayMs: 10, timeoutMs: 2_000 },
  });
  const keyRing = new KeyRing(encryptionKeys);
  const victims: Victim[] = [];

  const world: World = {
    kind,
    leaks,
    service,
    scm,
    clock,
    flags,
    logger,
    registry,
    dataSource,
    keyRing,
    hosts,
    tag: () => `${TAG_PREFIX}${(++tagCounter).toString(36)}`,
    async storeVictim(userId, host, extra = {}) {
      const victim: Victim = { userId, host, value: leaks.secret("access-token"), refreshToken: leaks.secret("refresh-token"), scopes: ["REPO_READ", "PROJECT_READ"] };
      // Far from expiry: checking a victim never refreshes it.
      await service.storeToken(userId, host, { value: victim.value, refreshToken: victim.refreshToken, expiryDate: new Date("2027-06-01T00:00:00Z"), scopes: victim.scopes, username: "x-token-auth", ...extra });
      return victim;
    },
    async checkVictims(after, only) {
      for (const v of only ?? victims) {
        let token;
        try {
          token = await service.getTokenForHost(v.userId, v.host, { lifetimeMinutes: 1 });
        } catch (e) {
          expect.fail(`after ${after}: ${JSON.stringify(v.userId)}'s token on ${v.host} is no longer readable: ${(e as Error).name}: ${(e as Error).message}`);
        }
        expect(token, `after ${after}: ${JSON.stringify(v.userId)}'s token on ${v.host} disappeared`).to.not.equal(undefined);
        if (token!.value !== v.value) {
          expect.fail(`after ${after}: ${JSON.stringify(v.userId)} on ${v.host} got ${token!.value === undefined ? "no value" : "a different token"} (${leaks.find(String(token!.value))?.kind ?? "unknown"}), not the one stored for them`);
        }
        expect(token!.scopes, `after ${after}: scopes of ${JSON.stringify(v.userId)}`).to.have.members(v.scopes);
      }
    },
    sibling: (keys) => {
      for (const k of keys) registerKey(leaks, k.key);
      return createTokenService({ dataSource, providers, encryptionKeys: keys, clock, logger, flags, metricsRegistry: new Registry(), retry: { baseDelayMs: 10, timeoutMs: 2_000 } });
    },
    async checkSurfaces(after) {
      leaks.assertClean(`the log lines (after ${after})`, logger.text());
      const metrics = await registry.metrics();
      leaks.assertClean(`the metrics text (after ${after})`, metrics);
      expect(metrics.includes(TAG_PREFIX), `after ${after}: a user id is in a metric label`).to.equal(false);
    },
    async close() {
      await scm.close();
      await closeDataSource(dataSource);
      await dropUser?.();
    },
  };
  // Two long-lived victims with plain ids: every property checks them after what it did.
  victims.push(await world.storeVictim(`${TAG_PREFIX}-victim`, hosts[0]));
  victims.push(await world.storeVictim(`${TAG_PREFIX}-victim`, hosts[1]));
  return world;
}

function registerKey(leaks: LeakDetector, key: string): void {
  leaks.register("encryption key", key);
}

/**
 * A DataSource on the run's PostgreSQL database with a random password in its URL, so that error
 * messages, log lines and inspected objects have a password to leak. (The test server trusts local
 * connections and ignores it; the library cannot tell.)
 */
async function openPostgresWithPassword(leaks: LeakDetector): Promise<DataSource> {
  const runUrl = new URL(await ensureRunDatabase("postgres"));
  const password = `pw${randomBytes(12).toString("hex")}`;
  leaks.register("database password", password);
  runUrl.password = password;
  const dataSource = new DataSource(dataSourceOptionsFromUrl(runUrl.toString(), { poolSize: 4 }));
  await dataSource.initialize();
  return dataSource;
}

/**
 * A DataSource on the run's MariaDB database as a user with a random password (root has none here),
 * so that error messages, log lines and inspected objects have a password to leak.
 */
async function openAsPasswordUser(leaks: LeakDetector): Promise<{ dataSource: DataSource; dropUser: () => Promise<void> }> {
  const probe = await openTestDataSource("mariadb", 1); // creates and migrates the run database
  await closeDataSource(probe);
  const server = new URL(SERVER_URL);
  const runUrl = new URL(runDatabaseUrl());
  const database = runUrl.pathname.slice(1);
  const user = `adv_${process.pid}_${randomBytes(2).toString("hex")}`;
  const password = `pw${randomBytes(12).toString("hex")}`;
  leaks.register("database password", password);
  const admin = await createConnection({ host: server.hostname, port: Number(server.port || 3306), user: decodeURIComponent(server.username), password: decodeURIComponent(server.password) });
  try {
    for (const host of ["%", "localhost", "127.0.0.1"]) {
      await admin.query(`CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?`, [user, host, password]);
      await admin.query(`GRANT ALL PRIVILEGES ON \`${database}\`.* TO ?@?`, [user, host]);
    }
  } finally {
    await admin.end();
  }
  runUrl.username = user;
  runUrl.password = password;
  const dataSource = new DataSource(dataSourceOptionsFromUrl(runUrl.toString(), { poolSize: 4 }));
  await dataSource.initialize();
  const dropUser = async () => {
    const c = await createConnection({ host: server.hostname, port: Number(server.port || 3306), user: decodeURIComponent(server.username), password: decodeURIComponent(server.password) });
    try {
      for (const host of ["%", "localhost", "127.0.0.1"]) await c.query(`DROP USER IF EXISTS ?@?`, [user, host]);
    } finally {
      await c.end();
    }
  };
  return { dataSource, dropUser };
}
